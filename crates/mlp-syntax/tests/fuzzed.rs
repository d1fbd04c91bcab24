//! Every input the fuzz targets (`fuzz/`) found to break an invariant, kept as a
//! regression test: the parsers agree, and `mlp fmt` is idempotent, keeps the tree and the
//! comments and leaves no trailing whitespace (`support/invariants.rs`).

#[path = "support/invariants.rs"]
mod invariants;
use invariants::check_text;

/// Found by `differential`: an unknown item whose string spans lines kept the whitespace
/// before a line break.
#[test]
fn unknown_item_with_a_string_over_lines() {
    check_text("stage prep {\n  out data = \"d\"\n  data/x \" \nb\"\n}\n");
    check_text("foo \"a \t\n b\"  \nstage s { run \"x\" }\n");
}

/// Found by `differential`: a `#` in an unknown item was a comment to the comment scanner
/// but part of the item to the grammar, which then read a `"` after it as a string over
/// the next lines; `mlp fmt` printed the lines twice and lost them the second time.
#[test]
fn comment_after_an_unknown_word() {
    check_text("pipeline \"a\n\ntracking t {\n  uri = \"ht#p \"b\n\nx = \"c\"\n}\n");
    check_text("stage s {\n  foo bar # a \"comment\n  run \"x\" # b\n}\n");
    check_text("foo # \"\nstage s { run \"x\" }  # c\n");
}

/// A `"` that is never closed in an unknown item: the comment scanner reads the rest of
/// the file as a string, and so does the grammar.
#[test]
fn stray_quote_in_an_unknown_item() {
    check_text("foo \"bar\nstage s { run \"x\" } # c\n# d\n");
    check_text("stage s {\n  foo \"bar\n  run \"x\" # c\n}\n");
    check_text("foo \"a\\\"\nstage s { run \"x\" } # c\n");
    check_text("foo \"a ${ b\" # c\nstage s { run \"x\" }\n");
}

/// The crashing inputs as the fuzzer wrote them (`tests/fuzzed/`), bytes unchanged.
#[test]
fn every_input_the_fuzzer_kept() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzzed");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let bytes = std::fs::read(e.unwrap().path()).unwrap();
        if let Ok(text) = std::str::from_utf8(&bytes) {
            check_text(text);
        }
        n += 1;
    }
    assert!(n > 0, "no inputs in {}", dir.display());
}
