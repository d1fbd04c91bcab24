//! `tracking` items: where runs are exported, and their mistakes.

mod common;

use std::path::Path;

use common::load;
use mlp_plan::Options;
use mlp_plan::model::Tracking;

#[test]
fn the_item_gives_the_uri_and_the_experiment() {
    let p = load("tracking mlflow {\n  uri = \"http://127.0.0.1:5000\"\n  experiment = \"churn-prod\"\n}\nstage a { run \"x\" }").unwrap();
    assert_eq!(
        p.tracking,
        Some(Tracking {
            uri: Some("http://127.0.0.1:5000".into()),
            experiment: Some("churn-prod".into()),
        })
    );
    let p = load("param env = \"prod\"\ntracking mlflow { experiment = \"churn-${params.env}\" }\nstage a { run \"x\" }").unwrap();
    assert_eq!(
        p.tracking.unwrap().experiment.as_deref(),
        Some("churn-prod")
    );
    let p = load("tracking mlflow\nstage a { run \"x\" }").unwrap();
    assert_eq!(p.tracking, Some(Tracking::default()));
    assert_eq!(load("stage a { run \"x\" }").unwrap().tracking, None);
}

#[test]
fn mistakes_have_their_codes() {
    let c = |src: &str| load(&format!("{src}\nstage a {{ run \"x\" }}")).unwrap_err();
    assert_eq!(c("tracking mlflw"), ["E0140"]);
    assert_eq!(c("tracking mlflow { url = \"http://h\" }"), ["E0141"]);
    assert_eq!(
        c("tracking mlflow { uri = 5 experiment = [\"a\"] }"),
        ["E0141", "E0141"]
    );
    assert_eq!(c("tracking mlflow { uri = \"https://h\" }"), ["E0141"]);
    assert_eq!(
        c("tracking mlflow { uri = \"http://u:secret@h\" }"),
        ["E0141"]
    );
    assert_eq!(
        c("tracking mlflow { experiment = \"a\" experiment = \"b\" }"),
        ["E0141"]
    );
    assert_eq!(c("tracking mlflow\ntracking mlflow"), ["E0142"]);
    // A keyword of the top level only: inside a stage it does not parse.
    assert_eq!(
        load("stage a { tracking mlflow run \"x\" }").unwrap_err(),
        ["E0001"]
    );
}

#[test]
fn a_password_in_the_uri_is_never_repeated_in_the_message() {
    let d = mlp_plan::load_str(
        "p.mlp",
        "tracking mlflow { uri = \"http://u:hunter2@h\" }\nstage a { run \"x\" }",
        Path::new("/nonexistent-mlp-root"),
        &Options::default(),
    )
    .unwrap_err();
    for i in &d.items {
        assert!(!format!("{} {:?}", i.message, i.help).contains("hunter2"));
    }
}
