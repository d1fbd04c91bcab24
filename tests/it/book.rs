//! The book (`book/src/**/*.md`) cannot drift from the binary:
//!
//! 1. every ```` ```mlp ```` code block passes `mlp check`, in a temp dir where it is written
//!    as `pipeline.mlp` next to the files that earlier blocks of the same chapter declare
//!    (```` ```yaml,file=params.yaml ````). Blocks marked `mlp,error` (or `mlp,error=E0104`)
//!    must fail `mlp check` (with that code); blocks marked `mlp,warning=E0170` must pass
//!    it with that warning; blocks marked `mlp,fragment` may only show
//!    part of a file, so they only need to be free of syntax errors and unknown keywords,
//!    as they are or wrapped in a stage. A `set=KEY=VALUE` attribute passes `--set`.
//!    `{{#include path}}` lines are expanded as mdBook does.
//! 2. the CLI reference (`book/src/cli.md`) documents exactly the commands `mlp help`
//!    lists, every option `mlp help <command>` lists, every exit code of `src/exit.rs`,
//!    and every environment variable the engine sets or reads;
//! 3. the error-code chapter (`book/src/errors.md`) documents exactly the codes the
//!    source emits;
//! 4. `SUMMARY.md` links only to chapters that exist, and every chapter is linked.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::common::{Mlp, Output, Workspace, root};

fn book_src() -> PathBuf {
    root().join("book/src")
}

/// `mlp ARGS` as the book shows it: no GPUs.
fn mlp(args: &[&str]) -> Mlp {
    Mlp::new(args).env_remove("MLP_GPUS")
}

/// Every `.md` file under `dir`, sorted.
fn markdown_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "md") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn rel(p: &Path) -> String {
    p.strip_prefix(root()).unwrap_or(p).display().to_string()
}

