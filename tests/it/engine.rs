//! The incremental engine end to end: the real binary, real processes, a real sled store,
//! asserting on the JSON event log of which stages ran.

use std::time::{Duration, Instant};

use crate::common::{Output, Run, Workspace, interrupt, names};

/// a → b → c, and d on its own. `a` writes the number of lines of src.txt (so an edit that
/// keeps the line count leaves its output byte-identical: early cutoff).
const CHAIN: &str = r#"
pipeline "chain"
param n = 1
stage a {
  in "src.txt"
  out o = "out/a.txt"
  run "mkdir -p out && wc -l < src.txt | tr -d ' ' > ${out.o}"
}
stage b {
  in a.o
  out o = "out/b.txt"
  params n
  run "cat ${in[0]} > ${out.o} && echo n=${params.n} >> ${out.o}"
}
stage c {
  in b.o
  out o = "out/c.txt"
  run "cat ${in[0]} ${in[0]} > ${out.o}"
}
stage d {
  in "other.txt"
  out o = "out/d.txt"
  run "mkdir -p out && cp other.txt ${out.o}"
}
"#;

fn chain() -> Workspace {
    let ws = Workspace::new(CHAIN);
    ws.write("src.txt", "one\ntwo\n");
    ws.write("other.txt", "other\n");
    ws
}

#[test]
fn run_then_rerun_runs_nothing() {
    let ws = chain();
    let r = ws.run(&[]);
    r.assert_ok();
    assert_eq!(r.ran(), names(&["a", "b", "c", "d"]));
    assert_eq!(ws.read("out/c.txt"), "2\nn=1\n2\nn=1\n");
    let again = ws.run(&[]);
    again.assert_ok();
    assert!(again.nothing_to_do(), "{:?}", again.events);
    assert!(again.ran().is_empty());
    // The slow path agrees with the fast one (a target list bypasses the snapshot check).
    let targeted = ws.run(&["c", "d"]);
    targeted.assert_ok();
    assert!(targeted.ran().is_empty(), "{:?}", targeted.statuses());
    assert_eq!(targeted.with_status("fresh"), names(&["a", "b", "c", "d"]));
}

#[test]
fn one_input_change_runs_exactly_what_depends_on_it() {
    let ws = chain();
    ws.run(&[]).assert_ok();
    ws.write("other.txt", "changed\n");
    let r = ws.run(&[]);
    r.assert_ok();
    assert_eq!(r.ran(), names(&["d"]));
    assert_eq!(ws.read("out/d.txt"), "changed\n");
    ws.write("src.txt", "one\ntwo\nthree\n");
    let r = ws.run(&[]);
    r.assert_ok();
    assert_eq!(r.ran(), names(&["a", "b", "c"]));
    assert_eq!(ws.read("out/c.txt"), "3\nn=1\n3\nn=1\n");
}

#[test]
fn a_byte_identical_upstream_output_stops_the_rerun() {
    let ws = chain();
    ws.run(&[]).assert_ok();
    // Same number of lines: `a` reruns and writes the same bytes.
    ws.write("src.txt", "uno\ndos\n");
    let r = ws.run(&[]);
    r.assert_ok();
    assert_eq!(r.ran(), names(&["a"]));
    assert_eq!(r.with_status("fresh"), names(&["b", "c", "d"]));
}

#[test]
fn touching_a_file_without_changing_it_runs_nothing() {
    let ws = chain();
    ws.run(&[]).assert_ok();
    std::thread::sleep(Duration::from_millis(20));
    ws.write("src.txt", "one\ntwo\n");
    let r = ws.run(&[]);
    r.assert_ok();
    assert!(r.ran().is_empty(), "{:?}", r.statuses());
}

#[test]
fn reverting_a_param_restores_outputs_from_the_cache() {
    let ws = chain();
    ws.run(&[]).assert_ok();
    let first = ws.read("out/c.txt");
    ws.write("pipeline.mlp", CHAIN.replace("param n = 1", "param n = 2"));
    let r = ws.run(&[]);
    r.assert_ok();
    assert_eq!(r.ran(), names(&["b", "c"]));
    assert_eq!(ws.read("out/c.txt"), "2\nn=2\n2\nn=2\n");
    ws.write("pipeline.mlp", CHAIN);
    let r = ws.run(&[]);
    r.assert_ok();
    assert!(r.ran().is_empty(), "{:?}", r.statuses());
    assert_eq!(r.with_status("restored"), names(&["b", "c"]));
    assert_eq!(ws.read("out/c.txt"), first);
    // `--set` works the same way, and is not sticky.
    let r = ws.run(&["--set", "n=2"]);
    r.assert_ok();
    assert_eq!(r.with_status("restored"), names(&["b", "c"]));
    assert_eq!(ws.read("out/b.txt"), "2\nn=2\n");
    let r = ws.run(&[]);
    assert_eq!(r.with_status("restored"), names(&["b", "c"]));
    assert_eq!(ws.read("out/b.txt"), "2\nn=1\n");
}

