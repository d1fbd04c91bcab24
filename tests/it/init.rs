//! `mlp init`, `mlp completions`, `mlp help`, `-q/--quiet` and the help text of every
//! argument.

use std::process::Command;

use crate::common::{Mlp, Workspace};

#[test]
fn init_makes_a_pipeline_that_checks_and_runs() {
    let ws = Workspace::empty();
    ws.mlp(&["init"]).success();
    for f in ["pipeline.mlp", "params.yaml", ".gitignore"] {
        assert!(ws.exists(f), "{f}");
    }
    assert!(ws.read(".gitignore").lines().any(|l| l == ".mlp/"));
    ws.mlp(&["check"]).success();
    ws.mlp(&["fmt", "--check"]).success();
    let r = ws.run(&[]);
    r.assert_ok();
    assert_eq!(r.ran().len(), 2);
    assert_eq!(ws.read("out/loud.txt"), "HELLO, WORLD\n");
    assert!(ws.run(&[]).nothing_to_do());
}

#[test]
fn init_refuses_to_overwrite_and_writes_nothing() {
    let ws = Workspace::empty();
    ws.write("params.yaml", "mine: 1\n");
    let out = ws.mlp(&["init"]).failure(1);
    assert!(out.stderr().contains("params.yaml"), "{}", out.stderr());
    assert!(
        out.stderr().contains("nothing was written"),
        "{}",
        out.stderr()
    );
    assert_eq!(ws.read("params.yaml"), "mine: 1\n");
    assert!(!ws.exists("pipeline.mlp") && !ws.exists(".gitignore"));
    // Into a new directory, the quickstart: it checks, and names its python sources.
    ws.mlp(&["init", "new", "--template", "quickstart"])
        .success();
    assert!(ws.exists("new/src/train.py") && ws.exists("new/src/common.py"));
    ws.command(&["check"])
        .current_dir(ws.path().join("new"))
        .run()
        .success();
    ws.mlp(&["init", "new"]).failure(1);
}

#[test]
fn completions_for_every_shell_and_stage_names_in_bash() {
    let ws = Workspace::new(
        "pipeline \"c\"\nstage alpha {\n  out a = \"a\"\n  run \"touch ${out.a}\"\n}\nstage beta {\n  in  alpha.a\n  out b = \"b\"\n  run \"cp ${in[0]} ${out.b}\"\n}\n",
    );
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let out = ws.mlp(&["completions", shell]).success();
        assert!(out.stdout().contains("mlp"), "{shell}");
    }
    assert!(
        ws.mlp(&["completions", "zsh"])
            .success()
            .stdout()
            .contains(":_mlp_stages")
    );
    ws.mlp(&["completions", "tcsh"]).failure(2);
    let names = ws.mlp(&["graph", "--format", "names"]).success();
    assert_eq!(names.stdout(), "alpha\nbeta\n");
    // bash: the completion function, as bash calls it, offers the stage names.
    let script = ws
        .mlp(&["completions", "bash"])
        .success()
        .stdout()
        .to_string();
    ws.write("completion.bash", &script);
    let bin_dir = std::path::Path::new(env!("CARGO_BIN_EXE_mlp"))
        .parent()
        .unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let complete = |words: &str| -> String {
        let sh = format!(
            "source ./completion.bash; COMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); \
             COMP_LINE=\"${{COMP_WORDS[*]}}\"; COMP_POINT=${{#COMP_LINE}}; _mlp_stages mlp; printf '%s\\n' \"${{COMPREPLY[@]}}\""
        );
        let out = Command::new("bash")
            .args(["-c", &sh])
            .current_dir(ws.path())
            .env("PATH", &path)
            .output()
            .expect("bash");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(complete("mlp run ''"), "alpha\nbeta\n");
    assert_eq!(complete("mlp explain b"), "beta\n");
    assert_eq!(complete("mlp run --force a"), "alpha\n");
    assert!(complete("mlp ch").contains("check"));
}

#[test]
fn help_of_help_and_unknown_commands() {
    let out = Mlp::new(&["help", "--help"]).run().success();
    assert!(out.stdout().contains("Usage: mlp help"), "{}", out.stdout());
    let out = Mlp::new(&["help", "run"]).run().success();
    assert!(out.stdout().contains("Usage: mlp run"));
    Mlp::new(&["help", "nope"]).run().failure(2);
}

/// Every flag and positional of every command says what it is for.
#[test]
fn every_argument_has_help_text() {
    let top = Mlp::new(&["help"]).run().success();
    let cmds: Vec<String> = top
        .stdout()
        .split("Commands:")
        .nth(1)
        .unwrap()
        .split("\n\n")
        .next()
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect();
    assert!(cmds.len() > 10);
    let mut missing = Vec::new();
    for c in &cmds {
        let help = Mlp::new(&[c, "--help"]).run().success();
        for section in ["Arguments:", "Options:"] {
            let Some(body) = help.stdout().split(section).nth(1) else {
                continue;
            };
            for line in body.split("\n\n").next().unwrap().lines() {
                let t = line.trim_start();
                let indent = line.len() - t.len();
                // An argument line: two spaces of indent, its name, then two spaces and its help.
                if indent == 2 && t.split("  ").filter(|s| !s.trim().is_empty()).count() < 2 {
                    missing.push(format!("mlp {c}: `{t}`"));
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "arguments without help:\n{}",
        missing.join("\n")
    );
}

#[test]
fn quiet_prints_only_errors_and_what_was_asked() {
    let ws = Workspace::new(
        "pipeline \"q\"\nstage a {\n  out x = \"x\"\n  run \"echo 1 > ${out.x}\"\n}\n",
    );
    let out = ws.mlp(&["check", "-q"]).success();
    assert_eq!(out.stderr(), "");
    let out = ws.mlp(&["-q", "run"]).success();
    assert_eq!(out.stderr(), "");
    assert_eq!(ws.mlp(&["run", "--quiet"]).success().stderr(), "");
    let out = ws.mlp(&["status", "-q"]).success();
    assert_eq!(out.stderr(), "");
    assert!(out.stdout().contains("fresh"));
    // Errors still show.
    ws.write(
        "pipeline.mlp",
        "pipeline \"q\"\nstage a {\n  run \"x\"\n  out y = \n}\n",
    );
    let out = ws.mlp(&["check", "-q"]).failure(1);
    assert!(!out.stderr().is_empty());
    ws.write(
        "pipeline.mlp",
        "pipeline \"q\"\nstage a {\n  run \"exit 3\"\n}\n",
    );
    let out = ws.mlp(&["run", "-q"]).failure(1);
    assert!(out.stderr().contains("a failed"), "{}", out.stderr());
}

/// The examples and the templates `mlp init` writes are in `mlp fmt`'s layout.
#[test]
fn the_examples_and_templates_are_formatted() {
    let root = crate::common::root();
    for dir in [
        "examples/quickstart",
        "examples/churn",
        "examples/llm-rag",
        "templates/minimal",
    ] {
        let out = Mlp::new(&["fmt", "--check"])
            .current_dir(root.join(dir))
            .run();
        assert_eq!(out.code(), 0, "{dir}: {}{}", out.stdout(), out.stderr());
    }
}
