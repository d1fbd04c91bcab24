//! The server in-process, over lsp-server's in-memory connection: a client sends what an
//! editor sends and checks what comes back.

use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::Duration;

use lsp_server::{Connection, Message, Notification, Request, RequestId};
use mlp_lsp::uri;
use serde_json::{Value, json};

const PIPELINE: &str = r#"# Données: é𝔸 — a demo
pipeline "demo"

params "params.yaml"

include "more.mlp"

stage prep {
  in     "data/raw.csv"
  out    clean = "data/clean.csv"
  params train.lr
  run    "python prep.py ${params.train.lr} ${out.clean}"
}

stage train {
  in      prep.clean
  out     model = "model.bin"
  metrics scores = "scores.json"
  run     "python train.py ${in[0]} ${out.model} ${metrics.scores}"
  check   scores.auc > 0.5 && params.train.lr < 1 "too low"
  gate    scores.auc >= baseline.scores.auc - 0.1
}
"#;

const MORE: &str = r#"stage report {
  in  train.model
  out r = "report.txt"
  run "cat ${in[0]} > ${out.r}"
}
"#;

const PARAMS: &str = "train:\n  lr: 0.1\n  epochs: 3\n";

struct Client {
    conn: Connection,
    server: Option<JoinHandle<()>>,
    next: i32,
    dir: tempfile::TempDir,
}

impl Client {
    /// A server on a workspace with the demo pipeline, initialized.
    fn new() -> Client {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        std::fs::write(dir.path().join("data/raw.csv"), "x\n").unwrap();
        std::fs::write(dir.path().join("pipeline.mlp"), PIPELINE).unwrap();
        std::fs::write(dir.path().join("more.mlp"), MORE).unwrap();
        std::fs::write(dir.path().join("params.yaml"), PARAMS).unwrap();
        let (server, conn) = Connection::memory();
        let handle = std::thread::spawn(move || mlp_lsp::serve(&server).unwrap());
        let mut c = Client {
            conn,
            server: Some(handle),
            next: 0,
            dir,
        };
        let caps = c.request("initialize", json!({"capabilities": {}}));
        assert_eq!(caps["capabilities"]["hoverProvider"], true);
        c.notify("initialized", json!({}));
        c
    }

    fn path(&self, rel: &str) -> PathBuf {
        std::fs::canonicalize(self.dir.path()).unwrap().join(rel)
    }

    fn uri(&self, rel: &str) -> String {
        uri::from_path(&self.path(rel)).as_str().to_string()
    }

    fn notify(&self, method: &str, params: Value) {
        let n = Notification::new(method.into(), params);
        self.conn.sender.send(Message::Notification(n)).unwrap();
    }

    /// Send a request; its result (notifications that come first are dropped).
    fn request(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = RequestId::from(self.next);
        let r = Request::new(id.clone(), method.into(), params);
        self.conn.sender.send(Message::Request(r)).unwrap();
        loop {
            match self.recv() {
                Message::Response(r) if r.id == id => {
                    if let Some(e) = r.error {
                        return json!({"error": e.message});
                    }
                    return r.result.unwrap_or(Value::Null);
                }
                _ => continue,
            }
        }
    }

    fn recv(&self) -> Message {
        self.conn
            .receiver
            .recv_timeout(Duration::from_secs(20))
            .expect("the server answers")
    }

    /// The next diagnostics published for `rel`.
    fn diagnostics(&self, rel: &str) -> Vec<Value> {
        let want = self.uri(rel);
        loop {
            if let Message::Notification(n) = self.recv()
                && n.method == "textDocument/publishDiagnostics"
                && n.params["uri"] == want.as_str()
            {
                return n.params["diagnostics"].as_array().unwrap().clone();
            }
        }
    }

