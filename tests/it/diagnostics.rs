//! What `mlp check` prints for broken pipelines: one insta snapshot per error situation,
//! rendered as plain text (`NO_COLOR=1`) by the real binary.
//!
//! Each case is `tests/fixtures/diag/NAME.mlp` (copied to `pipeline.mlp`) or the directory
//! `tests/fixtures/diag/NAME/` (copied whole; its `pipeline.mlp` is checked), in a fresh
//! temporary directory. Snapshots are `tests/it/snapshots/it__diagnostics__NAME.snap`: the exit
//! code, then stdout (if any) and stderr with the temporary directory shown as `[TMP]`.

use std::path::PathBuf;

use crate::common::{Output, Workspace, root};

fn fixtures() -> PathBuf {
    root().join("tests/fixtures/diag")
}

/// A workspace holding the case's files.
fn workspace(case: &str) -> Workspace {
    let src = fixtures().join(case);
    if src.is_dir() {
        Workspace::copy_of(&src, &[])
    } else {
        let file = fixtures().join(format!("{case}.mlp"));
        let text = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let ws = Workspace::empty();
        ws.write("pipeline.mlp", text);
        ws
    }
}

/// `mlp -f pipeline.mlp check ARGS...` in the workspace.
fn check_in(ws: &Workspace, args: &[&str]) -> Output {
    let mut all = vec!["-f", "pipeline.mlp", "check"];
    all.extend_from_slice(args);
    ws.mlp(&all)
}

/// The exit code, then stdout (if any) and stderr, with the workspace shown as `[TMP]`.
fn render(ws: &Workspace, out: &Output) -> String {
    let mut s = format!("exit: {}\n", out.code());
    if !out.stdout().is_empty() {
        s.push_str("--- stdout\n");
        s.push_str(&ws.redact(out.stdout()));
    }
    s.push_str("--- stderr\n");
    s.push_str(&ws.redact(out.stderr()));
    s
}

/// Check the case, assert it failed, and compare what it printed with the snapshot.
fn snapshot_in(case: &str, ws: &Workspace, args: &[&str]) {
    let out = check_in(ws, args);
    let rendered = render(ws, &out);
    assert_ne!(out.code(), 0, "{case} passed the check:\n{rendered}");
    assert!(
        !out.stderr().contains('\u{1b}'),
        "{case}: colour codes with NO_COLOR=1"
    );
    insta::assert_snapshot!(case, rendered);
}

fn snapshot(case: &str, args: &[&str]) {
    snapshot_in(case, &workspace(case), args);
}

macro_rules! cases {
    ($($name:ident $([$($arg:literal),*])?;)*) => {
        $(
            #[test]
            fn $name() {
                snapshot(stringify!($name), &[$($($arg),*)?]);
            }
        )*
        /// Every case above, for the test that reads their snapshots.
        const CASES: &[&str] = &[$(stringify!($name)),*];
    };
}

cases! {
    // ---- syntax
    syntax_unterminated_string;
    syntax_unclosed_brace_eof;
    syntax_unclosed_brace_before_stage;
    syntax_stray_close_brace;
    syntax_missing_comma;
    syntax_unknown_escape;
    syntax_bad_unicode_escape;
    syntax_number_too_large;
    syntax_param_missing_equals;
    syntax_keyword_as_stage_name;
    syntax_incomplete_expression;
    syntax_bad_duration;
    syntax_empty_interpolation;
    syntax_unclosed_list;
    syntax_error_in_include;
    unknown_block_keyword;
    // ---- unknown words and names
    unknown_top_keyword;
    unknown_stage_keyword;
    unknown_stage_ref;
    unknown_output_ref;
    ref_stage_without_outputs;
    after_unknown_stage;
    unknown_params_key;
    unknown_interpolation;
    unknown_own_output_interp;
    out_in_plain_string;
    input_index_out_of_range;
    unknown_resource;
    // ---- stages, outputs and the graph
    duplicate_stage;
    same_output_two_stages;
    duplicate_output_name;
    output_outside_workspace;
    output_is_glob;
    output_inside_output;
    reads_own_output;
    reads_own_output_ref;
    cycle;
    after_itself;
    invalid_stage_name;
    two_run_items;
    empty_input_path;
    zero_duration;
    always_and_frozen;
    resource_wrong_kind;
    // ---- expressions
    type_error_compare;
    type_error_not_number;
    condition_not_bool;
    unknown_function;
    failed_bad_argument;
    unknown_metrics_in_check;
    when_reads_own_metrics;
    baseline_without_metric;
    // ---- for loops
    duplicate_stage_in_loop;
    for_over_non_list;
    for_unknown_param;
    for_shadowed_variable;
    for_unknown_keyword;
    for_bad_field_of_loop_value;
    // ---- files: includes and params
    missing_include;
    include_cycle;
    error_in_include;
    non_utf8_include;
    missing_params_file;
    params_key_not_in_file;
    bad_yaml;
    bad_toml;
    bad_json;
    params_not_a_map;
    params_bad_extension;
    // ---- several at once
    several_errors;
    non_ascii_columns;
    // ---- the command line
    set_unknown_key ["--set", "lrr=0.2"];
    set_malformed ["--set", "lr"];
}

