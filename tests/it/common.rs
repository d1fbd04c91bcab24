//! The one way the tests start `mlp`: a [`Workspace`] (a temporary directory holding the
//! files of a pipeline), [`Mlp`] (a builder for one `mlp` command) and [`Output`] (what it
//! printed and how it exited), plus [`Run`] (the JSON event log of `mlp run --json`).
//!
//! ```text
//! let ws = Workspace::new(PIPELINE);
//! ws.write("src.txt", "one\n");
//! let r = ws.run(&["-j", "2"]);                 // `mlp run --json -j 2`, its events
//! r.assert_ok();
//! let st = ws.mlp(&["status", "--json"]).success().json();
//! let out = ws.command(&["run"]).env("X", "1").run().failure(3);
//! ```
//!
//! Every command runs with `NO_COLOR=1` and without `CLICOLOR_FORCE`/`FORCE_COLOR`.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

/// The root of the repository (the `mlp` package).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A temporary directory holding a pipeline's files; deleted when dropped.
pub struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    /// An empty workspace.
    pub fn empty() -> Workspace {
        Workspace {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    /// A workspace with `pipeline.mlp` holding `pipeline`.
    pub fn new(pipeline: &str) -> Workspace {
        let ws = Workspace::empty();
        ws.write("pipeline.mlp", pipeline);
        ws
    }

    /// A workspace holding a copy of the directory `from`, without the names in `skip` (at
    /// any depth) and without `.mlp` (the state of an earlier run). Permissions are kept.
    pub fn copy_of(from: &Path, skip: &[&str]) -> Workspace {
        let ws = Workspace::empty();
        copy_tree(from, ws.path(), skip);
        ws
    }

    /// A workspace holding a copy of `examples/NAME`, without what running it makes (the
    /// directories its `.gitignore` lists).
    pub fn example(name: &str) -> Workspace {
        let from = root().join("examples").join(name);
        let ignore = std::fs::read_to_string(from.join(".gitignore")).unwrap_or_default();
        let generated: Vec<&str> = ignore
            .lines()
            .map(|l| l.trim().trim_end_matches('/'))
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        Workspace::copy_of(&from, &generated)
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Write `rel` (making its directories).
    pub fn write(&self, rel: &str, content: impl AsRef<[u8]>) {
        let p = self.path().join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(p, content).expect("write");
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path().join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }

    pub fn exists(&self, rel: &str) -> bool {
        self.path().join(rel).exists()
    }

    pub fn remove(&self, rel: &str) {
        std::fs::remove_file(self.path().join(rel)).unwrap_or_else(|e| panic!("rm {rel}: {e}"));
    }

    /// `mlp ARGS` in this workspace, to add to and then run or spawn.
    pub fn command(&self, args: &[&str]) -> Mlp {
        Mlp::new(args).current_dir(self.path())
    }

    /// Run `mlp ARGS` in this workspace.
    pub fn mlp(&self, args: &[&str]) -> Output {
        self.command(args).run()
    }

    /// Run `mlp run --json ARGS` in this workspace: its events and exit code.
    pub fn run(&self, args: &[&str]) -> Run {
        let mut all = vec!["run", "--json"];
        all.extend_from_slice(args);
        self.mlp(&all).events()
    }

    /// `text` with this workspace's path (as given and as the OS resolves it) shown as
    /// `[TMP]`.
    pub fn redact(&self, text: &str) -> String {
        let mut s = text.to_string();
        for d in [
            self.path().to_path_buf(),
            self.path().canonicalize().unwrap(),
        ] {
            s = s.replace(&d.display().to_string(), "[TMP]");
        }
        s
    }
}

/// The one directory copier.
fn copy_tree(from: &Path, to: &Path, skip: &[&str]) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display())) {
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

/// One `mlp` command: the real binary, without colour.
pub struct Mlp {
    cmd: Command,
}

impl Mlp {
    /// `mlp ARGS` in the test's working directory (the package root).
    pub fn new(args: &[&str]) -> Mlp {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mlp"));
        cmd.args(args)
            .env("NO_COLOR", "1")
            .env_remove("CLICOLOR_FORCE")
            .env_remove("FORCE_COLOR")
            // A developer's MLflow server is no business of the tests (tests/it/mlflow.rs
            // sets these for its own runs).
            .env_remove("MLFLOW_TRACKING_URI")
            .env_remove("MLFLOW_EXPERIMENT_NAME");
        Mlp { cmd }
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Mlp {
        self.cmd.arg(arg);
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Mlp {
        self.cmd.env(key, value);
        self
    }

    pub fn env_remove(mut self, key: &str) -> Mlp {
        self.cmd.env_remove(key);
        self
    }

    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Mlp {
        self.cmd.current_dir(dir);
        self
    }

    /// Run it to the end.
    pub fn run(mut self) -> Output {
        self.cmd.output().expect("spawn mlp").into()
    }

    /// Start it with stdout and stderr piped; [`Output::of`] waits for it.
    pub fn spawn(mut self) -> Child {
        self.cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn mlp")
    }

    /// Start it with stdout and stderr discarded.
    pub fn spawn_silent(mut self) -> Child {
        self.cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn mlp")
    }
}

/// How a command ended and what it printed.
pub struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

impl From<std::process::Output> for Output {
    fn from(out: std::process::Output) -> Output {
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Output {
    /// Wait for a spawned command.
    pub fn of(child: Child) -> Output {
        child.wait_with_output().expect("wait for mlp").into()
    }

    /// The exit code (-1 if a signal ended it).
    pub fn code(&self) -> i32 {
        self.code
    }

    pub fn stdout(&self) -> &str {
        &self.stdout
    }

    pub fn stderr(&self) -> &str {
        &self.stderr
    }

    /// Assert that it exited 0.
    #[track_caller]
    pub fn success(self) -> Output {
        assert_eq!(
            self.code, 0,
            "mlp failed\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }

    /// Assert that it exited with `code`.
    #[track_caller]
    pub fn failure(self, code: i32) -> Output {
        assert_eq!(
            self.code, code,
            "expected exit code {code}\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }

    /// Stdout as one JSON value.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}\nstderr: {}", self.stdout, self.stderr))
    }

    /// Stdout as the JSON lines of `mlp run --json`.
    pub fn events(self) -> Run {
        let events = self
            .stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| {
                    panic!("bad event line {l:?}: {e}\nstderr: {}", self.stderr)
                })
            })
            .collect();
        Run {
            code: self.code,
            events,
            stderr: self.stderr,
            stdout: self.stdout,
        }
    }
}

/// What `mlp run --json` printed: one event per line.
pub struct Run {
    pub code: i32,
    pub events: Vec<Value>,
    pub stderr: String,
    pub stdout: String,
}

impl Run {
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

/// Send SIGINT (Ctrl-C) to a spawned command; whether `kill` succeeded.
pub fn interrupt(child: &Child) -> bool {
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill")
        .success()
}

/// Stage names, sorted, to compare with [`Run::ran`] and [`Run::with_status`].
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