    fn open(&self, rel: &str, text: &str) {
        self.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": self.uri(rel), "languageId": "mlp", "version": 1, "text": text}}),
        );
    }

    fn change(&self, rel: &str, version: i32, text: &str) {
        self.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": self.uri(rel), "version": version}, "contentChanges": [{"text": text}]}),
        );
    }

    /// A request at the position of the `nth` occurrence of `needle` in `text` (plus `skip`
    /// characters).
    fn at(
        &mut self,
        method: &str,
        rel: &str,
        text: &str,
        needle: &str,
        skip: usize,
        extra: Value,
    ) -> Value {
        let pos = position(text, needle, skip);
        let mut params = json!({"textDocument": {"uri": self.uri(rel)}, "position": pos});
        if let (Some(p), Some(e)) = (params.as_object_mut(), extra.as_object()) {
            p.extend(e.clone());
        }
        self.request(method, params)
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.request("shutdown", Value::Null);
        self.notify("exit", Value::Null);
        if let Some(h) = self.server.take() {
            h.join().unwrap();
        }
    }
}

/// The protocol position (UTF-16 column) of `needle` plus `skip` characters in `text`.
fn position(text: &str, needle: &str, skip: usize) -> Value {
    let at = text
        .find(needle)
        .unwrap_or_else(|| panic!("`{needle}` in the text"));
    let before = &text[..at];
    let line = before.matches('\n').count();
    let line_text = &before[before.rfind('\n').map_or(0, |i| i + 1)..];
    let col: usize = line_text.chars().map(char::len_utf16).sum::<usize>() + skip;
    json!({"line": line, "character": col})
}

#[test]
fn diagnostics_are_the_checks_with_utf16_ranges() {
    let c = Client::new();
    assert!(Path::new(&c.path("pipeline.mlp")).exists());
    c.open("pipeline.mlp", PIPELINE);
    assert_eq!(c.diagnostics("pipeline.mlp"), Vec::<Value>::new());
    // An unknown stage after non-ASCII text on the same line: `𝔸` is 2 UTF-16 units.
    let bad = PIPELINE.replace("  in      prep.clean", "  in      \"é𝔸\", prepp.clean");
    c.change("pipeline.mlp", 2, &bad);
    let d = c.diagnostics("pipeline.mlp");
    assert_eq!(d.len(), 1, "{d:?}");
    let start = position(&bad, "prepp", 0);
    assert_eq!(d[0]["range"]["start"], start);
    assert_eq!(
        d[0]["range"]["end"]["character"],
        start["character"].as_u64().unwrap() + 5
    );
    // The same code, message and help as `mlp check`.
    let root = c.path("pipeline.mlp");
    let cli = mlp_plan::load_str(
        root.to_str().unwrap(),
        &bad,
        root.parent().unwrap(),
        &Default::default(),
    )
    .unwrap_err();
    let want = &cli.items[0];
    assert_eq!(d[0]["code"], want.code);
    let msg = d[0]["message"].as_str().unwrap();
    assert!(msg.starts_with(&want.message), "{msg}");
    assert!(msg.contains(want.help.as_deref().unwrap()), "{msg}");
    assert!(msg.contains("did you mean `prep`"), "{msg}");
    // Fixed again: the diagnostics are cleared.
    c.change("pipeline.mlp", 3, PIPELINE);
    assert_eq!(c.diagnostics("pipeline.mlp"), Vec::<Value>::new());
}

#[test]
fn editing_params_or_an_include_rechecks_the_pipeline() {
    let c = Client::new();
    c.open("pipeline.mlp", PIPELINE);
    assert!(c.diagnostics("pipeline.mlp").is_empty());
    // The params file loses `train.lr`: the pipeline that uses it gets the error.
    c.open("params.yaml", PARAMS);
    assert!(c.diagnostics("pipeline.mlp").is_empty());
    c.change("params.yaml", 2, "train:\n  epochs: 3\n");
    let d = c.diagnostics("pipeline.mlp");
    assert!(!d.is_empty());
    assert!(
        d.iter()
            .all(|d| d["message"].as_str().unwrap().contains("train.lr")),
        "{d:?}"
    );
    c.change("params.yaml", 3, PARAMS);
    assert!(c.diagnostics("pipeline.mlp").is_empty());
    // An error in an included file is published for that file.
    c.open("more.mlp", MORE);
    assert!(c.diagnostics("more.mlp").is_empty());
    c.change("more.mlp", 2, &MORE.replace("train.model", "train.modle"));
    let d = c.diagnostics("more.mlp");
    assert_eq!(d[0]["code"], "E0103", "{d:?}");
    assert_eq!(d[0]["range"]["start"], position(MORE, "model", 0));
}