/// Cases whose files are made by the test (bytes that cannot sit in a fixture as text).
const MADE_CASES: &[&str] = &["non_utf8_file", "missing_pipeline_file"];

#[test]
fn non_utf8_file() {
    let ws = Workspace::empty();
    ws.write(
        "pipeline.mlp",
        b"pipeline \"demo\"\n# na\xefve comment in Latin-1\nstage a {\n  run \"make\"\n}\n",
    );
    snapshot_in("non_utf8_file", &ws, &[]);
}

#[test]
fn missing_pipeline_file() {
    snapshot_in("missing_pipeline_file", &Workspace::empty(), &[]);
}

/// At least 30 situations, and every committed snapshot records a failure.
#[test]
fn every_snapshot_is_a_failure() {
    let all: Vec<&str> = CASES.iter().chain(MADE_CASES).copied().collect();
    assert!(all.len() >= 30, "only {} cases", all.len());
    let dir = root().join("tests/it/snapshots");
    let mut seen = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let Some(case) = name
            .strip_prefix("it__diagnostics__")
            .and_then(|n| n.strip_suffix(".snap"))
        else {
            continue;
        };
        assert!(all.contains(&case), "{name}: no such case (left over?)");
        let text = std::fs::read_to_string(&path).unwrap();
        let body = text.splitn(3, "---\n").nth(2).expect("insta header");
        let code: i32 = body
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("exit: "))
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("{name}: no exit line"));
        assert_ne!(code, 0, "{name} records a success");
        seen += 1;
    }
    assert_eq!(seen, all.len(), "a case has no snapshot yet");
}

// ---------------------------------------------------------------- positions --

/// `(code, file, line, column)` of the primary label of each diagnostic, from `--json`.
fn positions(ws: &Workspace, args: &[&str]) -> Vec<(String, String, u64, u64)> {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = check_in(ws, &all);
    assert_eq!(out.code(), 1, "{}", render(ws, &out));
    let v: serde_json::Value = serde_json::from_str(out.stdout()).expect("JSON on stdout");
    v["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| {
            let l = e["labels"]
                .as_array()
                .and_then(|ls| ls.iter().find(|l| l["primary"] == true))
                .cloned()
                .unwrap_or_default();
            (
                e["code"].as_str().unwrap_or_default().to_string(),
                e["file"].as_str().unwrap_or_default().to_string(),
                l["line"].as_u64().unwrap_or(0),
                l["column"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

fn case_positions(case: &str) -> Vec<(String, String, u64, u64)> {
    positions(&workspace(case), &[])
}

fn p(code: &str, file: &str, line: u64, col: u64) -> (String, String, u64, u64) {
    (code.to_string(), file.to_string(), line, col)
}

#[test]
fn json_positions_of_several_errors() {
    // several_errors.mlp: the second `train`, `${params.sed}`, `ingest.cleaned`,
    // `features`, `timout`.
    assert_eq!(
        case_positions("several_errors"),
        [
            p("E0105", "pipeline.mlp", 17, 7),
            p("E0104", "pipeline.mlp", 6, 34),
            p("E0103", "pipeline.mlp", 10, 13),
            p("E0102", "pipeline.mlp", 10, 22),
            p("E0100", "pipeline.mlp", 14, 3),
        ]
    );
}

#[test]
fn json_positions_of_syntax_errors() {
    // The `"` that opens the string never closed on line 4.
    assert_eq!(
        case_positions("syntax_unterminated_string"),
        [p("E0004", "pipeline.mlp", 4, 14)]
    );
    // The `{` of `stage prep` on line 3, column 12.
    assert_eq!(
        case_positions("syntax_unclosed_brace_eof"),
        [p("E0001", "pipeline.mlp", 3, 12)]
    );
    // `\q` at line 2, column 29.
    assert_eq!(
        case_positions("syntax_unknown_escape"),
        [p("E0003", "pipeline.mlp", 2, 29)]
    );
    // `stag` at the start of line 3.
    assert_eq!(
        case_positions("unknown_block_keyword"),
        [p("E0101", "pipeline.mlp", 3, 1)]
    );
}

#[test]
fn json_positions_in_other_files() {
    // The error is in the included file, at its own line and column.
    assert_eq!(
        case_positions("error_in_include"),
        [
            p("E0103", "stages/train.mlp", 2, 11),
            p("E0100", "stages/train.mlp", 5, 3),
        ]
    );
    // The params file's error points into the params file.
    assert_eq!(
        case_positions("bad_json"),
        [p("E0119", "params.json", 3, 23)]
    );
    assert_eq!(
        case_positions("bad_toml"),
        [p("E0119", "params.toml", 5, 9)]
    );
    assert_eq!(
        case_positions("bad_yaml"),
        [p("E0119", "params.yaml", 4, 2)]
    );
}

#[test]
fn columns_count_characters_not_bytes() {
    // `  run "échelle → ${params.lrr}"`: `params.lrr` is at column 20 in characters (24 in
    // bytes), in the JSON and in the rendered header alike.
    assert_eq!(
        case_positions("non_ascii_columns"),
        [p("E0104", "pipeline.mlp", 4, 20)]
    );
    let out = check_in(&workspace("non_ascii_columns"), &[]);
    assert!(
        out.stderr().contains("[pipeline.mlp:4:20]"),
        "{}",
        out.stderr()
    );
}
