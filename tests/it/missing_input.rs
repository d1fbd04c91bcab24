//! An input that does not exist and that no stage writes is a warning (E0170) with a
//! did-you-mean, not an error: `mlp check` shows it and passes, `--json` lists it under
//! `"warnings"`, `mlp run` shows it before running (the stage that reads it fails then).

use crate::common::Workspace;

const TYPO: &str = r#"pipeline "typo"

stage train {
  in  "src/trian.py", "data/raw.csv"
  out model = "model.txt"
  run "cat ${in} > ${out.model}"
}
"#;

fn typo_workspace() -> Workspace {
    let ws = Workspace::new(TYPO);
    ws.write("src/train.py", "print('train')\n");
    ws.write("data/raw.csv", "a,b\n");
    ws
}

#[test]
fn check_warns_with_a_did_you_mean_and_passes() {
    let ws = typo_workspace();
    let out = ws.mlp(&["check"]).success();
    insta::assert_snapshot!("typo", ws.redact(out.stderr()));
    assert!(out.stderr().contains("warning") || out.stderr().contains('⚠'));
}

#[test]
fn check_json_lists_the_warning() {
    let ws = typo_workspace();
    let v = ws.mlp(&["check", "--json"]).success().json();
    assert_eq!(v["errors"], serde_json::json!([]));
    let w = v["warnings"].as_array().expect("warnings");
    assert_eq!(w.len(), 1, "{v:#}");
    assert_eq!(w[0]["code"], "E0170");
    assert_eq!(w[0]["severity"], "warning");
    assert_eq!(w[0]["file"], "pipeline.mlp");
    let label = &w[0]["labels"][0];
    assert_eq!((&label["line"], &label["column"]), (&4.into(), &7.into()));
    assert_eq!(w[0]["help"], "did you mean `src/train.py`?");
}

#[test]
fn run_shows_the_warning_then_fails_the_stage() {
    let ws = typo_workspace();
    let out = ws.mlp(&["run"]);
    assert_eq!(out.code(), 1, "{}", out.stderr());
    let err = out.stderr();
    let warn = err.find("E0170").expect("the warning");
    let fail = err
        .find("src/trian.py")
        .expect("the failure names the input");
    assert!(warn <= fail, "{err}");
    // Fixed: no warning, and the run succeeds.
    ws.write("pipeline.mlp", TYPO.replace("trian", "train"));
    let out = ws.mlp(&["run"]).success();
    assert!(!out.stderr().contains("E0170"), "{}", out.stderr());
}

#[test]
fn no_warning_for_inputs_that_exist_are_written_or_are_globs() {
    let ws = Workspace::new(
        r#"
param name = "raw"

stage prep {
  in  "data/${params.name}.csv", "src/", "data/*.parquet", "later/**/*.csv"
  out clean = "clean.csv", parts = "parts"
  run "cp data/raw.csv ${out.clean} && mkdir -p ${out.parts} && touch ${out.parts}/a"
}

stage train {
  in  "clean.csv", "parts/a", prep.parts
  out model = "model.txt"
  run "cat clean.csv > ${out.model}"
}
"#,
    );
    ws.write("data/raw.csv", "a\n");
    ws.write("src/x.py", "");
    let out = ws.mlp(&["check", "--json"]).success();
    let v = out.json();
    assert_eq!(v["warnings"], serde_json::json!([]), "{v:#}");
    let out = ws.mlp(&["check"]).success();
    assert!(!out.stderr().contains("E0170"), "{}", out.stderr());
}

#[test]
fn many_missing_inputs_are_counted_after_the_first_twenty() {
    let mut src = String::from("stage s {\n  in ");
    let inputs: Vec<String> = (0..25).map(|i| format!("\"fetch/f{i}.csv\"")).collect();
    src.push_str(&inputs.join(", "));
    src.push_str("\n  run \"true\"\n}\n");
    let ws = Workspace::new(&src);
    let v = ws.mlp(&["check", "--json"]).success().json();
    let w = v["warnings"].as_array().expect("warnings");
    assert_eq!(w.len(), 21, "{v:#}");
    assert_eq!(
        w[20]["message"],
        "5 more inputs do not exist, and no stage writes them"
    );
}

#[test]
fn errors_come_without_the_warnings() {
    let ws = Workspace::new("stage s {\n  in \"nope.csv\"\n  run \"${params.x}\"\n}\n");
    let v = ws.mlp(&["check", "--json"]).failure(1).json();
    assert_eq!(v["errors"][0]["code"], "E0104", "{v:#}");
    assert!(v.get("warnings").is_none(), "{v:#}");
}
