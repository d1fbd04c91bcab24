//! The importer on small DVC projects, one construct each, written from DVC's
//! `dvc.yaml` reference (stages, templating, foreach, matrix, vars, params, wdir).

use std::path::Path;

use crate::{Import, dvc};

fn import(files: &[(&str, &str)]) -> Import {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), files);
    dvc(dir.path(), "p").unwrap()
}

fn write(root: &Path, files: &[(&str, &str)]) {
    for (name, body) in files {
        let p = root.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }
}

/// The source without its blank lines and indentation, to assert on lines.
fn lines(i: &Import) -> Vec<String> {
    i.source
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect()
}

fn has(i: &Import, line: &str) -> bool {
    lines(i).iter().any(|l| l == line)
}

#[track_caller]
fn assert_has(i: &Import, line: &str) {
    assert!(has(i, line), "no line `{line}` in:\n{}", i.source);
}

fn warned(i: &Import, part: &str) -> Option<usize> {
    i.warnings
        .iter()
        .find(|w| w.message.contains(part))
        .map(|w| w.line)
}

#[track_caller]
fn assert_warned(i: &Import, part: &str, line: usize) {
    assert_eq!(
        warned(i, part),
        Some(line),
        "no warning `{part}` at line {line}: {:#?}",
        i.warnings
    );
}

#[test]
fn cmd_as_string_multiline_string_and_list() {
    let i = import(&[(
        "dvc.yaml",
        "stages:\n  one:\n    cmd: echo one\n  multi:\n    cmd: |\n      echo a\n      echo b\n  list:\n    cmd:\n      - echo a\n      - echo \"b\"\n",
    )]);
    assert_has(&i, "run \"echo one\"");
    assert!(
        i.source.contains("run \"echo a\necho b\n\""),
        "{}",
        i.source
    );
    assert_has(&i, "run \"echo a && echo \\\"b\\\"\"");
}

#[test]
fn wdir_makes_paths_relative_to_the_root_and_cds_the_command() {
    let i = import(&[(
        "dvc.yaml",
        "stages:\n  s:\n    wdir: sub\n    cmd: python3 run.py ../data/in.csv out.csv\n    deps: [run.py, ../data/in.csv]\n    outs: [out.csv]\n",
    )]);
    assert_has(&i, "in \"sub/run.py\", \"data/in.csv\"");
    assert_has(&i, "out \"sub/out.csv\"");
    assert_has(
        &i,
        "run \"cd sub && python3 run.py ../data/in.csv out.csv\"",
    );
}

#[test]
fn outs_metrics_plots_and_their_flags() {
    let i = import(&[(
        "dvc.yaml",
        "stages:\n  s:\n    cmd: x\n    deps: [data/]\n    outs:\n      - model.pkl\n      - cache.db:\n          persist: true\n    metrics:\n      - m.json:\n          cache: false\n      - m.tsv\n    plots:\n      - p.csv\n  t:\n    cmd: y\nmetrics:\n  - m2.json\nplots:\n  - p.csv\n  - roc:\n      x: fpr\n",
    )]);
    assert_has(&i, "in \"data\"");
    assert_has(&i, "out \"model.pkl\", \"cache.db\", \"m.tsv\", \"p.csv\"");
    assert_has(&i, "metrics \"m.json\"");
    assert_warned(&i, "persist: true", 7);
    assert_warned(&i, "cache: false", 10);
    assert_warned(&i, "`m.tsv` is not JSON or YAML", 12);
    assert!(warned(&i, "top-level plots").is_some());
}

#[test]
fn top_level_metrics_make_a_stage_output_a_metrics_file() {
    let i = import(&[(
        "dvc.yaml",
        "stages:\n  e:\n    cmd: x\n    outs: [eval/scores.json]\nmetrics:\n  - eval/scores.json\n",
    )]);
    assert_has(&i, "metrics \"eval/scores.json\"");
}

#[test]
fn frozen_always_changed_and_desc() {
    let i = import(&[(
        "dvc.yaml",
        "vars:\n  - what: prices\nstages:\n  a:\n    desc: Fetch the ${what}\n    cmd: x\n    always_changed: true\n  b:\n    cmd: y\n    frozen: true\n",
    )]);
    assert_has(&i, "# Fetch the prices");
    assert_has(&i, "always");
    assert_has(&i, "frozen");
}