#[test]
fn a_restored_output_edited_in_place_does_not_corrupt_the_cache() {
    let ws = chain();
    ws.run(&[]).assert_ok();
    std::fs::remove_file(ws.path().join("out/d.txt")).unwrap();
    let r = ws.run(&[]);
    assert_eq!(r.with_status("restored"), names(&["d"]));
    // Edit the restored file in place (append through the same inode).
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(ws.path().join("out/d.txt"))
        .unwrap();
    f.write_all(b"scribble\n").unwrap();
    drop(f);
    let r = ws.run(&[]);
    assert_eq!(
        r.with_status("restored"),
        names(&["d"]),
        "{:?}",
        r.statuses()
    );
    assert_eq!(ws.read("out/d.txt"), "other\n");
}

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
    // The next run runs it again (quick is done).
    ws.write("pipeline.mlp", LONG.replace("sleep 30", "sleep 0"));
    let r = ws.run(&[]);
    r.assert_ok();
    assert_eq!(r.ran(), names(&["long"]));
    assert_eq!(r.statuses()["quick"], "fresh");
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
    // Read-only commands say a run is in progress instead of failing obscurely.
    let status = ws.mlp(&["status"]);
    let msg = status.stderr();
    assert_eq!(status.code(), 4, "{msg}");
    assert!(msg.contains("in use by mlp run"), "{msg}");
    // So does a dry run.
    ws.mlp(&["run", "--dry-run"]).failure(4);
    // --wait waits for it, then finds nothing to do.
    let waited = ws.run(&["--wait"]);
    waited.assert_ok();
    assert!(waited.ran().is_empty(), "{:?}", waited.statuses());
    Output::of(first).success();
}

#[test]
fn a_tampered_cache_object_is_detected_and_rebuilt() {
    let ws = chain();
    ws.run(&[]).assert_ok();
    // Corrupt every object in the cache.
    let objects = ws.path().join(".mlp/cache/objects");
    let mut n = 0;
    for shard in std::fs::read_dir(&objects).unwrap() {
        for obj in std::fs::read_dir(shard.unwrap().path()).unwrap() {
            let p = obj.unwrap().path();
            let mut perm = std::fs::metadata(&p).unwrap().permissions();
            #[allow(clippy::permissions_set_readonly_false)]
            perm.set_readonly(false);
            std::fs::set_permissions(&p, perm).unwrap();
            std::fs::write(&p, "tampered").unwrap();
            n += 1;
        }
    }
    assert!(n >= 4);
    std::fs::remove_file(ws.path().join("out/d.txt")).unwrap();
    let r = ws.run(&[]);
    r.assert_ok();
    assert_eq!(r.ran(), names(&["d"]), "{:?}", r.statuses());
    assert_eq!(ws.read("out/d.txt"), "other\n");
}

#[test]
fn dry_run_says_what_would_run_and_runs_nothing() {
    let ws = chain();
    ws.run(&[]).assert_ok();
    ws.write("src.txt", "1\n2\n3\n");
    let r = ws.run(&["--dry-run"]);
    r.assert_ok();
    assert_eq!(r.with_status("would_run"), names(&["a", "b", "c"]));
    assert!(r.event("a")["reason"].as_str().unwrap().contains("src.txt"));
    assert_eq!(ws.read("out/a.txt"), "2\n");
    let r = ws.run(&[]);
    assert_eq!(r.ran(), names(&["a", "b", "c"]));
}

#[test]
fn targets_force_and_downstream_select_stages() {
    let ws = chain();
    let r = ws.run(&["b"]);
    r.assert_ok();
    assert_eq!(r.ran(), names(&["a", "b"]));
    assert!(!ws.exists("out/c.txt"));
    let r = ws.run(&["--force", "b", "b"]);
    assert_eq!(r.ran(), names(&["b"]));
    let r = ws.run(&["a", "--downstream"]);
    assert_eq!(r.ran(), names(&["c"]));
    assert!(!r.statuses().contains_key("d"));
    let bad = ws.mlp(&["run", "nope"]).failure(2);
    assert!(bad.stderr().contains("no stage `nope`"));
}

#[test]
fn directory_and_glob_inputs() {
    let ws = Workspace::new(
        r#"
pipeline "g"
stage dir {
  in "data/"
  out o = "dir.txt"
  run "ls data | sort > ${out.o}"
}
stage csvs {
  in "data/*.csv"
  out o = "csv.txt"
  run "cat data/*.csv > ${out.o}"
}
"#,
    );
    ws.write("data/a.csv", "a\n");
    ws.write("data/notes.md", "n\n");
    ws.run(&[]).assert_ok();
    ws.write("data/sub/deep.txt", "d\n");
    let r = ws.run(&[]);
    assert_eq!(r.ran(), names(&["dir"]));
    ws.write("data/b.csv", "b\n");
    let r = ws.run(&[]);
    assert_eq!(r.ran(), names(&["csvs", "dir"]));
    ws.write("data/notes.md", "changed\n");
    let r = ws.run(&[]);
    assert_eq!(r.ran(), names(&["dir"]));
}

