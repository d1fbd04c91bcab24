//! The hand-written parser (`parse_fast`) and the pest parser build the same tree wherever
//! the hand-written one does not give up, and it gives up on no well-formed example.

use std::path::{Path, PathBuf};

use mlp_syntax::{parse_fast, parse_fast_or_why, parse_with_pest};
use proptest::prelude::*;

/// Both parsers agree on `src`; returns whether the fast one read it.
fn agree(src: &str) -> bool {
    match parse_fast(src) {
        Some(fast) => {
            match parse_with_pest(src) {
                Ok(slow) => assert_eq!(fast, slow, "the parsers differ on:\n{src}"),
                Err(e) => panic!("only the fast parser accepts:\n{src}\n{e:?}"),
            }
            true
        }
        None => false,
    }
}

/// Every example, fixture and book pipeline takes the fast parser.
#[path = "fast/coverage.rs"]
mod coverage;

fn mlp_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            mlp_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "mlp") {
            out.push(p);
        }
    }
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn well_formed_examples_take_the_fast_path() {
    let mut files = vec![
        repo().join("crates/mlp-syntax/tests/fixtures/design.mlp"),
        repo().join("examples/quickstart/pipeline.mlp"),
    ];
    files.retain(|f| f.exists());
    assert!(!files.is_empty());
    for f in files {
        let src = std::fs::read_to_string(&f).unwrap();
        assert!(agree(&src), "{}: left to pest", f.display());
    }
}

#[test]
fn every_fixture_parses_alike() {
    let mut files = Vec::new();
    mlp_files(&repo().join("tests/fixtures"), &mut files);
    assert!(files.len() > 20);
    for f in files {
        if let Ok(src) = std::fs::read_to_string(&f) {
            agree(&src);
        }
    }
}