#[test]
fn params_of_every_form() {
    let i = import(&[
        ("params.yaml", "train:\n  lr: 0.1\n  epochs: 3\nseed: 1\n"),
        ("conf/other.yaml", "eval:\n  k: 5\n"),
        (
            "conf/all.json",
            "{\"batch\": 8, \"opt\": {\"name\": \"adam\"}}",
        ),
        ("conf/t.toml", "[model]\ndepth = 4\n"),
        (
            "dvc.yaml",
            "stages:\n  s:\n    cmd: x\n    params:\n      - seed\n      - train.lr\n      - conf/other.yaml:\n          - eval.k\n      - conf/all.json:\n      - conf/t.toml: [model.depth]\n",
        ),
    ]);
    assert_has(&i, "params \"params.yaml\"");
    assert_has(&i, "params \"conf/other.yaml\"");
    assert_has(&i, "params \"conf/all.json\"");
    assert_has(&i, "params \"conf/t.toml\"");
    assert_has(&i, "params seed, train.lr, eval.k, batch, opt, model.depth");
    assert!(i.warnings.is_empty(), "{:?}", i.warnings);
}

#[test]
fn clashing_params_files_become_whole_file_inputs() {
    let i = import(&[
        ("params.yaml", "lr: 0.1\n"),
        ("other.yaml", "lr: 0.5\n"),
        (
            "dvc.yaml",
            "stages:\n  s:\n    cmd: x\n    params:\n      - other.yaml: [lr]\n",
        ),
    ]);
    assert_has(&i, "in \"other.yaml\"");
    assert!(!has(&i, "params \"other.yaml\""));
    assert_warned(&i, "become an input of the whole file", 2);
}

#[test]
fn a_params_file_written_by_a_stage_is_an_input() {
    let i = import(&[(
        "dvc.yaml",
        "stages:\n  tune:\n    cmd: x\n    outs: [best.yaml]\n  train:\n    cmd: y\n    params:\n      - best.yaml: [lr]\n",
    )]);
    assert_has(&i, "in \"best.yaml\"");
    assert_warned(&i, "output of stage `tune`", 5);
}

#[test]
fn vars_files_inline_selection_top_level_and_stage_level() {
    let i = import(&[
        ("params.yaml", "lr: 0.1\n"),
        ("cfg.yaml", "data:\n  path: raw.csv\nunused:\n  x: 1\n"),
        ("more.yaml", "size: {small: 10, big: 20}\nother: 1\n"),
        (
            "dvc.yaml",
            "vars:\n  - cfg.yaml\n  - more.yaml:size\n  - name: demo\n    nested: {a: 1}\nstages:\n  s:\n    vars:\n      - local: 7\n    cmd: echo ${name} ${nested.a} ${size.big} ${local} ${lr}\n    deps: [\"${data.path}\"]\n",
        ),
    ]);
    assert_has(&i, "params \"cfg.yaml\"");
    assert_has(&i, "params \"more.yaml\"");
    assert_has(&i, "param name = \"demo\"");
    assert_has(&i, "param nested.a = 1");
    assert_has(
        &i,
        "run \"echo ${params.name} ${params.nested.a} ${params.size.big} 7 ${params.lr}\"",
    );
    assert_has(&i, "in \"${params.data.path}\"");
}

#[test]
fn values_mlp_renders_differently_stay_literal_but_rerun() {
    let i = import(&[
        (
            "params.yaml",
            "lr: 1.0e-5\nmsg: hello world\nopts: {epochs: 2, fast: true}\n",
        ),
        (
            "dvc.yaml",
            "stages:\n  s:\n    cmd: t ${lr} ${msg} ${opts}\n",
        ),
    ]);
    assert_has(&i, "params lr, msg, opts");
    assert_has(&i, "run \"t 1e-05 hello world --epochs 2 --fast\"");
    assert_warned(&i, "`${lr}` is written as DVC renders it today", 2);
}

#[test]
fn foreach_over_a_list_stays_a_loop() {
    let i = import(&[(
        "dvc.yaml",
        "stages:\n  train:\n    foreach: [gbm, logreg]\n    do:\n      cmd: python3 t.py ${item}\n      outs: [\"models/${item}.pkl\"]\n",
    )]);
    assert_has(&i, "for item in [\"gbm\", \"logreg\"] {");
    assert_has(&i, "stage \"train_${item}\" {");
    assert_has(&i, "out \"models/${item}.pkl\"");
    assert_eq!(
        i.stages,
        [
            ("train@gbm".to_string(), "train_gbm".to_string()),
            ("train@logreg".to_string(), "train_logreg".to_string())
        ]
    );
}

#[test]
fn foreach_over_a_params_key_loops_over_the_key() {
    let i = import(&[
        ("params.yaml", "models: [gbm, rf]\n"),
        (
            "dvc.yaml",
            "stages:\n  train:\n    foreach: ${models}\n    do:\n      cmd: echo ${item}\n",
        ),
    ]);
    assert_has(&i, "for item in models {");
}

