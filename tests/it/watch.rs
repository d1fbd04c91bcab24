//! `mlp watch` driven by real file edits, asserting on its JSON event log.

use std::io::{BufRead, BufReader};
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::{Output, Workspace, interrupt};
use serde_json::Value;

struct Watcher {
    child: Child,
    events: Arc<Mutex<Vec<Value>>>,
}

impl Watcher {
    fn start(ws: &Workspace, args: &[&str]) -> Watcher {
        let mut all = vec!["watch", "--json"];
        all.extend_from_slice(args);
        let mut child = ws.command(&all).spawn();
        let events = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().unwrap();
        let sink = Arc::clone(&events);
        std::thread::spawn(move || {
            // Diagnostics (plan errors) are pretty-printed JSON over several lines: keep
            // only one-line events.
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    sink.lock().unwrap().push(v);
                }
            }
        });
        let w = Watcher { child, events };
        w.wait_for("the first run", Duration::from_secs(30), |e| {
            e["event"] == "watching"
        });
        w
    }

    fn len(&self) -> usize {
        self.events.lock().unwrap().len()
    }

    /// Wait until an event after the first `from` satisfies `pred`; return it.
    fn wait_from(
        &self,
        from: usize,
        what: &str,
        limit: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let t = Instant::now();
        loop {
            if let Some(e) = self.events.lock().unwrap()[from..].iter().find(|e| pred(e)) {
                return e.clone();
            }
            if t.elapsed() > limit {
                panic!(
                    "timed out waiting for {what}; events: {:#?}",
                    &self.events.lock().unwrap()[from..]
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn wait_for(&self, what: &str, limit: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        self.wait_from(0, what, limit, pred)
    }

    /// After an edit: wait for the run it caused to end and the watcher to idle again;
    /// return the stages that ran a command, sorted.
    fn settle(&self, from: usize) -> Vec<String> {
        self.wait_from(from, "a run after the edit", Duration::from_secs(30), |e| {
            e["event"] == "finish"
        });
        // One edit can arrive as several file events in different debounce windows (each
        // a run; the later ones find nothing to do): wait until the watcher idles.
        let mut mark = from;
        loop {
            self.wait_from(mark, "watching again", Duration::from_secs(30), |e| {
                e["event"] == "watching"
            });
            let seen = self.len();
            std::thread::sleep(Duration::from_millis(300));
            if self.len() == seen {
                break;
            }
            mark = seen;
        }
        let ev = self.events.lock().unwrap();
        let mut ran: Vec<String> = ev[from..]
            .iter()
            .filter(|e| e["event"] == "stage_started")
            .map(|e| e["stage"].as_str().unwrap().to_string())
            .collect();
        // A stage may also start twice for one edit: when the second event of a save
        // (truncate, then write) comes while it runs, the watcher restarts it, or it runs
        // again on the finished bytes. Which stages ran is the claim, not how often.
        ran.sort();
        ran.dedup();
        ran
    }

    fn stop(mut self) -> Vec<Value> {
        interrupt(&self.child);
        let status = self.child.wait().unwrap();
        assert_eq!(
            status.code(),
            Some(130),
            "mlp watch did not stop cleanly on Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(50));
        self.events.lock().unwrap().clone()
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const P: &str = r#"
pipeline "w"
stage a {
  in "src/a.txt"
  out o = "out/a.txt"
  run "mkdir -p out && cat src/a.txt > ${out.o}"
}
stage b {
  in a.o
  out o = "out/b.txt"
  run "wc -c < ${in[0]} > ${out.o}"
}
stage c {
  in "src/c.txt"
  out o = "out/c.txt"
  run "mkdir -p out && cat src/c.txt > ${out.o}"
}
"#;

fn ws() -> Workspace {
    let ws = Workspace::new(P);
    ws.write("src/a.txt", "a\n");
    ws.write("src/c.txt", "c\n");
    ws
}

#[test]
fn an_edit_reruns_only_its_dependents_and_outputs_cause_no_loop() {
    let ws = ws();
    let w = Watcher::start(&ws, &[]);
    let from = w.len();
    ws.write("src/c.txt", "c2\n");
    assert_eq!(w.settle(from), vec!["c"]);
    assert_eq!(ws.read("out/c.txt"), "c2\n");
    let from = w.len();
    ws.write("src/a.txt", "a2\n");
    assert_eq!(w.settle(from), vec!["a", "b"]);
    // The stages wrote their outputs: that must not start another run.
    let quiet = w.len();
    std::thread::sleep(Duration::from_millis(800));
    let later = &w.events.lock().unwrap()[quiet..].to_vec();
    assert!(
        !later.iter().any(|e| e["event"] == "start"),
        "outputs retriggered a run: {later:#?}"
    );
    // Files nothing reads are ignored.
    ws.write("notes.txt", "unrelated");
    std::thread::sleep(Duration::from_millis(500));
    let later = &w.events.lock().unwrap()[quiet..].to_vec();
    assert!(!later.iter().any(|e| e["event"] == "changed"), "{later:#?}");
    let all = w.stop();
    assert_eq!(all.last().unwrap()["event"], "stopped");
}

#[test]
fn an_atomic_rename_save_is_seen_again_and_again() {
    let ws = ws();
    let w = Watcher::start(&ws, &[]);
    for i in 0..3 {
        let from = w.len();
        // What editors do: write a temp file, rename it over the original.
        ws.write("src/.a.txt.swp", format!("saved {i}\n"));
        std::fs::rename(
            ws.path().join("src/.a.txt.swp"),
            ws.path().join("src/a.txt"),
        )
        .unwrap();
        assert_eq!(w.settle(from), vec!["a", "b"], "save {i}");
        assert_eq!(ws.read("out/a.txt"), format!("saved {i}\n"));
    }
}

#[test]
fn an_edit_during_a_running_stage_restarts_it_and_spares_the_others() {
    let ws = Workspace::new(
        r#"
pipeline "w"
stage slow {
  in "slow.txt"
  out o = "slow.out"
  run "sleep 1.5 && cp slow.txt ${out.o}"
}
stage other {
  in "other.txt"
  out o = "other.out"
  run "sleep 1.5 && cp other.txt ${out.o}"
}
"#,
    );
    ws.write("slow.txt", "1");
    ws.write("other.txt", "x");
    let w = Watcher::start(&ws, &["-j", "2"]);
    let from = w.len();
    ws.write("other.txt", "y");
    ws.write("slow.txt", "2");
    w.wait_from(from, "both started", Duration::from_secs(10), |e| {
        e["event"] == "stage_started" && e["stage"] == "other"
    });
    w.wait_from(from, "slow started", Duration::from_secs(10), |e| {
        e["event"] == "stage_started" && e["stage"] == "slow"
    });
    std::thread::sleep(Duration::from_millis(300));
    let mid = w.len();
    ws.write("slow.txt", "3");
    w.wait_from(mid, "the restart", Duration::from_secs(10), |e| {
        e["event"] == "restart" && e["stage"] == "slow"
    });
    let ended = w.wait_from(mid, "slow interrupted", Duration::from_secs(10), |e| {
        e["event"] == "stage_finished" && e["stage"] == "slow"
    });
    assert_eq!(ended["status"], "interrupted");
    // The unrelated stage finished normally in the same run.
    let other = w.wait_from(from, "other finished", Duration::from_secs(10), |e| {
        e["event"] == "stage_finished" && e["stage"] == "other"
    });
    assert_eq!(other["status"], "ran");
    // And slow runs again with the new content.
    w.wait_from(mid, "slow ran again", Duration::from_secs(20), |e| {
        e["event"] == "stage_finished" && e["stage"] == "slow" && e["status"] == "ran"
    });
    assert_eq!(ws.read("slow.out"), "3");
}

#[test]
fn a_broken_pipeline_file_is_reported_and_watching_recovers_when_fixed() {
    let ws = ws();
    let w = Watcher::start(&ws, &[]);
    let from = w.len();
    ws.write("pipeline.mlp", format!("{P}\nstage broken {{ run }}\n"));
    w.wait_from(from, "the plan error", Duration::from_secs(10), |e| {
        e["event"] == "plan_error"
    });
    let from = w.len();
    ws.write(
        "pipeline.mlp",
        P.replace("cat src/c.txt", "tr a-z A-Z < src/c.txt"),
    );
    assert_eq!(w.settle(from), vec!["c"]);
    assert_eq!(ws.read("out/c.txt"), "C\n");
}

#[test]
fn a_file_that_does_not_exist_yet_is_picked_up_when_it_appears() {
    let ws = Workspace::new(
        r#"
pipeline "w"
stage late {
  in "incoming/batch.csv"
  out o = "late.out"
  run "cp incoming/batch.csv ${out.o} 2>/dev/null || echo none > ${out.o}"
}
"#,
    );
    let w = Watcher::start(&ws, &[]);
    let from = w.len();
    ws.write("incoming/batch.csv", "rows\n");
    assert_eq!(w.settle(from), vec!["late"]);
    assert_eq!(ws.read("late.out"), "rows\n");
}

#[test]
fn every_timers_fire_and_drive_a_monitoring_loop() {
    let ws = Workspace::new(
        r#"
pipeline "monitoring"
stage monitor {
  in      "drift_source.txt"
  metrics live = "live.json"
  run     "printf '{\"drift\": %s}' $(tail -n 1 drift_source.txt) > ${metrics.live} && date +%s%N >> monitor_runs.txt"
  every   1s
}
stage retrain {
  when monitor.live.drift > 0.2
  in   "drift_source.txt"
  out  m = "model.txt"
  run  "echo retrained on drift $(tail -n 1 drift_source.txt) > ${out.m}"
}
"#,
    );
    ws.write("drift_source.txt", "0.05\n");
    let w = Watcher::start(&ws, &[]);
    // The timer fires on its own, again and again.
    let from = w.len();
    w.wait_from(from, "the every timer", Duration::from_secs(10), |e| {
        e["event"] == "timer"
    });
    w.settle(from);
    assert!(ws.read("monitor_runs.txt").lines().count() >= 2);
    assert!(!ws.exists("model.txt"), "retrain ran without drift");
    // New data arrives with drift: the retrain stage runs.
    let from = w.len();
    ws.write("drift_source.txt", "0.05\n0.31\n");
    w.wait_from(from, "retrain", Duration::from_secs(15), |e| {
        e["event"] == "stage_finished" && e["stage"] == "retrain" && e["status"] == "ran"
    });
    assert_eq!(ws.read("model.txt"), "retrained on drift 0.31\n");
}

#[test]
fn while_the_watcher_idles_the_workspace_is_free_and_a_second_watcher_is_refused() {
    let ws = ws();
    let w = Watcher::start(&ws, &[]);
    // Idle: the watcher holds neither the store nor the workspace lock.
    ws.mlp(&["status"]).success();
    ws.mlp(&["explain", "c"]).success();
    let runs = ws.mlp(&["runs"]).success();
    assert!(runs.stdout().contains('1'), "{}", runs.stdout());
    // The watcher may be in a run of its own at this moment (a late change event from its
    // first run's writes starts one): `--wait` waits for it instead of racing it. What
    // matters is that the run gets the workspace, which it never could while a watcher
    // held it for its whole life.
    ws.mlp(&["run", "--wait", "--force", "c"]).success();
    // One watcher per workspace.
    let second = ws.mlp(&["watch"]).failure(4);
    assert!(
        second.stderr().contains("mlp watch (pid"),
        "{}",
        second.stderr()
    );
    w.stop();
    ws.mlp(&["status"]).success();
}

const SLOW: &str = r#"
pipeline "w"
stage slow {
  in "src/a.txt"
  out o = "out/a.txt"
  metrics m = "out/m.json"
  run "while [ ! -e go ]; do sleep 0.05; done; mkdir -p out && cat src/a.txt > ${out.o} && printf '{\"n\": %s}' \"$(wc -c < src/a.txt)\" > ${metrics.m}"
}
"#;

#[test]
fn history_answers_during_a_watch_run_and_status_waits_for_it() {
    let ws = Workspace::new(SLOW);
    // The stage waits until the file `go` exists (nothing watches it).
    ws.write("go", "");
    ws.write("src/a.txt", "a\n");
    let w = Watcher::start(&ws, &[]);
    let from = w.len();
    ws.write("src/a.txt", "a2\n");
    w.settle(from);
    // Run 3 waits for `go`: the watcher holds the store meanwhile.
    ws.remove("go");
    let from = w.len();
    ws.write("src/a.txt", "a33\n");
    w.wait_from(from, "the slow run", Duration::from_secs(20), |e| {
        e["event"] == "stage_started"
    });
    // The history answers from the published records.
    let runs = ws.mlp(&["runs", "--json"]).success();
    let ids: Vec<String> = runs
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].to_string())
        .collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    ws.mlp(&["show", "2"]).success();
    let diff = ws.mlp(&["diff", "1", "2"]).success();
    assert!(
        diff.stdout().contains("metrics.slow.m.n"),
        "{}",
        diff.stdout()
    );
    ws.mlp(&["report", "-o", "r.html"]).success();
    // What needs the stage records waits (here briefly), then names the holder.
    let busy = ws
        .command(&["status"])
        .env("MLP_LOCK_WAIT", "0.2")
        .run()
        .failure(4);
    assert!(
        busy.stderr().contains("waiting for mlp watch (pid"),
        "{}",
        busy.stderr()
    );
    assert!(
        busy.stderr().contains("in use by mlp watch (pid"),
        "{}",
        busy.stderr()
    );
    // By default it waits for the run to end, then answers.
    let mut status = ws.command(&["status"]).spawn();
    let err = status.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if line.contains("waiting for mlp watch (pid") {
                let _ = tx.send(());
            }
            all.push_str(&line);
        }
        all
    });
    rx.recv_timeout(Duration::from_secs(20))
        .expect("status did not say it waits for the watch");
    ws.write("go", "");
    let out = status.wait_with_output().unwrap();
    let stderr = reader.join().unwrap();
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("slow  fresh"), "{stdout}");
    w.settle(from);
    let all = w.stop();
    assert_eq!(all.last().unwrap()["event"], "stopped");
    // The run recorded during the watch is there, in the store and in its copy.
    let runs = ws.mlp(&["runs", "--json"]).success();
    assert_eq!(
        runs.json().as_array().unwrap().len(),
        3,
        "{}",
        runs.stdout()
    );
    ws.mlp(&["show", "3"]).success();
    assert_eq!(ws.read("out/a.txt"), "a33\n");
}

