//! Lowering diagnostics: one report per mistake, no cascades, the right place.

use std::path::Path;

use mlp_plan::{Diagnostics, Options};

fn errors(src: &str) -> Diagnostics {
    errors_in(src, Path::new("/nonexistent-mlp-root"))
}

fn errors_in(src: &str, root: &Path) -> Diagnostics {
    match mlp_plan::load_str("p.mlp", src, root, &Options::default()) {
        Ok(_) => panic!("planned: {src}"),
        Err(d) => d,
    }
}

fn codes(d: &Diagnostics) -> Vec<&'static str> {
    d.items.iter().map(|i| i.code).collect()
}

#[test]
fn a_mistake_in_a_loop_body_is_reported_once() {
    let src = r#"
for m in ["a", "b", "c"] {
  for m in ["x", "y"] {
    stage "s_${m}" {
      run "make"
    }
  }
}
"#;
    assert_eq!(codes(&errors(src)), ["E0132"]);
}

#[test]
fn a_stage_name_that_failed_to_interpolate_is_not_also_a_duplicate() {
    let src = r#"
for m in ["a", "b"] {
  stage "s_${m.name}" {
    run "make"
  }
}
"#;
    assert_eq!(codes(&errors(src)), ["E0109"]);
}

#[test]
fn the_same_name_in_a_loop_has_one_label() {
    let src = "for m in [\"a\", \"b\"] {\n  stage s {\n    run \"make\"\n  }\n}\n";
    let d = errors(src);
    assert_eq!(codes(&d), ["E0105"]);
    assert_eq!(d.items[0].labels.len(), 1);
    assert_eq!(
        d.items[0].labels[0].text,
        "the same name for every value of `m`"
    );
}

#[test]
fn a_duplicate_stage_does_not_also_report_its_outputs() {
    let src = r#"
stage t {
  out m = "m.pkl"
  run "make ${out.m}"
}
stage t {
  out m = "m.pkl"
  run "make ${out.m}"
}
"#;
    assert_eq!(codes(&errors(src)), ["E0105"]);
}

#[test]
fn one_stage_declaring_a_path_twice_says_so() {
    let src = "stage t {\n  out a = \"x.csv\", b = \"x.csv\"\n  run \"make\"\n}\n";
    let d = errors(src);
    assert_eq!(codes(&d), ["E0106"]);
    assert_eq!(
        d.items[0].message,
        "stage `t` declares the output `x.csv` twice"
    );
}

#[test]
fn every_stage_of_a_cycle_says_what_it_needs() {
    let src = r#"
stage a {
  in b.o
  out o = "a"
}
stage b {
  in a.o
  out o = "b"
}
"#;
    let d = errors(src);
    assert_eq!(codes(&d), ["E0108"]);
    let texts: Vec<&str> = d.items[0].labels.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(texts, ["needs `b`", "needs `a`"]);
}

#[test]
fn a_params_file_that_does_not_parse_hides_the_unknown_keys_it_causes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.yaml"), "a: 1\n b: 2\n").unwrap();
    let src = "params \"p.yaml\"\nstage t {\n  params a, b\n  run \"make\"\n}\n";
    let d = errors_in(src, dir.path());
    assert_eq!(codes(&d), ["E0119"]);
}

#[test]
fn an_unknown_word_after_a_string_spanning_lines_is_an_unclosed_string() {
    let src = "stage t {\n  out o = \"a.csv\n  run \"python x.py\"\n}\n";
    let d = errors(src);
    assert_eq!(codes(&d), ["E0004"]);
    let l = &d.items[0].labels;
    assert_eq!(l[0].span.start, src.find("\"a.csv").unwrap());
    assert_eq!(l[1].span.start, src.find("\"python").unwrap());
}

#[test]
fn a_non_utf8_include_says_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("x.mlp"),
        b"stage x {\n  run \"caf\xe9\"\n}\n",
    )
    .unwrap();
    let d = errors_in("include \"x.mlp\"\n", dir.path());
    assert_eq!(codes(&d), ["E0005"]);
    assert!(
        d.items[0]
            .message
            .ends_with("byte 0xE9 at line 2, column 11"),
        "{}",
        d.items[0].message
    );
}

#[test]
fn rendered_columns_count_characters_like_the_json() {
    let src = "stage t {\n  run \"é → ${params.x}\"\n}\n";
    let d = errors(src);
    let json = d.to_json();
    assert_eq!(json["errors"][0]["labels"][0]["column"], 14);
    let text = d.render(mlp_plan::Style::Plain);
    assert!(text.contains("[p.mlp:2:14]"), "{text}");
}
