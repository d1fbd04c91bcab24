//! Running stages as processes: jobs and resources, failures and `--keep-going`,
//! timeouts, Ctrl-C, the workspace lock and kill -9 at any moment.

use std::time::{Duration, Instant};

use crate::common::{Output, Run, Workspace, interrupt, names};

fn times(r: &Run, stage: &str) -> (u64, u64) {
    let e = r.event(stage);
    (
        e["started_ms"].as_u64().unwrap(),
        e["ended_ms"].as_u64().unwrap(),
    )
}

const TWO_SLEEPS: &str = r#"
pipeline "p"
stage x {
  out o = "x.txt"
  run "sleep 0.6 && echo x > ${out.o}"
}
stage y {
  out o = "y.txt"
  run "sleep 0.6 && echo y > ${out.o}"
}
"#;

#[test]
fn independent_stages_overlap_with_two_jobs() {
    let ws = Workspace::new(TWO_SLEEPS);
    let r = ws.run(&["-j", "2"]);
    r.assert_ok();
    let (xs, xe) = times(&r, "x");
    let (ys, ye) = times(&r, "y");
    assert!(
        xs < ye && ys < xe,
        "x {xs}..{xe} and y {ys}..{ye} do not overlap"
    );
}

#[test]
fn one_job_runs_one_stage_at_a_time() {
    let ws = Workspace::new(TWO_SLEEPS);
    let r = ws.run(&["-j", "1"]);
    r.assert_ok();
    let (xs, xe) = times(&r, "x");
    let (ys, ye) = times(&r, "y");
    assert!(
        xe <= ys || ye <= xs,
        "x {xs}..{xe} and y {ys}..{ye} overlap with -j1"
    );
}

#[test]
fn resources_are_never_oversubscribed() {
    let ws = Workspace::new(&TWO_SLEEPS.replace("run \"sleep", "resources cpu = 2\n  run \"sleep"));
    let r = ws.run(&["-j", "2"]);
    r.assert_ok();
    let (xs, xe) = times(&r, "x");
    let (ys, ye) = times(&r, "y");
    assert!(
        xe <= ys || ye <= xs,
        "two cpu=2 stages overlap on 2 slots: x {xs}..{xe}, y {ys}..{ye}"
    );
}

const FAILING: &str = r#"
pipeline "f"
stage bad {
  out o = "bad.txt"
  run "echo about to fail && echo partial > ${out.o} && exit 3"
}
stage after_bad {
  in bad.o
  out o = "after.txt"
  run "cp ${in[0]} ${out.o}"
}
stage slow_independent {
  out o = "ind.txt"
  run "sleep 0.3 && echo ok > ${out.o}"
}
"#;

