//! `executor` items: the pipeline's, a stage's own over it, and their mistakes.

use std::path::Path;

use mlp_plan::{ExecutorKind, Options, Pipeline, SlurmSettings};

fn plan(src: &str) -> Pipeline {
    match mlp_plan::load_str(
        "p.mlp",
        src,
        Path::new("/nonexistent-mlp-root"),
        &Options::default(),
    ) {
        Ok(p) => p.pipeline,
        Err(d) => panic!("{:?}", d.items),
    }
}

fn codes(src: &str) -> Vec<&'static str> {
    match mlp_plan::load_str(
        "p.mlp",
        src,
        Path::new("/nonexistent-mlp-root"),
        &Options::default(),
    ) {
        Ok(_) => panic!("planned: {src}"),
        Err(d) => d.items.iter().map(|i| i.code).collect(),
    }
}

#[test]
fn stages_run_locally_by_default() {
    let p = plan("stage a { run \"x\" }");
    assert_eq!(p.stages[0].executor.kind, ExecutorKind::Local);
    assert!(!p.stages[0].executor.own);
}

#[test]
fn a_stage_setting_replaces_the_pipeline_one_of_that_name() {
    let p = plan(
        r#"
param part = "debug"
executor slurm { partition = "gpu"  account = "ml"  time = 90m  args = ["--exclusive"] }
stage a { run "x" }
stage b { executor local  run "y" }
stage c {
  executor slurm { partition = "${params.part}"  args = [] }
  run "z"
}
"#,
    );
    let a = &p.stages[0].executor;
    assert_eq!((a.kind, a.own), (ExecutorKind::Slurm, false));
    assert_eq!(
        *a.slurm,
        SlurmSettings {
            partition: Some("gpu".into()),
            account: Some("ml".into()),
            qos: None,
            time_ms: Some(90 * 60_000),
            args: Some(vec!["--exclusive".into()]),
        }
    );
    let b = &p.stages[1].executor;
    assert_eq!((b.kind, b.own), (ExecutorKind::Local, true));
    let c = &p.stages[2].executor;
    assert_eq!((c.kind, c.own), (ExecutorKind::Slurm, true));
    assert_eq!(c.slurm.partition.as_deref(), Some("debug"));
    assert_eq!(c.slurm.account.as_deref(), Some("ml"));
    assert_eq!(c.slurm.time_ms, Some(90 * 60_000));
    assert_eq!(c.slurm.args, Some(vec![]));
}

#[test]
fn mistakes_have_their_codes() {
    assert_eq!(codes("executor slrum\nstage a { run \"x\" }"), ["E0136"]);
    assert_eq!(codes("stage a { executor lokal run \"x\" }"), ["E0136"]);
    assert_eq!(
        codes("executor slurm { partiton = \"x\" }\nstage a { run \"x\" }"),
        ["E0137"]
    );
    assert_eq!(
        codes("executor local { partition = \"x\" }\nstage a { run \"x\" }"),
        ["E0137"]
    );
    assert_eq!(
        codes(
            "executor slurm { time = 5 partition = 3 args = \"-N1\" qos = [\"a\"] }\nstage a { run \"x\" }"
        ),
        ["E0138", "E0138", "E0138", "E0138"]
    );
    assert_eq!(
        codes("executor slurm { args = [\"a\", 2] }\nstage a { run \"x\" }"),
        ["E0138"]
    );
    assert_eq!(
        codes("executor slurm { time = 0m }\nstage a { run \"x\" }"),
        ["E0134"]
    );
    assert_eq!(
        codes("executor slurm\nexecutor local\nstage a { run \"x\" }"),
        ["E0139"]
    );
    assert_eq!(
        codes("executor slurm { qos = \"a\" qos = \"b\" }\nstage a { run \"x\" }"),
        ["E0139"]
    );
    assert_eq!(
        codes("stage a { executor local executor slurm run \"x\" }"),
        ["E0121"]
    );
}