#[test]
fn hover_shows_stage_params_and_types() {
    let mut c = Client::new();
    c.open("pipeline.mlp", PIPELINE);
    c.diagnostics("pipeline.mlp");
    let h = c.at(
        "textDocument/hover",
        "pipeline.mlp",
        PIPELINE,
        "prep.clean",
        1,
        json!({}),
    );
    let v = h["contents"]["value"].as_str().unwrap();
    assert!(v.contains("stage `prep`"), "{v}");
    assert!(v.contains("python prep.py 0.1 data/clean.csv"), "{v}");
    assert!(v.contains("data/raw.csv"), "{v}");
    assert!(v.contains("clean = `data/clean.csv`"), "{v}");
    assert!(!v.contains("fresh"), "no workspace, no state: {v}");
    let h = c.at(
        "textDocument/hover",
        "pipeline.mlp",
        PIPELINE,
        "params.train.lr}",
        9,
        json!({}),
    );
    let v = h["contents"]["value"].as_str().unwrap();
    assert!(v.contains("train.lr") && v.contains("0.1"), "{v}");
    // `scores.auc > 0.5`: a bool; `0.5`: a number.
    let h = c.at(
        "textDocument/hover",
        "pipeline.mlp",
        PIPELINE,
        "> 0.5",
        0,
        json!({}),
    );
    let v = h["contents"]["value"].as_str().unwrap();
    assert_eq!(v, "`scores.auc > 0.5`: bool");
    let h = c.at(
        "textDocument/hover",
        "pipeline.mlp",
        PIPELINE,
        "0.5 &&",
        1,
        json!({}),
    );
    assert_eq!(h["contents"]["value"], "`0.5`: number");
}

#[test]
fn definition_of_stages_params_includes_and_outputs() {
    let mut c = Client::new();
    c.open("pipeline.mlp", PIPELINE);
    c.diagnostics("pipeline.mlp");
    let def = |c: &mut Client, needle: &str, skip: usize| {
        let r = c.at(
            "textDocument/definition",
            "pipeline.mlp",
            PIPELINE,
            needle,
            skip,
            json!({}),
        );
        r.as_array()
            .and_then(|a| a.first().cloned())
            .unwrap_or(Value::Null)
    };
    let d = def(&mut c, "prep.clean", 2);
    assert_eq!(d["uri"], c.uri("pipeline.mlp"));
    assert_eq!(d["range"]["start"], position(PIPELINE, "prep {", 0));
    let d = def(&mut c, "prep.clean", 6);
    assert_eq!(d["range"]["start"], position(PIPELINE, "clean =", 0));
    let d = def(&mut c, "${params.train.lr}", 15);
    assert_eq!(d["uri"], c.uri("params.yaml"));
    assert_eq!(d["range"]["start"], json!({"line": 1, "character": 2}));
    let d = def(&mut c, "\"more.mlp\"", 3);
    assert_eq!(d["uri"], c.uri("more.mlp"));
    let d = def(&mut c, "${out.model}", 7);
    assert_eq!(d["range"]["start"], position(PIPELINE, "model =", 0));
    // From the included file to a stage of the root.
    c.open("more.mlp", MORE);
    let r = c.at(
        "textDocument/definition",
        "more.mlp",
        MORE,
        "train.model",
        1,
        json!({}),
    );
    assert_eq!(r[0]["uri"], c.uri("pipeline.mlp"));
    assert_eq!(r[0]["range"]["start"], position(PIPELINE, "train {", 0));
}

