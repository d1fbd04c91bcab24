//! Every example pipeline and every valid fixture takes the fast parser, or is listed in
//! `LEFT_TO_PEST` with the construct that sends it to pest. The differential tests
//! (the rest of `tests/fast.rs`) prove the two parsers agree where the fast one reads a file; this test
//! proves it keeps reading them: a construct it starts giving up on fails here, naming the
//! file, the construct and the byte offset.

use std::path::{Path, PathBuf};

use super::mlp_files;

use mlp_syntax::{parse_fast_or_why, parse_with_pest};

/// Files (relative to the repository) that pest reads but the fast parser leaves to it,
/// each with the construct it gives up on (`GiveUp::construct`). Add an entry only for a
/// construct the fast parser leaves to pest on purpose.
///
/// All of them hold a misspelt keyword: pest reads it as an `unknown_item` so that the
/// checker can say "unknown keyword, did you mean ..." (`mlp check` rejects these files).
/// Such a file is never a working pipeline, so the fast parser leaves it to pest.
const LEFT_TO_PEST: &[(&str, &str)] = &[
    (
        "tests/fixtures/diag/error_in_include/stages/train.mlp",
        "unknown stage item keyword",
    ),
    (
        "tests/fixtures/diag/several_errors.mlp",
        "unknown stage item keyword",
    ),
    (
        "tests/fixtures/diag/syntax_unterminated_string.mlp",
        "unknown stage item keyword",
    ),
    (
        "tests/fixtures/diag/unknown_stage_keyword.mlp",
        "unknown stage item keyword",
    ),
    (
        "tests/fixtures/diag/unknown_top_keyword.mlp",
        "unknown item keyword",
    ),
];

/// The fixtures pest rejects (syntax errors of the diagnostics snapshots; `legacy.mlp` is
/// not UTF-8). Every other `.mlp` file must take the fast parser or be in `LEFT_TO_PEST`;
/// listing these makes a file that pest stopped reading (and this test would then skip)
/// fail the test too.
const INVALID_FIXTURES: &[&str] = &[
    "tests/fixtures/diag/for_unknown_keyword.mlp",
    "tests/fixtures/diag/non_utf8_include/legacy.mlp",
    "tests/fixtures/diag/syntax_bad_duration.mlp",
    "tests/fixtures/diag/syntax_bad_unicode_escape.mlp",
    "tests/fixtures/diag/syntax_empty_interpolation.mlp",
    "tests/fixtures/diag/syntax_error_in_include/train.mlp",
    "tests/fixtures/diag/syntax_incomplete_expression.mlp",
    "tests/fixtures/diag/syntax_keyword_as_stage_name.mlp",
    "tests/fixtures/diag/syntax_missing_comma.mlp",
    "tests/fixtures/diag/syntax_number_too_large.mlp",
    "tests/fixtures/diag/syntax_param_missing_equals.mlp",
    "tests/fixtures/diag/syntax_stray_close_brace.mlp",
    "tests/fixtures/diag/syntax_unclosed_brace_before_stage.mlp",
    "tests/fixtures/diag/syntax_unclosed_brace_eof.mlp",
    "tests/fixtures/diag/syntax_unclosed_list.mlp",
    "tests/fixtures/diag/syntax_unknown_escape.mlp",
    "tests/fixtures/diag/unknown_block_keyword.mlp",
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn rel(p: &Path) -> String {
    p.strip_prefix(repo())
        .unwrap_or(p)
        .to_string_lossy()
        .into_owned()
}

#[test]
fn examples_and_valid_fixtures_take_the_fast_parser() {
    let mut files = Vec::new();
    for dir in [
        "examples",
        "tests/fixtures",
        "crates/mlp-syntax/tests/fixtures",
    ] {
        mlp_files(&repo().join(dir), &mut files);
    }
    files.sort();
    let mut problems = Vec::new();
    let mut invalid = Vec::new();
    let mut fast = 0;
    for f in &files {
        let name = rel(f);
        let Ok(src) = std::fs::read_to_string(f) else {
            invalid.push(name);
            continue;
        };
        let Ok(slow) = parse_with_pest(&src) else {
            if parse_fast_or_why(&src).is_ok() {
                problems.push(format!("{name}: only the fast parser reads it"));
            }
            invalid.push(name);
            continue;
        };
        let listed = LEFT_TO_PEST.iter().find(|(n, _)| *n == name);
        match (parse_fast_or_why(&src), listed) {
            (Ok(tree), None) => {
                assert_eq!(tree, slow, "{name}: the parsers differ");
                fast += 1;
            }
            (Ok(_), Some(_)) => problems.push(format!(
                "{name}: takes the fast parser now; remove it from LEFT_TO_PEST"
            )),
            (Err(why), Some((_, construct))) if why.construct == *construct => {}
            (Err(why), _) => problems.push(format!("{name}: left to pest: {why}")),
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_eq!(
        invalid, INVALID_FIXTURES,
        "the files pest does not read changed"
    );
    assert!(fast >= 3 + 50, "only {fast} files took the fast parser");
}

/// The book's ```` ```mlp ```` blocks (not `mlp,error` nor `mlp,fragment`): each passes
/// `mlp check` (`tests/book.rs`), so each must take the fast parser.
#[test]
fn book_pipelines_take_the_fast_parser() {
    let mut pages = Vec::new();
    let mut stack = vec![repo().join("book/src")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "md") {
                pages.push(p);
            }
        }
    }
    pages.sort();
    let mut problems = Vec::new();
    let mut blocks = 0;
    for page in &pages {
        let text = std::fs::read_to_string(page).unwrap();
        let mut lines = text.lines().enumerate();
        while let Some((n, line)) = lines.next() {
            if line.trim_end() != "```mlp" {
                continue;
            }
            let body: Vec<&str> = lines
                .by_ref()
                .map(|(_, l)| l)
                .take_while(|l| !l.starts_with("```"))
                .collect();
            if body.iter().any(|l| l.starts_with("{{#include")) {
                continue; // an example, checked above
            }
            let src = body.join("\n") + "\n";
            blocks += 1;
            if let Err(why) = parse_fast_or_why(&src) {
                problems.push(format!("{}:{}: left to pest: {why}", rel(page), n + 1));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(blocks >= 20, "only {blocks} `mlp` blocks found in the book");
}
