//! Many commands at once in one workspace: `mlp run` (twice), `mlp watch` (stopped with
//! Ctrl-C at a varying moment), `gc`, and the read-only `runs`, `show`, `diff`, `status`,
//! `explain` and `run --dry-run`, all started together, round after round.
//!
//! Every command either does its work (exit 0) or exits 4 naming who holds the workspace
//! (`... (pid N on HOST ...)`); the watch ends with 130. Afterwards the store is whole:
//! `mlp runs` lists every run that reported success, `mlp run` brings the outputs to
//! exactly what a clean run makes, and the run after it has nothing to do.
//!
//! `MLP_CONCURRENCY_ROUNDS` sets the number of rounds (default 4; `bench/concurrency.sh`
//! runs many more and reports the figures).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::Child;
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use crate::common::{Output, Workspace, interrupt};

const P: &str = r#"
pipeline "c"
stage a {
  in "src/data.txt"
  out o = "out/a.txt"
  run "sleep 0.2 && mkdir -p out && tr a-z A-Z < src/data.txt > ${out.o}"
}
stage b {
  in a.o
  out o = "out/b.txt"
  run "sleep 0.1 && wc -c < ${in[0]} | tr -d ' ' > ${out.o}"
}
stage c {
  in "src/data.txt"
  out o = "out/c.txt"
  run "mkdir -p out && yes \"$(cat src/data.txt)\" | head -c 300000 > ${out.o}"
}
"#;

/// Replace a file the way an editor saves it: whole, by rename.
fn save(ws: &Workspace, rel: &str, content: &str) {
    ws.write(&format!("{rel}.tmp"), content);
    std::fs::rename(ws.path().join(format!("{rel}.tmp")), ws.path().join(rel)).unwrap();
}

/// The ids of the runs in a JSON event log that did work and succeeded (a run where
/// everything was fresh records nothing).
fn succeeded(events: &[Value]) -> Vec<String> {
    let mut out = Vec::new();
    let mut worked = false;
    for e in events {
        match e["event"].as_str() {
            Some("start") => worked = false,
            Some("stage_finished") if e["status"] != "fresh" => worked = true,
            Some("finish") if e["ok"] == true && worked => {
                out.push(e["run"].as_str().unwrap_or_default().to_string());
            }
            _ => {}
        }
    }
    out
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect()
}

/// A started watch: its JSON events arrive on a channel, read by a thread.
struct Watch {
    child: Child,
    lines: mpsc::Receiver<Value>,
    stderr: std::thread::JoinHandle<String>,
}

impl Watch {
    fn start(ws: &Workspace) -> Watch {
        let mut child = ws.command(&["watch", "--json", "-j", "2"]).spawn();
        let out = child.stdout.take().unwrap();
        let mut err = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    let _ = tx.send(v);
                }
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = std::io::Read::read_to_string(&mut err, &mut s);
            s
        });
        Watch {
            child,
            lines,
            stderr,
        }
    }
}

/// 0, or 4 naming the holder; anything else fails the test with what the command said.
fn done_or_busy(what: &str, o: &Output, tally: &mut BTreeMap<String, [usize; 2]>) {
    let t = tally.entry(what.to_string()).or_default();
    match o.code() {
        0 => t[0] += 1,
        4 => {
            assert!(
                o.stderr().contains("(pid "),
                "`mlp {what}` exited 4 without naming who holds the workspace: {}",
                o.stderr()
            );
            t[1] += 1;
        }
        c => panic!(
            "`mlp {what}` exited {c}:\nstdout: {}\nstderr: {}",
            o.stdout(),
            o.stderr()
        ),
    }
}