#[test]
fn foreach_over_a_dict_of_dicts_is_expanded() {
    let i = import(&[(
        "dvc.yaml",
        "stages:\n  build:\n    foreach:\n      uk:\n        epochs: 3\n        thresh: {low: 1}\n      us:\n        epochs: 10\n        thresh: {low: 2}\n    do:\n      cmd: python3 train.py ${key} ${item.epochs} ${item.thresh.low}\n      outs: [\"model-${key}.pkl\"]\n",
    )]);
    assert_has(&i, "stage build_uk {");
    assert_has(&i, "run \"python3 train.py uk 3 1\"");
    assert_has(&i, "run \"python3 train.py us 10 2\"");
    assert_has(&i, "out \"model-us.pkl\"");
}

#[test]
fn foreach_over_a_list_of_dicts_is_named_by_index() {
    let i = import(&[(
        "dvc.yaml",
        "stages:\n  fit:\n    foreach:\n      - {name: a, depth: 3}\n      - {name: b, depth: 8}\n    do:\n      cmd: fit ${item.name} ${item.depth}\n",
    )]);
    assert_eq!(i.stages[1], ("fit@1".into(), "fit_1".into()));
    assert_has(&i, "run \"fit b 8\"");
}

#[test]
fn foreach_over_values_mlp_cannot_name_is_expanded() {
    let i = import(&[(
        "dvc.yaml",
        "stages:\n  get:\n    foreach: [data/a.csv, 0.5]\n    do:\n      cmd: fetch ${item}\n",
    )]);
    assert_eq!(
        i.stages[0],
        ("get@data/a.csv".into(), "get_data_a_csv".into())
    );
    assert_eq!(i.stages[1], ("get@0.5".into(), "get_0_5".into()));
    assert!(!i.source.contains("for "));
}

#[test]
fn matrix_stays_nested_loops() {
    let i = import(&[(
        "dvc.yaml",
        "stages:\n  grid:\n    matrix:\n      model: [gbm, rf]\n      depth: [3, 6]\n    cmd: fit ${item.model} ${item.depth} > out-${key}.txt\n    outs: [\"out-${key}.txt\"]\n",
    )]);
    assert_has(&i, "for model in [\"gbm\", \"rf\"] {");
    assert_has(&i, "for depth in [3, 6] {");
    assert_has(&i, "stage \"grid_${model}-${depth}\" {");
    assert_has(
        &i,
        "run \"fit ${model} ${depth} > out-${model}-${depth}.txt\"",
    );
    let names: Vec<&str> = i.stages.iter().map(|(d, _)| d.as_str()).collect();
    assert_eq!(
        names,
        ["grid@gbm-3", "grid@gbm-6", "grid@rf-3", "grid@rf-6"]
    );
}

#[test]
fn matrix_of_dicts_is_expanded_and_named_by_index() {
    let i = import(&[(
        "dvc.yaml",
        "stages:\n  m:\n    matrix:\n      cfg: [{a: 1}, {a: 2}]\n      k: [x]\n    cmd: run ${item.cfg.a} ${item.k}\n",
    )]);
    assert_eq!(i.stages[0], ("m@cfg0-x".into(), "m_cfg0-x".into()));
    assert_has(&i, "run \"run 2 x\"");
}

#[test]
fn stages_of_sub_directories_are_prefixed() {
    let i = import(&[
        ("dvc.yaml", "stages:\n  a:\n    cmd: x\n    outs: [a.txt]\n"),
        ("sub/dir/params.yaml", "n: 3\n"),
        (
            "sub/dir/dvc.yaml",
            "stages:\n  b.c:\n    cmd: cat ../../a.txt > b.txt\n    deps: [../../a.txt]\n    params: [n]\n    outs: [b.txt]\n",
        ),
    ]);
    assert_eq!(
        i.stages,
        [
            ("a".to_string(), "a".to_string()),
            (
                "sub/dir/dvc.yaml:b.c".to_string(),
                "sub_dir_b_c".to_string()
            )
        ]
    );
    assert_has(&i, "in \"a.txt\"");
    assert_has(&i, "params n");
    assert_has(&i, "out \"sub/dir/b.txt\"");
    assert_has(&i, "run \"cd sub/dir && cat ../../a.txt > b.txt\"");
}

#[test]
fn data_tracked_by_dvc_files_is_a_plain_input_with_a_note() {
    let i = import(&[
        ("data/raw.csv.dvc", "outs:\n- md5: abc\n  path: raw.csv\n"),
        (
            "dvc.yaml",
            "stages:\n  p:\n    cmd: x\n    deps: [data/raw.csv]\n",
        ),
    ]);
    assert_has(&i, "in \"data/raw.csv\"");
    assert!(
        i.notes
            .iter()
            .any(|n| n.contains("dvc pull") && n.contains("data/raw.csv.dvc")),
        "{:?}",
        i.notes
    );
}