#[test]
fn tricky_corners_parse_alike() {
    let cases = [
        // Implicit whitespace and comments where pest allows them.
        "stage a{in\"x\" ,b.c# c\n,\"y\"run\"${ params.x # c\n }\"}",
        "param p = [1, -2.5e3, \"a\", true, [false], ]",
        "param p = []",
        "param a.b.c = -0",
        "env { in = \"x\" A_1 = -3 B = true }",
        "for x in params.list { for y in [1,2] { stage \"s${x}_${y}\" { run \"r\" } } }",
        // Expressions: precedence, prefixes, calls, parentheses, durations.
        "stage a { check - - x.y[0] * (b + c) % d / e - f < g || !h && i != j == k >= l <= 1h30m }",
        "stage a { when failed (b) check max(a.b, 2, abs(-c)) > 1e5 \"m\" gate true.x }",
        "stage a { check a-1 check \"a\" \"b\" check x[1][2].y }",
        "stage a { check 1.5h }",
        "stage a { check 1. }",
        "stage a { check in.x > out }",
        // Items.
        "stage a { out x = \"o\", \"p\" metrics m = \"m.json\" after b, \"c\" params a.b, c }",
        "stage a { retry 4294967296 }",
        "stage a { retry 007 timeout 1m30s every 500ms resources cpu = 2, mem = 1.5GiB, gpu=1 }",
        "stage a { resources mem = 4GB, x = 99999999999 }",
        "stage a { always frozen promote env { X = \"1\" } }",
        "stage \"a b\" { fallback \"f\" }",
        "executor slurm { partition = \"gpu\" time = 2h args = [\"--x\", 1] qos = -1 ok = true }",
        "executor local stage a { executor slurm run \"r\" }",
        "executor slurm # c\n { } stage a { executor local # { \n run \"r\" executor x {t=1h30m} }",
        "executor slurm { time = 2h5 }",
        "executor slurm { time = 99999999999999999999999h }",
        "executor slurm { time = 1.5h }",
        "executor { }",
        "executor slurm { partition }",
        "stage executor { }",
        "tracking mlflow { uri = \"http://127.0.0.1:5000\"  experiment = \"churn\" }\nstage a { run \"r\" }",
        "tracking mlflow",
        "tracking mlflow # c\n { } stage a { run \"r\" }",
        "tracking mlflow { uri = 5 x = 2h }",
        "tracking { }",
        "tracking mlflow { uri }",
        "stage tracking { }",
        "stage a { tracking mlflow run \"r\" }",
        // `cache` starts an item but stays usable as a name.
        "cache link\nstage a { cache copy run \"r\" }",
        "cache link # c\n stage a { run \"r\" cache   hardlink }",
        "cache stage a { }",
        "cache link cache copy",
        "stage cache { in cache, cache.x out cache = \"c\" run \"${out.cache}\" }",
        "stage a { cache link cache copy }",
        "param cache = 1\nstage a { params cache }",
        "remote \"s3://bucket/cache\" { pull = true }\nstage a { run \"r\" }",
        "remote \"/shared/cache\"",
        "remote \"/shared/cache\" # c\n { } stage a { run \"r\" }",
        "remote \"x\" { pull = 5 y = 2h }",
        "remote { }",
        "remote x",
        "remote \"x\" { pull }",
        "stage remote { run \"r\" }",
        "stage a { in remote.d run \"r\" }",
        "remote \"${params.cache}\" { pull = false }",
        "executor ray { address = \"http://127.0.0.1:8265\" resources = [\"node1=1\", \"gpu\"] env_vars = [\"A=${params.a}\"] pending_timeout = 10m }",
        "executor ray stage a { executor ray { metadata = [\"team=ml\"] pip = [] runtime_env = \"{\\\"conda\\\": 1}\" } run \"r\" }",
        "stage a {\n  executor ray { resources = [\"node2\"] }\n  timeout 3s\n  out \"x\"\n  run \"sleep 300; touch x\"\n}\n",
        // The Slurm tests' pipelines (`tests/slurm.rs`).
        "executor slurm\nstage boom {\n  out \"never.txt\"\n  run \"exit 3\"\n}\nstage downstream {\n  in  boom\n  out \"after.txt\"\n  run \"touch after.txt\"\n}\n",
        "stage limited {\n  executor slurm { time = 1m }\n  timeout 3s\n  out \"x\"\n  run \"sleep 300; touch x\"\n}\n",
        "executor slurm { args = [\"--exclusive\"] }\nstage left {\n  out \"left.txt\"\n  run \"echo $SLURMD_NODENAME > left.txt\"\n}\n",
        // Strings.
        "stage a { run \"\\\" \\\\ \\n \\t \\r \\0 \\$ \\u{1F600} $ $x ${a}${b.c[0]}\" }",
        "stage a { run \"\\u{D800}\" }",
        "stage a { run \"\\q\" }",
        "stage a { run \"multi\nline\" }",
        "stage a { run \"${}\" }",
        "stage a { run \"${a.}\" }",
        "stage a { run \"${a[99999999999999999999999]}\" }",
        // Left to pest: unknown words, errors.
        "stag a { }",
        "stage a { foo }",
        "stage a { in }",
        "stage a { in \"x\", }",
        "param x = 1e999",
        "param x = 1e",
        "}",
        "",
        "# only a comment",
    ];
    let mut left = Vec::new();
    for c in cases {
        if !agree(c) && parse_with_pest(c).is_ok() {
            left.push((c, parse_fast_or_why(c).unwrap_err().to_string()));
        }
    }
    // What pest reads and the fast parser leaves to it, and why: only a misspelt keyword.
    assert_eq!(
        left,
        [
            // `remote` is not reserved: without its URL, pest reads an unknown word.
            ("remote x", "string at byte 7".to_string()),
            (
                "stage a { foo }",
                "unknown stage item keyword at byte 10".to_string()
            )
        ]
    );
}