#[test]
fn editing_the_pipeline_file_is_seen() {
    let ws = chain();
    ws.run(&[]).assert_ok();
    ws.write(
        "pipeline.mlp",
        CHAIN.replace("cat ${in[0]} ${in[0]}", "cat ${in[0]}"),
    );
    let r = ws.run(&[]);
    assert_eq!(r.ran(), names(&["c"]));
}

#[test]
fn status_and_explain_say_why() {
    let ws = chain();
    let out = ws.mlp(&["status"]);
    assert!(out.stdout().contains("never run"));
    ws.run(&[]).assert_ok();
    ws.write("other.txt", "new\n");
    let out = ws.mlp(&["status", "--json"]);
    let v: serde_json::Value = out.json();
    let d = v
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stage"] == "d")
        .unwrap();
    assert_eq!(d["state"], "stale");
    assert!(d["reason"].as_str().unwrap().contains("other.txt"), "{d}");
    let a = v
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stage"] == "a")
        .unwrap();
    assert_eq!(a["state"], "fresh");
    let out = ws.mlp(&["explain", "d"]);
    let text = out.stdout();
    assert!(text.contains("input `other.txt` changed"), "{text}");
    assert!(
        text.contains("command   mkdir -p out && cp other.txt out/d.txt"),
        "{text}"
    );
    let out = ws.mlp(&["explain", "b", "--json"]);
    let v: serde_json::Value = out.json();
    assert_eq!(v["key"]["params"]["n"], 1);
    assert_eq!(v["changes"].as_array().unwrap().len(), 0);
}

#[test]
fn gc_removes_what_no_kept_run_needs() {
    let ws = chain();
    ws.run(&[]).assert_ok();
    for i in 0..3 {
        ws.write("other.txt", format!("version {i}\n"));
        ws.run(&[]).assert_ok();
    }
    let v = ws.mlp(&["gc", "--keep", "1", "--json"]).success().json();
    assert!(v["objects_removed"].as_u64().unwrap() >= 3, "{v}");
    // What is current still restores.
    std::fs::remove_file(ws.path().join("out/d.txt")).unwrap();
    let r = ws.run(&[]);
    assert_eq!(r.with_status("restored"), names(&["d"]));
    assert_eq!(ws.read("out/d.txt"), "version 2\n");
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
fn a_missing_input_fails_the_stage_and_names_it() {
    let ws = Workspace::new(
        r#"
pipeline "m"
stage s {
  in "data/raw.csv"
  out o = "o.txt"
  run "cp data/raw.csv ${out.o}"
}
"#,
    );
    let r = ws.run(&[]);
    assert_eq!(r.code, 1);
    let reason = r.event("s")["reason"].as_str().unwrap().to_string();
    assert!(reason.contains("`data/raw.csv` does not exist"), "{reason}");
}

#[test]
fn an_output_the_command_stopped_writing_is_not_taken_from_the_last_run() {
    let p = r#"
pipeline "m"
stage s {
  in "v.txt"
  out o = "o.txt"
  run "[ $(cat v.txt) = 1 ] && cp v.txt ${out.o} || true"
}
"#;
    let ws = Workspace::new(p);
    ws.write("v.txt", "1");
    ws.run(&[]).assert_ok();
    ws.write("v.txt", "2");
    let r = ws.run(&[]);
    assert_eq!(r.code, 1);
    assert!(
        r.event("s")["reason"]
            .as_str()
            .unwrap()
            .contains("did not write its declared output `o.txt`")
    );
}

#[test]
fn listing_commands_stop_quietly_on_a_closed_pipe() {
    let ws = chain();
    for _ in 0..3 {
        ws.write("other.txt", format!("{:?}\n", Instant::now()));
        ws.run(&[]).assert_ok();
    }
    for args in [
        &["runs"][..],
        &["explain", "d"],
        &["status"],
        &["show", "last"],
    ] {
        let mut child = ws.command(args).spawn();
        drop(child.stdout.take());
        let out = Output::of(child);
        let err = out.stderr();
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn a_dry_run_changes_nothing() {
    let ws = chain();
    ws.run(&[]).assert_ok();
    ws.write("pipeline.mlp", CHAIN.replace("param n = 1", "param n = 2"));
    ws.run(&[]).assert_ok();
    ws.write("pipeline.mlp", CHAIN);
    let before = ws.read("out/b.txt");
    let r = ws.run(&["--dry-run"]);
    r.assert_ok();
    assert_eq!(r.with_status("would_run"), names(&["b", "c"]));
    assert_eq!(ws.read("out/b.txt"), before, "a dry run restored an output");
    let st: serde_json::Value = ws.mlp(&["status", "--json"]).json();
    let b = st
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stage"] == "b")
        .unwrap();
    assert!(b["reason"].as_str().unwrap().contains("echo n=1"), "{b}");
}