#[test]
fn names_that_are_keywords_or_odd_are_quoted_or_cleaned() {
    let i = import(&[(
        "dvc.yaml",
        "stages:\n  run:\n    cmd: x\n  9lives:\n    cmd: y\n  a-b:\n    cmd: z\n",
    )]);
    assert_has(&i, "stage \"run\" {");
    assert_has(&i, "stage _9lives {");
    assert_has(&i, "stage \"a-b\" {");
}

#[test]
fn escapes_and_dollars_survive() {
    let i = import(&[(
        "dvc.yaml",
        "stages:\n  s:\n    cmd: echo \"$HOME\" \\${NOT} \\\\n\n",
    )]);
    // A plain YAML scalar keeps both backslashes; mlp escapes each.
    assert_has(&i, "run \"echo \\\"$HOME\\\" \\${NOT} \\\\\\\\n\"");
}

#[test]
fn unknown_keys_and_broken_stages_are_warned_with_their_line() {
    let i = import(&[(
        "dvc.yaml",
        "stages:\n  ok:\n    cmd: x\n    retries: 3\n  bad:\n    cmd: echo ${missing}\nartifacts:\n  m:\n    path: model.pkl\n",
    )]);
    assert_warned(&i, "`retries` has no mlp equivalent", 4);
    assert_warned(&i, "could not find 'missing'", 5);
    assert_warned(&i, "artifacts", 7);
}

#[test]
fn no_dvc_yaml_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    assert!(dvc(dir.path(), "p").is_err());
}

#[test]
fn params_yaml_named_in_vars_again_is_loaded_once() {
    let i = import(&[
        ("params.yaml", "lr: 0.1\n"),
        (
            "dvc.yaml",
            "vars:\n  - params.yaml\nstages:\n  s:\n    cmd: t ${lr}\n",
        ),
    ]);
    assert!(i.warnings.is_empty(), "{:?}", i.warnings);
    assert_has(&i, "run \"t ${params.lr}\"");
}

#[test]
fn a_params_file_that_repeats_a_key_is_kept_apart() {
    // Equal values today, but one mlp key would make an edit of either file change both.
    let i = import(&[
        ("params.yaml", "seed: 1\n"),
        ("sub/params.yaml", "seed: 1\n"),
        (
            "dvc.yaml",
            "stages:\n  r:\n    cmd: x\n    params: [seed]\n",
        ),
        (
            "sub/dvc.yaml",
            "stages:\n  s:\n    cmd: t\n    params: [seed]\n",
        ),
    ]);
    assert_has(&i, "in \"sub/params.yaml\"");
    assert!(!has(&i, "params \"sub/params.yaml\""));
}

#[test]
fn stage_vars_files_are_written_in_with_a_warning() {
    let i = import(&[
        ("local.yaml", "size: 3\n"),
        (
            "dvc.yaml",
            "stages:\n  s:\n    vars:\n      - local.yaml\n    cmd: make ${size}\n",
        ),
    ]);
    assert_has(&i, "run \"make 3\"");
    assert_warned(&i, "vars file `local.yaml`", 3);
    assert!(!has(&i, "params \"local.yaml\""));
}

#[test]
fn missing_and_unnameable_params_keys() {
    let i = import(&[
        ("params.yaml", "learning-rate: 0.1\nok: 1\n"),
        (
            "dvc.yaml",
            "stages:\n  s:\n    cmd: t\n    params: [ok, learning-rate, nope]\n",
        ),
    ]);
    assert_has(&i, "in \"params.yaml\"");
    assert_has(&i, "params ok");
    assert_warned(&i, "mlp cannot name the key `learning-rate`", 2);
    assert_warned(&i, "`nope` is not in `params.yaml`", 2);
}

#[test]
fn a_value_from_a_params_file_mlp_cannot_hold_reruns_through_the_file() {
    let i = import(&[
        ("dvc.yaml", "stages:\n  r:\n    cmd: x ${n}\n"),
        ("params.yaml", "n: 1\n"),
        ("sub/params.yaml", "n: 5\n"),
        ("sub/dvc.yaml", "stages:\n  s:\n    cmd: echo n=${n}\n"),
    ]);
    assert_has(&i, "run \"x ${params.n}\"");
    assert_has(&i, "in \"sub/params.yaml\"");
    assert_has(&i, "run \"cd sub && echo n=5\"");
    assert_warned(&i, "the stage reads `sub/params.yaml` as an input", 2);
}
