//! `mlp lsp` over stdio: the end-to-end session of a real LSP client (pytest-lsp, in
//! tests/lsp/), and hover on a workspace that has run (its state read from `.mlp/`).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use serde_json::{Value, json};

use crate::common::{Workspace, root, skip_or_fail};

/// A Python that has pytest-lsp: `$MLP_LSP_PYTHON`, the CI virtualenv, or `python3`.
fn python_with_pytest_lsp() -> Option<PathBuf> {
    let venv = std::env::var("MLP_CI_VENV").unwrap_or_else(|_| "/opt/mlp-ci-venv".into());
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Ok(p) = std::env::var("MLP_LSP_PYTHON") {
        candidates.push(p.into());
    }
    candidates.push(PathBuf::from(venv).join("bin/python"));
    candidates.push("python3".into());
    candidates.into_iter().find(|py| {
        Command::new(py)
            .args(["-c", "import pytest_lsp"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

#[test]
fn a_real_client_over_stdio() {
    let Some(py) = python_with_pytest_lsp() else {
        skip_or_fail("no Python with pytest-lsp (pip install pytest-lsp; or set MLP_LSP_PYTHON)");
        return;
    };
    let out = Command::new(py)
        .args([
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "test_mlp_lsp.py",
        ])
        .current_dir(root().join("tests/lsp"))
        .env("MLP_BIN", env!("CARGO_BIN_EXE_mlp"))
        .output()
        .expect("run pytest");
    assert!(
        out.status.success(),
        "pytest-lsp failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A minimal JSON-RPC client over the server's stdin and stdout.
struct Stdio2 {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    next: u64,
}

impl Stdio2 {
    fn start() -> Stdio2 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mlp"))
            .arg("lsp")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn mlp lsp");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Stdio2 {
            child,
            stdin,
            stdout,
            next: 0,
        }
    }

    fn send(&mut self, msg: Value) {
        let body = msg.to_string();
        write!(self.stdin, "Content-Length: {}\r\n\r\n{body}", body.len()).unwrap();
        self.stdin.flush().unwrap();
    }

    fn recv(&mut self) -> Value {
        let mut len = 0;
        loop {
            let mut line = String::new();
            assert!(
                self.stdout.read_line(&mut line).unwrap() > 0,
                "the server hung up"
            );
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some(n) = line.strip_prefix("Content-Length: ") {
                len = n.parse().unwrap();
            }
        }
        let mut body = vec![0; len];
        self.stdout.read_exact(&mut body).unwrap();
        serde_json::from_slice(&body).unwrap()
    }

    fn request(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = self.next;
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        loop {
            let m = self.recv();
            if m["id"] == id {
                return m["result"].clone();
            }
        }
    }

    fn notify(&mut self, method: &str, params: Value) {
        self.send(json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    fn stop(mut self) {
        self.request("shutdown", Value::Null);
        self.notify("exit", Value::Null);
        let status = self.child.wait().unwrap();
        assert!(status.success(), "mlp lsp exits 0 after shutdown and exit");
    }
}

const PIPELINE: &str = r#"pipeline "state"

stage make {
  out data = "data.txt"
  run "echo hello > ${out.data}"
}

stage use {
  in  make.data, "extra.txt"
  out copy = "copy.txt"
  run "cat ${in[0]} ${in[1]} > ${out.copy}"
}
"#;

#[test]
fn hover_tells_the_state_from_the_workspace() {
    let ws = Workspace::new(PIPELINE);
    ws.write("extra.txt", "one\n");
    let file = std::fs::canonicalize(ws.path())
        .unwrap()
        .join("pipeline.mlp");
    let uri = format!("file://{}", file.display());
    let hover = |text: &str| -> String {
        let mut s = Stdio2::start();
        s.request("initialize", json!({"capabilities": {}}));
        s.notify("initialized", json!({}));
        s.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": uri, "languageId": "mlp", "version": 1, "text": PIPELINE}}),
        );
        let line = PIPELINE.lines().position(|l| l.contains(text)).unwrap();
        let col = PIPELINE.lines().nth(line).unwrap().find(text).unwrap();
        let h = s.request(
            "textDocument/hover",
            json!({"textDocument": {"uri": uri}, "position": {"line": line, "character": col + 1}}),
        );
        s.stop();
        h["contents"]["value"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    // Nothing ran: no state.
    let before = hover("use {");
    assert!(
        before.contains("cat data.txt extra.txt > copy.txt"),
        "{before}"
    );
    assert!(
        !before.contains("fresh") && !before.contains("stale"),
        "{before}"
    );
    ws.run(&[]).assert_ok();
    let after = hover("use {");
    assert!(after.contains("**fresh**"), "{after}");
    assert!(after.contains("last took"), "{after}");
    // An input changes: stale, and why.
    ws.write("extra.txt", "two\n");
    let stale = hover("use {");
    assert!(stale.contains("**stale**"), "{stale}");
    assert!(stale.contains("extra.txt"), "{stale}");
    assert!(hover("make {").contains("**fresh**"));
}

/// An input that does not exist is a Warning-severity diagnostic (E0170) at its string,
/// with the did-you-mean; fixing the path in the editor clears it.
#[test]
fn a_missing_input_is_a_warning() {
    let text = "stage train {\n  in \"src/trian.py\"\n  run \"python src/train.py\"\n}\n";
    let ws = Workspace::new(text);
    ws.write("src/train.py", "");
    let file = std::fs::canonicalize(ws.path())
        .unwrap()
        .join("pipeline.mlp");
    let uri = format!("file://{}", file.display());
    let mut s = Stdio2::start();
    s.request("initialize", json!({"capabilities": {}}));
    s.notify("initialized", json!({}));
    let published = |s: &mut Stdio2| -> Vec<Value> {
        loop {
            let m = s.recv();
            if m["method"] == "textDocument/publishDiagnostics" && m["params"]["uri"] == uri {
                return m["params"]["diagnostics"].as_array().cloned().unwrap();
            }
        }
    };
    s.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri, "languageId": "mlp", "version": 1, "text": text}}),
    );
    let d = published(&mut s);
    assert_eq!(d.len(), 1, "{d:#?}");
    assert_eq!(d[0]["severity"], 2, "Warning: {d:#?}");
    assert_eq!(d[0]["code"], "E0170");
    assert_eq!(d[0]["range"]["start"], json!({"line": 1, "character": 5}));
    let msg = d[0]["message"].as_str().unwrap();
    assert!(msg.contains("did you mean `src/train.py`?"), "{msg}");
    let fixed = text.replace("trian", "train");
    s.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 2}, "contentChanges": [{"text": fixed}]}),
    );
    assert_eq!(published(&mut s), Vec::<Value>::new());
    s.stop();
}
