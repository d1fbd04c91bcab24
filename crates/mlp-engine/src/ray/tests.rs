use super::finish::own_lines;
use super::*;

fn submission(settings: RaySettings) -> Submission {
    Submission {
        stage: "train model".into(),
        run_id: "00000012".into(),
        identity: "abc".into(),
        settings,
        resources: Resources {
            cpu: 2,
            mem_bytes: 1 << 30,
            gpu: 1,
        },
        dir: PathBuf::from("/ws/.mlp/ray"),
        attach_checked: AtomicBool::new(false),
        attempts: AtomicU32::new(0),
    }
}

fn job() -> Job {
    Job {
        command: "echo \"it's\"\nexit 3".into(),
        cwd: PathBuf::from("/ws"),
        env: vec![("A".into(), "1".into())],
        log: PathBuf::from("/ws/.mlp/logs/x.log"),
        timeout: None,
        echo: None,
        append_log: false,
    }
}

#[test]
fn submission_ids_name_the_workspace_the_run_the_stage_and_the_attempt() {
    let s = submission(RaySettings::default());
    let a = s.submission_id(Path::new("/ws"));
    let b = s.submission_id(Path::new("/ws"));
    assert!(
        a.starts_with("mlp-") && a.ends_with("-12-train_model-1"),
        "{a}"
    );
    assert!(b.ends_with("-12-train_model-2"), "{b}");
    assert_ne!(a[..12], s.submission_id(Path::new("/other"))[..12]);
}

#[test]
fn the_body_carries_resources_env_and_metadata() {
    let s = submission(RaySettings {
        resources: Some(vec![("node1".into(), 1.0), ("gpu_a100".into(), 0.5)]),
        env_vars: Some(vec![("A".into(), "2".into()), ("B".into(), "x".into())]),
        metadata: Some(vec![("team".into(), "ml".into())]),
        pip: Some(vec!["requests".into()]),
        runtime_env: Some(r#"{"env_vars": {"C": "3", "A": "no"}, "conda": "ml"}"#.into()),
        ..RaySettings::default()
    });
    let b = s.body("sid", &job(), Path::new("/ws")).unwrap();
    assert_eq!(b["submission_id"], "sid");
    assert_eq!(b["entrypoint_num_cpus"], 2);
    assert_eq!(b["entrypoint_num_gpus"], 1);
    assert_eq!(b["entrypoint_memory"], 1u64 << 30);
    assert_eq!(b["entrypoint_resources"]["node1"], 1.0);
    assert_eq!(b["entrypoint_resources"]["gpu_a100"], 0.5);
    let env = &b["runtime_env"]["env_vars"];
    assert_eq!(
        env["A"], "2",
        "env_vars over the stage's env, over runtime_env's"
    );
    assert_eq!(env["B"], "x");
    assert_eq!(env["C"], "3");
    assert_eq!(env["MLP_COMMAND"], "echo \"it's\"\nexit 3");
    assert_eq!(b["runtime_env"]["conda"], "ml");
    assert_eq!(b["runtime_env"]["pip"][0], "requests");
    assert_eq!(b["metadata"]["team"], "ml");
    assert_eq!(b["metadata"]["mlp_stage"], "train model");
    assert_eq!(b["metadata"]["mlp_run"], "12");
    let e = b["entrypoint"].as_str().unwrap();
    assert!(!e.contains('\n'), "one line: {e}");
}

#[test]
fn the_entrypoint_runs_the_command_in_the_workspace() {
    let dir = tempfile::tempdir().unwrap();
    let s = submission(RaySettings::default());
    let b = s.body("sid", &job(), dir.path()).unwrap();
    let run = |cwd: &Path| {
        std::process::Command::new("sh")
            .arg("-c")
            .arg(b["entrypoint"].as_str().unwrap())
            .env("MLP_COMMAND", "pwd; echo \"it's\"; exit 3")
            .current_dir(cwd)
            .output()
            .unwrap()
    };
    let out = run(Path::new("/"));
    assert_eq!(out.status.code(), Some(3));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text,
        format!("{}\nit's\n", dir.path().canonicalize().unwrap().display())
    );
    let gone = s.body("sid", &job(), &dir.path().join("nope")).unwrap();
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(gone["entrypoint"].as_str().unwrap())
        .env("MLP_COMMAND", "true")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(NO_WORKSPACE));
    assert!(String::from_utf8_lossy(&out.stderr).contains("mlp: cannot enter the workspace"));
}

#[test]
fn ray_lines_are_left_out_of_the_log() {
    let text = "2026-12-02 14:46:48,403\tINFO job_manager.py:581 -- Runtime env is setting up.\nhi\nRunning entrypoint for job mlp-1234abcd-3-a-1: cd '/ws' || exit\n2026-12-02 not a ray line\nbye";
    assert_eq!(own_lines(text), "hi\n2026-12-02 not a ray line\nbye");
}

#[test]
fn addresses() {
    assert_eq!(
        RaySettings::dashboard_url("127.0.0.1:8265/").unwrap(),
        "http://127.0.0.1:8265"
    );
    assert_eq!(
        RaySettings::dashboard_url("http://head:8265").unwrap(),
        "http://head:8265"
    );
    assert!(RaySettings::dashboard_url("ray://head:10001").is_err());
    assert!(RaySettings::dashboard_url("https://head").is_err());
    assert!(RaySettings::dashboard_url("auto").is_err());
}