#[test]
fn the_executor_is_not_part_of_the_stage_but_of_its_running() {
    // Same stage, two executors: everything the identity is made of is equal.
    let local = plan("stage a { out \"o\" run \"echo > o\" }");
    let slurm =
        plan("executor slurm { partition = \"gpu\" }\nstage a { out \"o\" run \"echo > o\" }");
    let (l, s) = (&local.stages[0], &slurm.stages[0]);
    assert_eq!(l.command, s.command);
    assert_eq!(l.env, s.env);
    assert_eq!(l.outputs, s.outputs);
    assert_ne!(l.executor, s.executor);
}

#[test]
fn ray_settings_are_planned_and_a_stage_overlays_them() {
    let p = plan(
        r#"
param node = "node2"
executor ray { address = "127.0.0.1:8265/"  resources = ["node1=1", "gpu_a100=0.5"]  env_vars = ["A=1", "B=x=y"]  pending_timeout = 10m }
stage a { run "x" }
stage b {
  executor ray { resources = ["${params.node}"]  metadata = ["team=ml"]  pip = ["requests"]  runtime_env = "{\"conda\": \"ml\"}" }
  run "y"
}
"#,
    );
    let (a, b) = (&p.stages[0].executor, &p.stages[1].executor);
    assert_eq!((a.kind, a.own), (ExecutorKind::Ray, false));
    assert_eq!(a.ray.address.as_deref(), Some("http://127.0.0.1:8265"));
    assert_eq!(
        a.ray.resources,
        Some(vec![("node1".into(), 1.0), ("gpu_a100".into(), 0.5)])
    );
    assert_eq!(
        a.ray.env_vars,
        Some(vec![("A".into(), "1".into()), ("B".into(), "x=y".into())])
    );
    assert_eq!(a.ray.pending_timeout_ms, Some(600_000));
    assert_eq!((b.kind, b.own), (ExecutorKind::Ray, true));
    assert_eq!(b.ray.resources, Some(vec![("node2".into(), 1.0)]));
    assert_eq!(
        b.ray.address, a.ray.address,
        "the pipeline's, under the stage's"
    );
    assert_eq!(b.ray.metadata, Some(vec![("team".into(), "ml".into())]));
    assert_eq!(b.ray.pip, Some(vec!["requests".into()]));
    assert_eq!(b.ray.runtime_env.as_deref(), Some("{\"conda\": \"ml\"}"));
}

#[test]
fn ray_mistakes_are_diagnostics() {
    let bad = |settings: &str| {
        codes(&format!(
            "executor ray {{ {settings} }}\nstage a {{ run \"x\" }}"
        ))
    };
    assert_eq!(bad("adress = \"x\""), ["E0137"]);
    assert_eq!(bad("partition = \"gpu\""), ["E0137"]);
    assert_eq!(bad("address = 8265"), ["E0138"]);
    assert_eq!(bad("resources = \"node1\""), ["E0138"]);
    assert_eq!(bad("resources = [1]"), ["E0138"]);
    assert_eq!(bad("pending_timeout = 10"), ["E0138"]);
    assert_eq!(bad("pending_timeout = 0s"), ["E0134"]);
    assert_eq!(bad("address = \"ray://head:10001\""), ["E0143"]);
    assert_eq!(bad("address = \"https://head\""), ["E0143"]);
    assert_eq!(bad("resources = [\"node1=lots\"]"), ["E0143"]);
    assert_eq!(bad("resources = [\"CPU=2\"]"), ["E0143"]);
    assert_eq!(bad("resources = [\"a=0\"]"), ["E0143"]);
    assert_eq!(bad("env_vars = [\"NOVALUE\"]"), ["E0143"]);
    assert_eq!(bad("metadata = [\"=x\"]"), ["E0143"]);
    assert_eq!(bad("runtime_env = \"[1]\""), ["E0143"]);
    assert_eq!(bad("runtime_env = \"{\""), ["E0143"]);
    assert_eq!(bad("pip = [\"a\"] pip = [\"b\"]"), ["E0139"]);
    assert_eq!(
        codes("executor rya\nstage a { run \"x\" }"),
        ["E0136"],
        "did you mean `ray`"
    );
}
