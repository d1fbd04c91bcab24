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

/// Around the crashes found: a comment, a `#` or a quote in every place between tokens, in
/// strings and in unknown items.
#[test]
fn comments_and_quotes_in_odd_places() {
    let cases = [
        "stage s # c\n{ run \"x\" }\n",
        "for x in [1, # c\n 2] { stage s_${x} { run \"x\" } }\n",
        "param a = [1, # c\n2]\n",
        "stage s { in \"a\", # c\n \"b\" }\n",
        "env { A = \"x\" # c\n }\n",
        "stage s { check x > 1 # c\n \"msg\" }\n",
        "stage s { resources cpu = 2, # c\n mem = 4G }\n",
        "executor slurm { # c\n time = 1h }\n",
        "stage \"a # b\" { run \"x\" }\n",
        "stage s { run \"é\" } # ü\n",
        "stage s { run \"x\" } # c\r\n# d\r\n",
        "stage s {\n foo \"a\n # not comment \n\" \n}\n",
        "stage s { run \"${ a # x\n }\" }\n",
        "stage s { check (# c\n 1 > 2) }\n",
        "stage s { when # c\n true }\n",
        "stage s { out # c\n a = \"x\" }\n",
        "stage s { out a # c\n = \"x\" }\n",
        "param # c\n a = 1\n",
        "param a # c\n = 1\n",
        "stage # c\n s { }\n",
        "for # c\n x in [1] { }\n",
        "for x # c\n in [1] { }\n",
        "tracking mlflow # c\n { uri = \"http://x\" }\n",
        "stage s { executor slurm # c\n }\n",
        "stage s { env { # a\n } # b\n }\n",
        "stage s { always # c\n frozen }\n",
        "foo\n}\n",
        "stage s { x \"#\" # c\n }\n",
        "stage s { x \"a\\\" # c\n }\n",
        "stage s { x } # c\n",
        "x # c\n# d\nstage s {}\n",
        "stage s {\n  run \"a \\\n b\"\n}\n",
        "stage s { run \"a\\u{20}\" }\n",
        "stage s { run \"\t\n\" }\n",
        "include \"a\" include \"b\"# c\n",
        "stage s { in a.b # c\n, c }\n",
        "stage s { after a, # c\n b }\n",
        "stage s { params a.b, # c\n c }\n",
        "stage s { retry # c\n 3 }\n",
        "stage s { check abs(# c\n 1) > 0 }\n",
        "stage s { check a[0] # c\n > 1 }\n",
        "stage s { check -# c\n 1 > 0 }\n",
    ];
    for c in cases {
        check_text(c);
    }
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