#[test]
fn a_timeout_ends_a_watch_still_waiting_for_the_workspace() {
    let ws = Workspace::new(SLOW);
    ws.write("src/a.txt", "a\n");
    // A run that holds the workspace until `go` exists.
    let run = ws.command(&["run"]).spawn();
    let t = Instant::now();
    while !std::fs::read_to_string(ws.path().join(".mlp/lock"))
        .unwrap_or_default()
        .contains("mlp run")
    {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the run never took the lock"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = ws.mlp(&["watch", "--json", "--timeout", "1s"]).success();
    assert!(
        out.stdout().contains(r#""event":"waiting""#),
        "{}",
        out.stdout()
    );
    assert!(
        out.stdout().contains(r#""event":"timed_out""#),
        "{}",
        out.stdout()
    );
    assert!(
        !out.stdout().contains(r#""event":"run_error""#),
        "{}",
        out.stdout()
    );
    ws.write("go", "");
    Output::of(run).success();
}

#[test]
fn a_deleted_store_starts_a_history_not_mixed_with_the_old_published_one() {
    let ws = ws();
    ws.mlp(&["run"]).success();
    ws.write("src/c.txt", "c2\n");
    ws.mlp(&["run"]).success();
    assert!(ws.exists(".mlp/runs/00000002.json"));
    std::fs::remove_dir_all(ws.path().join(".mlp/store")).unwrap();
    ws.mlp(&["runs"]).failure(2);
    ws.write("src/c.txt", "c3\n");
    ws.mlp(&["run"]).success();
    let runs = ws.mlp(&["runs", "--json"]).success();
    assert_eq!(
        runs.json().as_array().unwrap().len(),
        1,
        "{}",
        runs.stdout()
    );
    assert!(!ws.exists(".mlp/runs/00000002.json"));
}

#[test]
fn a_watch_with_a_timeout_ends_by_itself() {
    let ws = ws();
    let out = ws.mlp(&["watch", "--json", "--timeout", "1s"]).success();
    assert!(
        out.stdout().contains(r#""event":"timed_out""#),
        "{}",
        out.stdout()
    );
    // The store was closed: everything reads it again.
    ws.mlp(&["status"]).success();
    ws.mlp(&["run"]).success();
}