#[test]
fn references_and_rename_across_files() {
    let mut c = Client::new();
    c.open("pipeline.mlp", PIPELINE);
    c.diagnostics("pipeline.mlp");
    let refs = c.at(
        "textDocument/references",
        "pipeline.mlp",
        PIPELINE,
        "train {",
        1,
        json!({"context": {"includeDeclaration": true}}),
    );
    let refs = refs.as_array().unwrap();
    assert_eq!(refs.len(), 2, "{refs:?}");
    assert!(refs.iter().any(|r| r["uri"] == c.uri("more.mlp")));
    let edit = c.at(
        "textDocument/rename",
        "pipeline.mlp",
        PIPELINE,
        "model =",
        0,
        json!({"newName": "weights"}),
    );
    let ch = &edit["changes"];
    assert_eq!(
        ch[c.uri("pipeline.mlp")].as_array().unwrap().len(),
        2,
        "{ch}"
    );
    assert_eq!(ch[c.uri("more.mlp")].as_array().unwrap().len(), 1, "{ch}");
    // Applied, the pipeline still checks.
    let new = apply(PIPELINE, ch[c.uri("pipeline.mlp")].as_array().unwrap());
    let more = apply(MORE, ch[c.uri("more.mlp")].as_array().unwrap());
    assert!(new.contains("weights = \"model.bin\"") && new.contains("${out.weights}"));
    assert!(more.contains("train.weights"));
    let bad = c.at(
        "textDocument/rename",
        "pipeline.mlp",
        PIPELINE,
        "model =",
        0,
        json!({"newName": "stage"}),
    );
    assert!(bad["error"].as_str().unwrap().contains("not a valid name"));
    let r = c.at(
        "textDocument/prepareRename",
        "pipeline.mlp",
        PIPELINE,
        "\"more.mlp\"",
        2,
        json!({}),
    );
    assert_eq!(r, Value::Null);
}

/// Apply single-line text edits.
fn apply(text: &str, edits: &[Value]) -> String {
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let mut edits = edits.to_vec();
    edits.sort_by_key(|e| {
        std::cmp::Reverse((
            e["range"]["start"]["line"].as_u64(),
            e["range"]["start"]["character"].as_u64(),
        ))
    });
    for e in edits {
        let l = e["range"]["start"]["line"].as_u64().unwrap() as usize;
        let utf16 = |c: u64| {
            let mut n = 0;
            lines[l]
                .char_indices()
                .find(|(_, ch)| {
                    let hit = n >= c;
                    n += ch.len_utf16() as u64;
                    hit
                })
                .map_or(lines[l].len(), |(i, _)| i)
        };
        let (s, t) = (
            utf16(e["range"]["start"]["character"].as_u64().unwrap()),
            utf16(e["range"]["end"]["character"].as_u64().unwrap()),
        );
        lines[l].replace_range(s..t, e["newText"].as_str().unwrap());
    }
    lines.join("\n") + "\n"
}