#[test]
fn commands_started_together_do_their_work_or_name_the_holder_and_never_damage_the_store() {
    let rounds: usize = std::env::var("MLP_CONCURRENCY_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4);
    let ws = Workspace::new(P);
    save(&ws, "src/data.txt", "round setup\n");
    ws.mlp(&["run"]).success();
    save(&ws, "src/data.txt", "round setup two\n");
    ws.mlp(&["run"]).success();

    let mut ok_runs: BTreeSet<String> = BTreeSet::new();
    let mut tally: BTreeMap<String, [usize; 2]> = BTreeMap::new();
    let commands: [&[&str]; 9] = [
        &["run", "--json"],
        &["run", "--json", "-j", "2"],
        &["gc"],
        &["runs", "--json", "--limit", "1000000"],
        &["show", "last"],
        &["diff", "--last", "2"],
        &["status"],
        &["explain", "b"],
        &["run", "--dry-run"],
    ];
    for round in 0..rounds {
        save(&ws, "src/data.txt", &format!("round {round}\n"));
        let watch = Watch::start(&ws);
        let children: Vec<(String, Child)> = commands
            .iter()
            .map(|args| {
                let child = ws
                    .command(args)
                    // Bounded: a command that needs the store waits at most this long.
                    .env("MLP_LOCK_WAIT", "1")
                    .spawn();
                (args.join(" "), child)
            })
            .collect();
        // The watch has started a run (or waits for the workspace): edit again so that it
        // has more to do, then Ctrl-C at a moment that differs from round to round.
        let first = watch.lines.recv_timeout(Duration::from_secs(60));
        assert!(first.is_ok(), "the watch said nothing within 60 s");
        save(&ws, "src/data.txt", &format!("round {round} edited\n"));
        std::thread::sleep(Duration::from_millis(100 + (round as u64 * 397) % 1200));
        interrupt(&watch.child);

        for (what, child) in children {
            let o = Output::of(child);
            if what.starts_with("run --json") {
                ok_runs.extend(succeeded(&json_lines(o.stdout())));
            }
            let name = what.split(" --").next().unwrap_or(&what).to_string();
            done_or_busy(&name, &o, &mut tally);
        }
        let Watch {
            mut child,
            lines,
            stderr,
        } = watch;
        let status = child.wait().unwrap();
        let stderr = stderr.join().unwrap();
        let mut events: Vec<Value> = first.into_iter().collect();
        events.extend(lines.try_iter());
        // The reader thread may still be draining the last lines.
        std::thread::sleep(Duration::from_millis(50));
        events.extend(lines.try_iter());
        assert_eq!(
            status.code(),
            Some(130),
            "round {round}: mlp watch did not end cleanly on Ctrl-C: {stderr}\n{events:#?}"
        );
        assert!(
            !events.iter().any(|e| e["event"] == "run_error"),
            "round {round}: a watch run failed: {events:#?}"
        );
        ok_runs.extend(succeeded(&events));
        tally.entry("watch".into()).or_default()[0] += 1;
    }

    // Nothing was lost: every run that reported success is in the history.
    let runs = ws.mlp(&["runs", "--json", "--limit", "1000000"]).success();
    let listed: BTreeSet<String> = runs
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap_or_default().to_string())
        .collect();
    let lost: Vec<&String> = ok_runs.difference(&listed).collect();
    assert!(
        lost.is_empty(),
        "runs reported successful but not listed: {lost:?}"
    );
    // The store and the cache are whole: the next run makes exactly a clean run's outputs,
    // and the one after has nothing to do.
    let last = format!("round {} edited\n", rounds - 1);
    ws.mlp(&["run"]).success();
    let upper = last.to_uppercase();
    assert_eq!(ws.read("out/a.txt"), upper);
    assert_eq!(ws.read("out/b.txt").trim(), upper.len().to_string());
    let c = ws.read("out/c.txt");
    assert_eq!(c.len(), 300_000);
    assert!(c.starts_with(&last), "{}", &c[..40]);
    let again = ws.mlp(&["run", "--json"]).success();
    assert!(
        succeeded(&json_lines(again.stdout())).is_empty(),
        "{}",
        again.stdout()
    );
    ws.mlp(&["status"]).success();
    eprintln!(
        "concurrency: {rounds} rounds, {} successful runs recorded, [done, busy] per command: {tally:?}",
        ok_runs.len()
    );
}

#[test]
fn a_lock_file_that_cannot_be_opened_is_a_failure_naming_it_not_busy() {
    let ws = Workspace::new(P);
    save(&ws, "src/data.txt", "x\n");
    ws.mlp(&["run"]).success();
    // Something other than a file where the lock belongs (root ignores permissions, so a
    // read-only file would not do in CI).
    std::fs::remove_file(ws.path().join(".mlp/lock")).unwrap();
    std::fs::create_dir(ws.path().join(".mlp/lock")).unwrap();
    save(&ws, "src/data.txt", "y\n");
    for args in [&["run"][..], &["status"], &["watch", "--timeout", "1s"]] {
        let o = ws.mlp(args).failure(1);
        assert!(o.stderr().contains(".mlp/lock"), "{args:?}: {}", o.stderr());
    }
}