/// The fast parser says what it gave up on and where.
#[test]
fn give_ups_name_the_construct_and_offset() {
    let deep = format!("param p = {}{}", "[".repeat(70), "]".repeat(70));
    let cases: &[(&str, &str, usize)] = &[
        ("stag a { }", "unknown item keyword", 0),
        ("}", "item", 0),
        ("stage a { foo }", "unknown stage item keyword", 10),
        ("stage a { 1 }", "stage item", 10),
        (
            "for x in [1] { foo }",
            "unknown item keyword in a for loop",
            15,
        ),
        ("stage a { run \"\\q\" }", "string escape", 16),
        ("stage a { run \"abc", "string", 15),
        ("stage a { run \"${}\" }", "string interpolation", 17),
        ("param x = 1e999", "number", 15),
        ("param x = ", "value", 10),
        ("stage a { every 5 }", "duration", 16),
        ("stage a { retry 99999999999 }", "retry count", 27),
        ("stage a { resources cpu = x }", "integer", 26),
        ("executor slurm { time }", "executor item", 22),
        ("executor { }", "executor item", 9),
        ("tracking { }", "tracking item", 9),
        ("cache \"link\"", "cache item", 6),
        ("stage a { cache }", "cache item", 16),
        ("cache", "cache item", 5),
        (
            "for x in [1] { cache link }",
            "unknown item keyword in a for loop",
            15,
        ),
        ("env { A }", "env block", 8),
        ("stage a { check max(1, }", "call", 21),
        ("stage a { in b. }", "stage item", 14),
        (&deep, "nesting deeper than 64 levels", 74),
    ];
    let wrong: Vec<String> = cases
        .iter()
        .filter_map(|(src, construct, at)| {
            let why = parse_fast_or_why(src).expect_err(src);
            ((why.construct, why.at) != (*construct, *at)).then(|| format!("{src:?}: {why}"))
        })
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

const SEEDS: &[&str] = &[
    include_str!("fixtures/design.mlp"),
    "executor slurm {\n  partition = \"gpu\"\n  time = 2h\n  args = [\"--exclusive\"]\n}\nstage a {\n  executor local\n  run \"x\"\n}\nstage b {\n  executor slurm { qos = \"high\" }\n  run \"y\"\n}\n",
    "param models = [\"gbm\", \"lr\"]\nfor m in params.models {\n  stage \"t_${m}\" {\n    in a.b, \"src/*.py\"\n    out o = \"m/${m}.pkl\"\n    run \"train ${in[0]} ${out.o}\"\n    check m.x[0] > -1.5e3 && !(y.z == \"q\")\n  }\n}\n",
];

/// Pieces to splice in: tokens of the language and characters that break them.
const PIECES: &[&str] = &[
    " ",
    "\n",
    "#",
    "\"",
    "\\",
    "${",
    "}",
    "{",
    "[",
    "]",
    "(",
    ")",
    ",",
    ".",
    "=",
    "-",
    "!",
    "<=",
    "&&",
    "stage",
    "in",
    "out",
    "params",
    "for",
    "env",
    "run",
    "check",
    "x",
    "1",
    "1e5",
    "30m",
    "executor",
    "slurm {",
    "tracking mlflow { uri = \"http://h\" }",
    "cache link",
    "time = 2h",
    "4G",
    "true",
    "u{41}",
    "é",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Random edits of well-formed files: wherever the fast parser reads the result, pest
    /// reads the same tree.
    #[test]
    fn edited_files_parse_alike(
        seed in 0..SEEDS.len(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0..4usize, prop::sample::select(PIECES)), 1..4),
    ) {
        let mut src = SEEDS[seed].to_string();
        for (at, del, piece) in edits {
            let mut i = at.index(src.len() + 1);
            while !src.is_char_boundary(i) {
                i -= 1;
            }
            let mut j = (i + del).min(src.len());
            while !src.is_char_boundary(j) {
                j += 1;
            }
            src.replace_range(i..j, piece);
        }
        agree(&src);
    }
}