fn labels(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|i| i["label"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn completion_in_context() {
    let mut c = Client::new();
    c.open("pipeline.mlp", PIPELINE);
    c.diagnostics("pipeline.mlp");
    let mut complete = |text: &str, needle: &str, skip: usize| {
        c.change("pipeline.mlp", 2, text);
        c.at(
            "textDocument/completion",
            "pipeline.mlp",
            text,
            needle,
            skip,
            json!({}),
        )
    };
    // `prep.`: its outputs.
    let t = PIPELINE.replace("in      prep.clean", "in      prep.");
    assert_eq!(labels(&complete(&t, "prep.\n", 5)), vec!["clean"]);
    // Keywords at the start of a line in a stage, and at the top level.
    let t = PIPELINE.replace("  run     \"python train", "  ti\n  run     \"python train");
    let l = labels(&complete(&t, "  ti\n", 4));
    assert!(
        l.contains(&"timeout".to_string()) && l.contains(&"metrics".to_string()),
        "{l:?}"
    );
    assert!(!l.contains(&"pipeline".to_string()));
    let t = format!("{PIPELINE}\nst");
    let l = labels(&complete(&t, "\nst", 3));
    assert!(l.contains(&"stage".to_string()) && l.contains(&"include".to_string()));
    // Params keys after `${params.`, with an edit replacing what was typed.
    let t = PIPELINE.replace("${out.clean}", "${params.tr");
    let r = complete(&t, "${params.tr", 11);
    let l = labels(&r);
    assert!(
        l.contains(&"train.lr".to_string()) && l.contains(&"train.epochs".to_string()),
        "{l:?}"
    );
    let edit = &r[0]["textEdit"]["range"];
    assert_eq!(edit["start"], position(&t, "${params.tr", 9));
    // `${out.`: the stage's own outputs.
    let t = PIPELINE.replace("${out.model}", "${out.");
    let l = labels(&complete(&t, "${out. ", 6));
    assert!(
        l.contains(&"model".to_string()) && l.contains(&"scores".to_string()),
        "{l:?}"
    );
    // A stage name after `after`, and a file path in a string input.
    let t = PIPELINE.replace("  in      prep.clean", "  after pr\n  in      \"data/");
    let l = labels(&complete(&t, "after pr", 8));
    assert!(
        l.contains(&"prep".to_string()) && l.contains(&"report".to_string()),
        "{l:?}"
    );
    assert_eq!(labels(&complete(&t, "\"data/", 6)), vec!["raw.csv"]);
}

#[test]
fn formatting_outline_folding_and_tokens() {
    let mut c = Client::new();
    let messy = "pipeline \"demo\"\nparams \"params.yaml\"\ninclude \"more.mlp\"\nstage prep {   # the first\n in \"data/raw.csv\"\n   out clean = \"data/clean.csv\"\n run \"python prep.py ${out.clean}\"\n}\n";
    c.open("pipeline.mlp", messy);
    c.diagnostics("pipeline.mlp");
    let uri = c.uri("pipeline.mlp");
    let r = c.request(
        "textDocument/formatting",
        json!({"textDocument": {"uri": uri}, "options": {"tabSize": 2, "insertSpaces": true}}),
    );
    let new = r[0]["newText"].as_str().unwrap();
    assert_eq!(new, mlp_syntax::format(messy).unwrap());
    assert!(new.contains("# the first"));
    c.change("pipeline.mlp", 2, new);
    c.diagnostics("pipeline.mlp");
    let r = c.request(
        "textDocument/formatting",
        json!({"textDocument": {"uri": uri}, "options": {"tabSize": 2, "insertSpaces": true}}),
    );
    assert_eq!(r, json!([]), "formatted text needs no edit");

    c.change("pipeline.mlp", 3, PIPELINE);
    c.diagnostics("pipeline.mlp");
    let s = c.request(
        "textDocument/documentSymbol",
        json!({"textDocument": {"uri": uri}}),
    );
    let names: Vec<&str> = s
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["demo", "more.mlp", "prep", "train"]);
    let train = &s.as_array().unwrap()[3];
    let outs: Vec<&str> = train["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(outs, vec!["model", "scores"]);
    let f = c.request(
        "textDocument/foldingRange",
        json!({"textDocument": {"uri": uri}}),
    );
    let starts: Vec<u64> = f
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["startLine"].as_u64().unwrap())
        .collect();
    assert!(starts.contains(&7) && starts.contains(&14), "{f}");
    let t = c.request(
        "textDocument/semanticTokens/full",
        json!({"textDocument": {"uri": uri}}),
    );
    let data: Vec<u64> = t["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    // The first token is the comment on line 0; it is 22 UTF-16 units long (`𝔸` counts 2).
    assert_eq!(
        &data[..4],
        &[
            0,
            0,
            PIPELINE.lines().next().unwrap().encode_utf16().count() as u64,
            3
        ]
    );
    // `pipeline` on line 1 is a keyword (type 0).
    assert_eq!(&data[5..9], &[1, 0, 8, 0]);
}

#[test]
fn a_burst_of_edits_ends_with_the_last_texts_diagnostics_and_close_reverts_to_disk() {
    let c = Client::new();
    c.open("pipeline.mlp", PIPELINE);
    assert!(c.diagnostics("pipeline.mlp").is_empty());
    for v in 2..7 {
        let bad = PIPELINE.replace("prep.clean", &format!("prep{v}.clean"));
        c.change("pipeline.mlp", v, &bad);
    }
    // Whatever was checked in between, the last version's diagnostics come, and name it.
    let last = loop {
        if let Message::Notification(n) = c.recv()
            && n.method == "textDocument/publishDiagnostics"
            && n.params["uri"] == c.uri("pipeline.mlp").as_str()
            && n.params["version"] == 6
        {
            break n.params["diagnostics"].as_array().unwrap().clone();
        }
    };
    assert!(
        last[0]["message"].as_str().unwrap().contains("prep6"),
        "{last:?}"
    );
    // Closed without saving: the file on disk is what counts again.
    c.notify(
        "textDocument/didClose",
        json!({"textDocument": {"uri": c.uri("pipeline.mlp")}}),
    );
    assert!(c.diagnostics("pipeline.mlp").is_empty());
}