/// `{{#include path}}` (whole files only, path relative to the chapter), as mdBook does.
fn expand_includes(md: &Path, body: &str) -> String {
    let mut out = String::new();
    for line in body.split_inclusive('\n') {
        let t = line.trim();
        if let Some(arg) = t
            .strip_prefix("{{#include ")
            .and_then(|r| r.strip_suffix("}}"))
        {
            let arg = arg.trim();
            assert!(
                !arg.contains(':'),
                "{}: only whole-file {{{{#include}}}} is supported by the book test: {t}",
                rel(md)
            );
            let path = md.parent().unwrap().join(arg);
            let inc = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {{{{#include {arg}}}}}: {e}", rel(md)));
            out.push_str(&inc);
            if !inc.ends_with('\n') {
                out.push('\n');
            }
        } else {
            out.push_str(line);
        }
    }
    out
}

/// A fenced code block.
#[derive(Debug)]
struct Block {
    /// 1-based line of the opening fence in the chapter.
    line: usize,
    lang: String,
    attrs: BTreeMap<String, String>,
    body: String,
}

/// The fenced code blocks of a chapter (``` fences, info string split on `,` and spaces).
fn code_blocks(md: &Path) -> Vec<Block> {
    let raw = std::fs::read_to_string(md).unwrap();
    let mut blocks = Vec::new();
    let mut lines = raw.lines().enumerate();
    while let Some((i, line)) = lines.next() {
        let t = line.trim_start();
        let ticks = t.chars().take_while(|c| *c == '`').count();
        if ticks < 3 {
            continue;
        }
        let fence = &t[..ticks];
        let info = t[ticks..].trim();
        let mut tokens = info
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty());
        let lang = tokens.next().unwrap_or("").to_string();
        let attrs = tokens
            .map(|tok| match tok.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (tok.to_string(), String::new()),
            })
            .collect();
        let mut body = String::new();
        let mut closed = false;
        for (_, l) in lines.by_ref() {
            if l.trim() == fence {
                closed = true;
                break;
            }
            body.push_str(l);
            body.push('\n');
        }
        assert!(closed, "{}:{}: code block never closed", rel(md), i + 1);
        blocks.push(Block {
            line: i + 1,
            lang,
            attrs,
            body: expand_includes(md, &body),
        });
    }
    blocks
}

/// A fresh workspace holding `files` and `pipeline.mlp`.
fn workspace(files: &BTreeMap<String, String>, pipeline: &str) -> Workspace {
    let ws = Workspace::empty();
    for (name, body) in files {
        ws.write(name, body);
    }
    ws.write("pipeline.mlp", pipeline);
    ws
}

/// Write `files` and `pipeline.mlp` into a fresh temp dir and run `mlp check --json`.
fn check_in_tempdir(
    files: &BTreeMap<String, String>,
    pipeline: &str,
    sets: &[String],
) -> (Output, Vec<String>) {
    let ws = workspace(files, pipeline);
    let mut c = mlp(&["check", "--json"]).current_dir(ws.path());
    for s in sets {
        c = c.arg("--set").arg(s);
    }
    let out = c.run();
    let codes = serde_json::from_str::<serde_json::Value>(out.stdout())
        .ok()
        .map(|v| {
            // Errors and warnings alike: a warning never fails the check.
            ["errors", "warnings"]
                .iter()
                .filter_map(|k| v[k].as_array())
                .flatten()
                .filter_map(|e| e["code"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    (out, codes)
}

/// The errors a fragment may not have: it must parse and use only real keywords.
fn is_syntax_level(code: &str) -> bool {
    code.starts_with("E000") || code == "E0100" || code == "E0101"
}

#[test]
fn every_mlp_code_block_passes_check() {
    let mut failures = Vec::new();
    let (mut valid, mut errors, mut fragments) = (0, 0, 0);
    let mut error_codes_shown = BTreeSet::new();
    for md in markdown_files(&book_src()) {
        let mut files: BTreeMap<String, String> = BTreeMap::new();
        for b in code_blocks(&md) {
            let place = format!("{}:{}", rel(&md), b.line);
            if let Some(name) = b.attrs.get("file") {
                assert!(!name.is_empty(), "{place}: `file=` needs a name");
                files.insert(name.clone(), b.body.clone());
                continue;
            }
            if b.lang != "mlp" {
                continue;
            }
            let sets: Vec<String> = b.attrs.get("set").into_iter().cloned().collect();
            if let Some(code) = b.attrs.get("error") {
                errors += 1;
                let (out, codes) = check_in_tempdir(&files, &b.body, &sets);
                // A bad `--set` is bad usage (exit 2); anything else in the pipeline, 1.
                let want = if sets.is_empty() { 1 } else { 2 };
                if out.code() != want {
                    failures.push(format!(
                        "{place}: an `mlp,error` block must fail `mlp check` with exit code {want}, got {:?}\n{}",
                        Some(out.code()),
                        b.body
                    ));
                } else if !code.is_empty() && !codes.contains(code) {
                    failures.push(format!(
                        "{place}: expected error {code}, `mlp check` reported {codes:?}\n{}",
                        b.body
                    ));
                }
                if !code.is_empty() {
                    error_codes_shown.insert(code.clone());
                }
            } else if b.attrs.contains_key("fragment") {
                fragments += 1;
                let (_, as_is) = check_in_tempdir(&files, &b.body, &sets);
                let ok = !as_is.iter().any(|c| is_syntax_level(c)) || {
                    let wrapped = format!("stage fragment {{\n{}}}\n", b.body);
                    let (_, codes) = check_in_tempdir(&files, &wrapped, &sets);
                    !codes.iter().any(|c| is_syntax_level(c))
                };
                if !ok {
                    failures.push(format!(
                        "{place}: this fragment does not parse (as it is, or inside a stage): {as_is:?}\n{}",
                        b.body
                    ));
                }
            } else {
                valid += 1;
                let (out, codes) = check_in_tempdir(&files, &b.body, &sets);
                if let Some(code) = b.attrs.get("warning")
                    && out.code() == 0
                    && !codes.contains(code)
                {
                    failures.push(format!(
                        "{place}: expected warning {code}, `mlp check` reported {codes:?}\n{}",
                        b.body
                    ));
                }
                if out.code() != 0 {
                    // Render the diagnostics for the failure message.
                    let ws = workspace(&files, &b.body);
                    let shown = mlp(&["check"]).current_dir(ws.path()).run();
                    failures.push(format!(
                        "{place}: this `mlp` block does not pass `mlp check` (mark it `mlp,error` or `mlp,fragment` if it is not meant to):\n{}\n{}",
                        b.body,
                        shown.stderr()
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} book code block(s) are wrong:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    // Guard against a parser change in this test that silently finds nothing.
    assert!(
        valid >= 30,
        "only {valid} valid `mlp` blocks found in the book"
    );
    assert!(
        errors >= 35,
        "only {errors} `mlp,error` blocks found in the book"
    );
    assert!(fragments >= 1, "no `mlp,fragment` block found in the book");
    assert!(error_codes_shown.len() >= 35, "{error_codes_shown:?}");
}

// ------------------------------------------------------------------------ CLI --

/// The lines of a clap help section (`Commands:`, `Options:` ...), up to the blank line.
fn help_section<'a>(help: &'a str, title: &str) -> Vec<&'a str> {
    let mut lines = help.lines().skip_while(|l| l.trim() != title);
    lines.next();
    lines.take_while(|l| !l.trim().is_empty()).collect()
}

fn subcommands() -> Vec<String> {
    let out = mlp(&["help"]).run().success();
    let help = out.stdout();
    let cmds: Vec<String> = help_section(help, "Commands:")
        .iter()
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect();
    assert!(
        cmds.len() >= 5,
        "cannot read the commands of `mlp help`:\n{help}"
    );
    cmds
}

/// The options of `mlp help CMD`: each as (short, long), e.g. (Some("-j"), "--jobs").
fn options(cmd: &str) -> Vec<(Option<String>, String)> {
    let out = mlp(&["help", cmd]).run();
    assert!(out.code() == 0, "mlp help {cmd}");
    let help = out.stdout();
    let opts: Vec<(Option<String>, String)> = help_section(help, "Options:")
        .iter()
        .filter_map(|l| {
            let l = l.trim_start();
            if !l.starts_with('-') {
                return None; // a continuation line of a long description
            }
            let spec = l.split("  ").next().unwrap_or(l);
            let mut short = None;
            let mut long = None;
            for w in spec.split([',', ' ']).filter(|w| !w.is_empty()) {
                if let Some(rest) = w.strip_prefix("--") {
                    long.get_or_insert_with(|| format!("--{rest}"));
                } else if w.len() == 2 && w.starts_with('-') {
                    short.get_or_insert_with(|| w.to_string());
                }
            }
            long.map(|lg| (short, lg))
        })
        .collect();
    assert!(
        opts.iter().any(|(_, l)| l == "--help"),
        "cannot read the options of `mlp help {cmd}`:\n{help}"
    );
    opts
}

/// `## heading` → its text up to the next `## ` heading.
fn sections(md: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in md.lines() {
        if let Some(h) = line.strip_prefix("## ") {
            out.push((h.trim().to_string(), String::new()));
        } else if let Some((_, body)) = out.last_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    out
}

/// Whether `word` (an option such as `--keep` or `-k`) occurs in `hay` as a whole word.
fn mentions(hay: &str, word: &str) -> bool {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    hay.match_indices(word).any(|(i, _)| {
        let before = hay[..i].chars().next_back();
        let after = hay[i + word.len()..].chars().next();
        !before.is_some_and(is_word) && !after.is_some_and(is_word)
    })
}

#[test]
fn cli_reference_documents_every_command_and_option() {
    let cli_md = std::fs::read_to_string(book_src().join("cli.md")).unwrap();
    let secs = sections(&cli_md);
    let documented: BTreeMap<String, String> = secs
        .iter()
        .filter_map(|(h, body)| {
            let cmd = h.strip_prefix("`mlp ")?.strip_suffix('`')?;
            Some((cmd.to_string(), body.clone()))
        })
        .collect();
    let global = secs
        .iter()
        .find(|(h, _)| h == "Global options")
        .map(|(_, b)| b.clone())
        .expect("cli.md has a `## Global options` section");
    let mut problems = Vec::new();
    let cmds = subcommands();
    for cmd in &cmds {
        let Some(section) = documented.get(cmd) else {
            problems.push(format!(
                "`mlp {cmd}` exists but cli.md has no `## `mlp {cmd}`` section"
            ));
            continue;
        };
        if cmd == "help" {
            continue;
        }
        for (short, long) in options(cmd) {
            // Options clap gives every command are documented once, globally.
            let place = if ["--help", "--version", "--file", "--quiet"].contains(&long.as_str()) {
                &global
            } else {
                section
            };
            if !mentions(place, &long) {
                problems.push(format!("`mlp {cmd} {long}` is not documented in cli.md"));
            }
            if let Some(s) = short
                && !mentions(place, &s)
            {
                problems.push(format!(
                    "`mlp {cmd} {s}` (short for {long}) is not documented in cli.md"
                ));
            }
        }
    }
    for cmd in documented.keys() {
        if !cmds.contains(cmd) {
            problems.push(format!(
                "cli.md documents `mlp {cmd}`, which `mlp help` does not list"
            ));
        }
    }
    // The command table at the top lists each command too.
    let top = cli_md.split("\n## ").next().unwrap_or("");
    for cmd in &cmds {
        if !top.contains(&format!("`mlp {cmd}`")) {
            problems.push(format!(
                "the table at the top of cli.md does not list `mlp {cmd}`"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn cli_reference_documents_every_exit_code() {
    let exit_rs = std::fs::read_to_string(root().join("src/exit.rs")).unwrap();
    let module = exit_rs
        .split("pub enum ExitStatus")
        .nth(1)
        .and_then(|m| m.split("\n}").next())
        .expect("src/exit.rs has a `pub enum ExitStatus { ... }`");
    let codes: BTreeSet<String> = module
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            if l.starts_with("//") {
                return None;
            }
            let v = l.split_once(" = ")?.1.trim_end_matches(',').trim();
            Some(v.to_string())
        })
        .collect();
    assert!(
        codes.len() >= 5,
        "cannot read the exit codes from src/exit.rs: {codes:?}"
    );
    let cli_md = std::fs::read_to_string(book_src().join("cli.md")).unwrap();
    let table = sections(&cli_md)
        .into_iter()
        .find(|(h, _)| h == "Exit codes")
        .map(|(_, b)| b)
        .expect("cli.md has a `## Exit codes` section");
    let documented: BTreeSet<String> = table
        .lines()
        .filter_map(|l| l.strip_prefix("| ")?.split(" |").next())
        .map(|c| c.trim().to_string())
        .filter(|c| c.chars().all(|ch| ch.is_ascii_digit()) && !c.is_empty())
        .collect();
    assert_eq!(
        documented, codes,
        "the exit codes in cli.md differ from src/exit.rs `ExitStatus`"
    );
}

/// String literals naming environment variables in the non-test code of the binary, the
/// engine and the planner.
fn env_vars_in_source() -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut files: Vec<PathBuf> = Vec::new();
    // Recursively (a command may live in `src/commands/`), but not unit-test files.
    let mut stack: Vec<PathBuf> = ["src", "crates/mlp-engine/src", "crates/mlp-plan/src"]
        .iter()
        .map(|d| root().join(d))
        .collect();
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap_or_default();
            if p.is_dir() {
                if name != "tests" {
                    stack.push(p);
                }
            } else if p.extension().is_some_and(|x| x == "rs") && name != "tests.rs" {
                files.push(p);
            }
        }
    }
    for f in files {
        let src = std::fs::read_to_string(&f).unwrap();
        let code = src.split("#[cfg(test)]").next().unwrap_or("");
        for (i, _) in code.match_indices("\"MLP_") {
            let name: String = code[i + 1..]
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            found.insert(name);
        }
        for pat in ["env::var(\"", "env::var_os(\""] {
            for (i, _) in code.match_indices(pat) {
                let name: String = code[i + pat.len()..]
                    .chars()
                    .take_while(|c| *c != '"')
                    .collect();
                found.insert(name);
            }
        }
    }
    found
}

#[test]
fn cli_reference_documents_every_environment_variable() {
    let vars = env_vars_in_source();
    for expected in ["MLP_PARAMS", "MLP_STAGE", "MLP_GPUS", "NO_COLOR"] {
        assert!(
            vars.contains(expected),
            "{expected} not found in the source: {vars:?}"
        );
    }
    let cli_md = std::fs::read_to_string(book_src().join("cli.md")).unwrap();
    let section = sections(&cli_md)
        .into_iter()
        .find(|(h, _)| h == "Environment variables")
        .map(|(_, b)| b)
        .expect("cli.md has a `## Environment variables` section");
    let missing: Vec<&String> = vars
        .iter()
        .filter(|v| !section.contains(v.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "environment variables used by mlp but not documented in cli.md: {missing:?}"
    );
}

// --------------------------------------------------------------- error codes --

#[test]
fn error_chapter_documents_exactly_the_codes_in_the_source() {
    let mut in_source = BTreeSet::new();
    let mut stack = vec![root().join("crates")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                if p.file_name().is_some_and(|n| n != "tests" && n != "target") {
                    stack.push(p);
                }
            } else if p.extension().is_some_and(|x| x == "rs")
                && p.file_name().is_some_and(|n| n != "tests.rs")
            {
                let src = std::fs::read_to_string(&p).unwrap();
                let code = src.split("#[cfg(test)]").next().unwrap_or("");
                // Codes are string literals: "E0104".
                for (i, _) in code.match_indices("\"E") {
                    let lit: String = code[i + 1..].chars().take(6).collect();
                    if lit.len() == 6
                        && lit.ends_with('"')
                        && lit[1..5].chars().all(|ch| ch.is_ascii_digit())
                    {
                        in_source.insert(lit[..5].to_string());
                    }
                }
            }
        }
    }
    assert!(
        in_source.len() >= 30,
        "cannot find the error codes in crates/: {in_source:?}"
    );
    let errors_md = std::fs::read_to_string(book_src().join("errors.md")).unwrap();
    let documented: BTreeSet<String> = sections(&errors_md)
        .into_iter()
        .map(|(h, _)| h)
        .filter(|h| {
            h.len() == 5 && h.starts_with('E') && h[1..].chars().all(|c| c.is_ascii_digit())
        })
        .collect();
    let undocumented: Vec<&String> = in_source.difference(&documented).collect();
    let stale: Vec<&String> = documented.difference(&in_source).collect();
    assert!(
        undocumented.is_empty() && stale.is_empty(),
        "errors.md is out of date: codes in the source without a `## CODE` section: {undocumented:?}; sections for codes the source no longer has: {stale:?}"
    );
    // Each code is in the summary table at the top too.
    for c in &in_source {
        assert!(
            errors_md.contains(&format!("| [{c}](#{})", c.to_lowercase())),
            "errors.md: {c} is missing from the table at the top"
        );
    }
}

// ------------------------------------------------------------------- summary --

#[test]
fn summary_links_every_chapter_and_only_existing_ones() {
    let src = book_src();
    let summary = std::fs::read_to_string(src.join("SUMMARY.md")).unwrap();
    let mut linked = BTreeSet::new();
    for (i, _) in summary.match_indices("](") {
        let target: String = summary[i + 2..].chars().take_while(|c| *c != ')').collect();
        assert!(
            src.join(&target).is_file(),
            "SUMMARY.md links to `{target}`, which does not exist"
        );
        linked.insert(src.join(&target));
    }
    for md in markdown_files(&src) {
        if md.file_name().is_some_and(|n| n == "SUMMARY.md") {
            continue;
        }
        assert!(
            linked.contains(&md),
            "{} is not linked from SUMMARY.md",
            rel(&md)
        );
    }
    let toml = std::fs::read_to_string(root().join("book/book.toml")).unwrap();
    assert!(
        toml.contains("title = \"mlp\""),
        "book.toml: title must be \"mlp\""
    );
}