#[test]
fn a_failure_stops_its_downstream_and_the_run() {
    let ws = Workspace::new(FAILING);
    let r = ws.run(&["-j", "1"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let st = r.statuses();
    assert_eq!(st["bad"], "failed");
    assert_eq!(st["after_bad"], "skipped");
    assert!(
        r.event("bad")["reason"]
            .as_str()
            .unwrap()
            .contains("exit code 3")
    );
    // The log holds the command's output.
    let log = r.event("bad")["log"].as_str().unwrap().to_string();
    let log = std::fs::read_to_string(ws.path().join(log)).unwrap();
    assert!(log.contains("about to fail"), "{log}");
    // A failed stage's outputs are never cached: it runs again.
    let r = ws.run(&["-j", "1"]);
    assert_eq!(r.statuses()["bad"], "failed");
}

#[test]
fn keep_going_lets_independent_branches_finish() {
    let ws = Workspace::new(&FAILING.replace("stage slow_independent", "stage a_independent"));
    // Without --keep-going, with one job, the independent stage (ordered after `bad`
    // by critical path? no: by name order here) may not start once `bad` failed.
    let r = ws.run(&["-j", "1", "--keep-going"]);
    assert_eq!(r.code, 1);
    let st = r.statuses();
    assert_eq!(st["a_independent"], "ran");
    assert_eq!(st["after_bad"], "skipped");
    assert!(ws.exists("ind.txt"));
}

#[test]
fn without_keep_going_nothing_new_starts_after_a_failure() {
    let ws = Workspace::new(
        r#"
pipeline "f"
stage bad {
  out o = "bad.txt"
  run "exit 1"
}
stage later {
  in "x.txt"
  out o = "later.txt"
  run "cp x.txt ${out.o}"
}
"#,
    );
    ws.write("x.txt", "x");
    // `later` waits for x.txt to be hashed, `bad` goes first in order; with -j1 only one
    // starts. Whichever started first, after the failure nothing new starts.
    let r = ws.run(&["-j", "1"]);
    assert_eq!(r.code, 1);
    let st = r.statuses();
    assert_eq!(st["bad"], "failed");
    if st["later"] != "ran" {
        assert_eq!(st["later"], "not_run", "{st:?}");
    }
}

#[test]
fn a_missing_declared_output_fails_the_stage_and_names_the_file() {
    let ws = Workspace::new(
        r#"
pipeline "m"
stage lazy {
  out model = "models/model.pkl"
  run "true"
}
"#,
    );
    let r = ws.run(&[]);
    assert_eq!(r.code, 1);
    let reason = r.event("lazy")["reason"].as_str().unwrap().to_string();
    assert!(reason.contains("models/model.pkl"), "{reason}");
}

/// Wait until a file exists (a stage wrote its pid) and return its content.
fn wait_for(path: &std::path::Path, limit: Duration) -> String {
    let t = Instant::now();
    while t.elapsed() < limit {
        if let Ok(s) = std::fs::read_to_string(path)
            && s.ends_with('\n')
        {
            return s.trim().to_string();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{} did not appear", path.display());
}

fn alive(pid: &str) -> bool {
    // A zombie is dead for our purposes.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
}

fn gone_within(pid: &str, limit: Duration) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        if !alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn a_timeout_kills_the_whole_process_group() {
    let ws = Workspace::new(
        r#"
pipeline "t"
stage slow {
  out o = "o.txt"
  timeout 1s
  run "sleep 30 & echo $! > child.pid; wait"
}
"#,
    );
    let t = Instant::now();
    let r = ws.run(&[]);
    assert_eq!(r.code, 1);
    assert!(t.elapsed() < Duration::from_secs(20));
    let reason = r.event("slow")["reason"].as_str().unwrap().to_string();
    assert!(reason.contains("timed out"), "{reason}");
    let child = ws.read("child.pid").trim().to_string();
    assert!(
        gone_within(&child, Duration::from_secs(5)),
        "the stage's child {child} survived the timeout"
    );
}

const LONG: &str = r#"
pipeline "l"
stage long {
  out o = "long.txt"
  run "echo $$ > long.pid.tmp && mv long.pid.tmp long.pid && sleep 30 && echo done > ${out.o}"
}
stage quick {
  out o = "quick.txt"
  run "echo q > ${out.o}"
}
"#;

#[test]
fn ctrl_c_kills_running_stages_and_records_them_interrupted() {
    let ws = Workspace::new(LONG);
    let child = ws.command(&["run", "--json", "-j", "2"]).spawn();
    let pid = wait_for(&ws.path().join("long.pid"), Duration::from_secs(20));
    interrupt(&child);
    let r = Output::of(child).events();
    assert_eq!(r.code, 130, "{}", r.stderr);
    assert_eq!(r.statuses()["long"], "interrupted");
    assert!(
        gone_within(&pid, Duration::from_secs(5)),
        "stage process {pid} survived Ctrl-C"
    );
    assert!(!ws.exists("long.txt"));
    // `quick` ran beside it: usually done before the Ctrl-C, but on a loaded machine it may
    // still have been running (seen once in CI), and then it was interrupted too.
    let quick = r.statuses().get("quick").cloned().unwrap_or_default();
    assert!(
        ["ran", "interrupted", "not_run"].contains(&quick.as_str()),
        "quick: {quick}\n{}",
        r.stderr
    );
    // The next run runs again what was interrupted, and only that.
    ws.write("pipeline.mlp", LONG.replace("sleep 30", "sleep 0"));
    let r = ws.run(&[]);
    r.assert_ok();
    if quick == "ran" {
        assert_eq!(r.ran(), names(&["long"]));
        assert_eq!(r.statuses()["quick"], "fresh");
    } else {
        assert_eq!(r.ran(), names(&["long", "quick"]));
    }
}

#[test]
fn a_second_run_fails_at_once_naming_the_holder_or_waits() {
    let ws = Workspace::new(&LONG.replace("sleep 30", "sleep 1.5"));
    let first = ws.command(&["run", "--json"]).spawn();
    wait_for(&ws.path().join("long.pid"), Duration::from_secs(20));
    let t = Instant::now();
    let second = ws.mlp(&["run"]).failure(4);
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "the second run did not fail at once"
    );
    let msg = second.stderr();
    assert!(msg.contains(&format!("pid {}", first.id())), "{msg}");
    assert!(msg.contains("--wait"), "{msg}");
    // Read-only commands that need the store wait for it (here not at all), then say a run
    // is in progress instead of failing obscurely.
    let status = ws.command(&["status"]).env("MLP_LOCK_WAIT", "0").run();
    let msg = status.stderr();
    assert_eq!(status.code(), 4, "{msg}");
    assert!(msg.contains("in use by mlp run"), "{msg}");
    // So does a dry run.
    ws.command(&["run", "--dry-run"])
        .env("MLP_LOCK_WAIT", "0")
        .run()
        .failure(4);
    // --wait waits for it, then finds nothing to do.
    let waited = ws.run(&["--wait"]);
    waited.assert_ok();
    assert!(waited.ran().is_empty(), "{:?}", waited.statuses());
    Output::of(first).success();
}

/// kill -9 at random moments: every next run must succeed with the right outputs, and the
/// one after it must find nothing to do.
#[test]
fn sigkill_at_any_moment_leaves_a_consistent_workspace() {
    let mut p = String::from("pipeline \"crash\"\nparam v = 0\n");
    for i in 0..8 {
        let input = if i == 0 {
            "\"seed.txt\"".to_string()
        } else {
            format!("s{}.o", i - 1)
        };
        p.push_str(&format!(
            "stage s{i} {{\n  in {input}\n  params v\n  out o = \"out/{i}.txt\"\n  run \"mkdir -p out && sleep 0.0{} && cat ${{in[0]}} > ${{out.o}}.tmp && echo {i}-${{params.v}} >> ${{out.o}}.tmp && mv ${{out.o}}.tmp ${{out.o}}\"\n}}\n",
            i % 5
        ));
    }
    let ws = Workspace::new(&p);
    ws.write("seed.txt", "seed\n");
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..25u64 {
        // A new value each round so that there is work to interrupt.
        ws.write(
            "pipeline.mlp",
            p.replace("param v = 0", &format!("param v = {}", round % 4)),
        );
        let child = ws.command(&["run", "-j", "2"]).spawn_silent();
        std::thread::sleep(Duration::from_millis(next() % 300));
        let mut child = child;
        let _ = child.kill();
        let _ = child.wait();
        let r = ws.run(&[]);
        assert_eq!(
            r.code, 0,
            "round {round}: run after SIGKILL failed: {}",
            r.stderr
        );
        let mut expect = String::from("seed\n");
        for i in 0..8 {
            expect.push_str(&format!("{i}-{}\n", round % 4));
            assert_eq!(
                ws.read(&format!("out/{i}.txt")),
                expect,
                "round {round}: out/{i}.txt"
            );
        }
        let again = ws.run(&[]);
        assert!(
            again.ran().is_empty() && again.with_status("restored").is_empty(),
            "round {round}: {:?}",
            again.statuses()
        );
    }
}

#[test]
fn a_stage_that_prints_nothing_has_no_log() {
    let ws = Workspace::new(
        r#"
stage quiet {
  out o = "q.txt"
  run "echo q > ${out.o}"
}
stage loud {
  out o = "l.txt"
  run "echo to-stdout; echo to-stderr >&2; echo l > ${out.o}"
}
"#,
    );
    let r = ws.run(&["-j", "2"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.event("quiet")["log"].is_null(), "{}", r.stdout);
    let log = r.event("loud")["log"].as_str().unwrap().to_string();
    let log = std::fs::read_to_string(ws.path().join(log)).unwrap();
    assert!(
        log.contains("to-stdout") && log.contains("to-stderr"),
        "{log}"
    );
    let logs = std::fs::read_dir(ws.path().join(".mlp/logs/00000001")).unwrap();
    assert_eq!(logs.count(), 1);
}
