//! Helpers for end-to-end tests: a workspace in a temp dir, the real `mlp` binary, and its
//! JSON event log.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

pub fn mlp_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_mlp"))
}

pub struct Ws {
    pub dir: tempfile::TempDir,
}

impl Ws {
    /// A workspace with `pipeline.mlp` holding `pipeline`.
    pub fn new(pipeline: &str) -> Ws {
        let dir = tempfile::tempdir().expect("tempdir");
        let ws = Ws { dir };
        ws.write("pipeline.mlp", pipeline);
        ws
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, rel: &str, text: &str) {
        let p = self.path().join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(p, text).expect("write");
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path().join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }

    pub fn exists(&self, rel: &str) -> bool {
        self.path().join(rel).exists()
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(mlp_bin());
        c.current_dir(self.path()).args(args).env("NO_COLOR", "1");
        c
    }

    /// Run `mlp ARGS` and return its output.
    pub fn mlp(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("spawn mlp")
    }

    /// `mlp run --json ARGS`: the events, and the exit code.
    pub fn run(&self, args: &[&str]) -> Run {
        let mut all = vec!["run", "--json"];
        all.extend_from_slice(args);
        let out = self.mlp(&all);
        Run::parse(out)
    }
}

pub struct Run {
    pub code: i32,
    pub events: Vec<Value>,
    pub stderr: String,
    pub stdout: String,
}

impl Run {
    pub fn parse(out: Output) -> Run {
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let events = stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("bad event line {l:?}: {e}\nstderr: {stderr}"))
            })
            .collect();
        Run {
            code: out.status.code().unwrap_or(-1),
            events,
            stderr,
            stdout,
        }
    }

    /// Each stage's final status (`ran`, `fresh`, `restored`, `failed`, `skipped`, ...).
    pub fn statuses(&self) -> BTreeMap<String, String> {
        self.events
            .iter()
            .filter(|e| e["event"] == "stage_finished")
            .map(|e| {
                (
                    e["stage"].as_str().unwrap_or("").to_string(),
                    e["status"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    }

    /// The stages that ran a command, sorted.
    pub fn ran(&self) -> Vec<String> {
        self.with_status("ran")
    }

    pub fn with_status(&self, status: &str) -> Vec<String> {
        self.statuses()
            .into_iter()
            .filter(|(_, s)| s == status)
            .map(|(n, _)| n)
            .collect()
    }

    pub fn event(&self, stage: &str) -> &Value {
        self.events
            .iter()
            .find(|e| e["event"] == "stage_finished" && e["stage"] == stage)
            .unwrap_or_else(|| panic!("no event for {stage}: {:?}\n{}", self.events, self.stderr))
    }

    pub fn nothing_to_do(&self) -> bool {
        self.events
            .iter()
            .any(|e| e["event"] == "finish" && e["nothing_to_do"] == true)
            || (self.code == 0 && self.ran().is_empty() && self.with_status("restored").is_empty())
    }

    #[track_caller]
    pub fn assert_ok(&self) -> &Self {
        assert_eq!(
            self.code, 0,
            "mlp run failed\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }
}

pub fn names(v: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// Under `CI=true` a missing service is a failure; elsewhere the test is skipped with a reason.
pub fn skip_or_fail(reason: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true but {reason}");
    }
    eprintln!("SKIPPED: {reason}");
}

/// A workspace holding a copy of `examples/NAME`, without what running it makes (the
/// directories its `.gitignore` lists).
pub fn copy_example(name: &str) -> Ws {
    let from = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name);
    let ignore = std::fs::read_to_string(from.join(".gitignore")).unwrap_or_default();
    let generated: Vec<&str> = ignore
        .lines()
        .map(|l| l.trim().trim_end_matches('/'))
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let ws = Ws {
        dir: tempfile::tempdir().expect("tempdir"),
    };
    copy_tree(&from, ws.path(), &generated);
    ws
}

fn copy_tree(from: &Path, to: &Path, skip: &[&str]) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let name = e.file_name();
        if skip.contains(&name.to_str().unwrap_or("")) || name == ".mlp" {
            continue;
        }
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &to.join(&name), skip);
        } else {
            // std::fs::copy keeps the permissions (scripts stay executable).
            std::fs::copy(e.path(), to.join(&name)).unwrap();
        }
    }
}

/// The JSON a successful command printed on stdout.
#[track_caller]
pub fn json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}
