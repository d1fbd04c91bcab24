//! The Slurm executor against a real cluster (`.ci/slurm-up.sh` starts one with two nodes on
//! this host; `.ci/run` does, and sets `MLP_SLURM=1`). Without Slurm each test says why and
//! returns; under `CI=true` or `MLP_SLURM=1` that is a failure.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::sync::{OnceLock, RwLock};
use std::time::{Duration, Instant};

use crate::common::{Output, Workspace, interrupt, names, skip_or_fail};
use serde_json::Value;

/// Why Slurm cannot be used here, if it cannot.
fn unavailable() -> Option<String> {
    static WHY: OnceLock<Option<String>> = OnceLock::new();
    WHY.get_or_init(|| {
        for tool in ["sbatch", "squeue", "scancel", "sinfo"] {
            let found = Command::new(tool)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !found {
                return Some(format!(
                    "no `{tool}` on PATH (start a cluster with .ci/slurm-up.sh)"
                ));
            }
        }
        // The controller must answer, and a partition be up, within a few seconds.
        let mut child = match Command::new("sinfo")
            .args(["-h", "-o", "%a"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(c) => c,
            Err(e) => return Some(format!("cannot run sinfo: {e}")),
        };
        let until = Instant::now() + Duration::from_secs(5);
        loop {
            match child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < until => std::thread::sleep(Duration::from_millis(50)),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Some("the Slurm controller does not answer `sinfo` within 5 s".into());
                }
            }
        }
        let out = child.wait_with_output().ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() || !text.lines().any(|l| l.trim() == "up") {
            return Some(format!(
                "no Slurm partition is up (sinfo: {:?})",
                text.trim()
            ));
        }
        None
    })
    .clone()
}

/// Most tests share the cluster; the one that checks how jobs spread over the nodes needs
/// it to itself.
fn cluster() -> &'static RwLock<()> {
    static LOCK: RwLock<()> = RwLock::new(());
    &LOCK
}

/// Skip (or, under `CI=true` or `MLP_SLURM=1`, fail) when there is no cluster.
macro_rules! need_slurm {
    () => {
        if let Some(why) = unavailable() {
            assert!(
                std::env::var("MLP_SLURM").as_deref() != Ok("1"),
                "MLP_SLURM=1 but Slurm is not available: {why}"
            );
            skip_or_fail(&format!("Slurm is not available: {why}"));
            return;
        }
    };
}

/// The distinct nodes `sinfo` lists.
fn nodes() -> BTreeSet<String> {
    let out = Command::new("sinfo")
        .args(["-h", "-N", "-o", "%N"])
        .output()
        .expect("sinfo");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// The Slurm job id and node in a stage's notes (`slurm job 12 on n2`).
fn job_of(ev: &Value) -> (String, Option<String>) {
    let notes = ev["notes"].as_array().cloned().unwrap_or_default();
    for n in notes {
        let n = n.as_str().unwrap_or("");
        if let Some(rest) = n.strip_prefix("slurm job ") {
            let mut w = rest.split_whitespace();
            let id = w.next().unwrap_or("").to_string();
            let node = match (w.next(), w.next()) {
                (Some("on"), Some(node)) => Some(node.to_string()),
                _ => None,
            };
            return (id, node);
        }
    }
    panic!("no slurm job in the notes: {ev}");
}

fn squeue_state(job: &str) -> String {
    let out = Command::new("squeue")
        .args(["-h", "-t", "all", "-j", job, "-o", "%T"])
        .output()
        .expect("squeue");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Wait until `.mlp/slurm/STAGE.job` names a job that Slurm runs; its id.
fn running_job(ws: &Workspace, stage: &str, child: &mut std::process::Child) -> String {
    let file = ws.path().join(format!(".mlp/slurm/{stage}.job"));
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < until, "no running job for `{stage}`");
        if let Ok(Some(st)) = child.try_wait() {
            panic!("mlp ended before its job ran: {st}");
        }
        if let Ok(text) = std::fs::read_to_string(&file)
            && let Ok(v) = serde_json::from_str::<Value>(&text)
        {
            let id = v["job"].as_str().unwrap_or("").to_string();
            if squeue_state(&id) == "RUNNING" {
                return id;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn identity(ws: &Workspace, stage: &str) -> String {
    let v = ws.mlp(&["explain", stage, "--json"]).success().json();
    v["identity"].as_str().unwrap().to_string()
}

const CHAIN: &str = r#"
pipeline "chain"
param scale = 3

stage prepare {
  params scale
  out    "data/raw.txt"
  run    "mkdir -p data && seq 1 $MLP_PARAM_SCALE > data/raw.txt"
}

stage square {
  in  prepare
  out "data/squares.txt"
  run "while read n; do echo $((n * n)); done < data/raw.txt > data/squares.txt"
}

stage total {
  in  square
  env { LABEL = "sum" }
  out "data/total.txt"
  run "awk -v label=\"$LABEL\" '{ s += $1 } END { print label, s }' data/squares.txt > data/total.txt"
}
"#;

#[test]
fn a_pipeline_on_slurm_matches_a_local_run_and_shares_its_cache() {
    need_slurm!();
    let _shared = cluster().read().unwrap();
    let remote = Workspace::new(CHAIN);
    let local = Workspace::new(CHAIN);
    let r = remote.run(&["--executor", "slurm", "-j", "4"]);
    r.assert_ok();
    assert_eq!(r.ran(), names(&["prepare", "square", "total"]));
    for s in ["prepare", "square", "total"] {
        let (id, node) = job_of(r.event(s));
        assert!(!id.is_empty());
        assert!(node.is_some_and(|n| n.starts_with('n')), "{}", r.event(s));
    }
    local.run(&[]).assert_ok();
    for f in ["data/raw.txt", "data/squares.txt", "data/total.txt"] {
        assert_eq!(remote.read(f), local.read(f), "{f}");
    }
    assert_eq!(remote.read("data/total.txt"), "sum 14\n");
    for s in ["prepare", "square", "total"] {
        assert_eq!(identity(&remote, s), identity(&local, s), "{s}");
    }
    // What ran on Slurm is up to date locally...
    let again = remote.run(&["--executor", "local"]);
    again.assert_ok();
    assert!(again.nothing_to_do(), "{:?}", again.events);
    // ... and comes back from the cache, not from a new run.
    std::fs::remove_file(remote.path().join("data/total.txt")).unwrap();
    std::fs::write(remote.path().join("data/squares.txt"), "garbage\n").unwrap();
    let back = remote.run(&[]);
    back.assert_ok();
    assert!(back.ran().is_empty(), "{:?}", back.events);
    assert_eq!(back.with_status("restored"), names(&["square", "total"]));
    assert_eq!(remote.read("data/total.txt"), "sum 14\n");
    // And what ran locally is up to date on Slurm.
    let there = local.run(&["--executor", "slurm"]);
    there.assert_ok();
    assert!(there.ran().is_empty(), "{:?}", there.events);
}

#[test]
fn a_failing_job_fails_the_stage_with_its_exit_code() {
    need_slurm!();
    let _shared = cluster().read().unwrap();
    let ws = Workspace::new(
        r#"
executor slurm
stage boom {
  out "never.txt"
  run "echo about to fail >&2; exit 3"
}
stage downstream {
  in  boom
  out "after.txt"
  run "touch after.txt"
}
"#,
    );
    let r = ws.run(&[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let ev = r.event("boom");
    assert_eq!(ev["status"], "failed");
    assert_eq!(ev["reason"], "exit code 3", "{ev}");
    job_of(ev);
    let log = ev["log"].as_str().unwrap();
    let log = std::fs::read_to_string(ws.path().join(log)).unwrap();
    assert!(log.contains("about to fail"), "{log:?}");
    assert_ne!(r.event("downstream")["status"], "ran");
    assert!(!ws.exists("after.txt"));
}

#[test]
fn a_job_cancelled_from_outside_fails_with_cancelled() {
    need_slurm!();
    let _shared = cluster().read().unwrap();
    let ws = Workspace::new(
        "stage cancel_me {\n  executor slurm\n  out \"x\"\n  run \"sleep 120; touch x\"\n}\n",
    );
    let mut child = ws.command(&["run", "--json"]).spawn();
    let id = running_job(&ws, "cancel_me", &mut child);
    let st = Command::new("scancel").arg(&id).status().unwrap();
    assert!(st.success());
    let r = Output::of(child).events();
    assert_eq!(r.code, 1, "{}", r.stderr);
    let ev = r.event("cancel_me");
    assert_eq!(ev["status"], "failed");
    let reason = ev["reason"].as_str().unwrap();
    assert!(reason.contains("CANCELLED"), "{reason}");
    assert!(reason.contains(&format!("slurm job {id}")), "{reason}");
    // The next run submits it again (and is not confused by the old job file).
    assert!(!ws.path().join(".mlp/slurm/cancel_me.job").exists());
}

#[test]
fn ctrl_c_cancels_the_jobs() {
    need_slurm!();
    let _shared = cluster().read().unwrap();
    let ws = Workspace::new(
        "executor slurm\nstage interrupted_job {\n  out \"x\"\n  run \"sleep 120; touch x\"\n}\n",
    );
    let mut child = ws.command(&["run", "--json"]).spawn();
    let id = running_job(&ws, "interrupted_job", &mut child);
    assert!(interrupt(&child));
    let r = Output::of(child).events();
    assert_eq!(r.code, 130, "{}", r.stderr);
    assert_eq!(r.event("interrupted_job")["status"], "interrupted");
    let until = Instant::now() + Duration::from_secs(30);
    while !squeue_state(&id).starts_with("CANCELLED") {
        assert!(Instant::now() < until, "job {id}: {}", squeue_state(&id));
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_timeout_cancels_the_job() {
    need_slurm!();
    let _shared = cluster().read().unwrap();
    let ws = Workspace::new(
        "stage slow {\n  executor slurm\n  timeout 3s\n  out \"x\"\n  run \"sleep 120; touch x\"\n}\n",
    );
    let t0 = Instant::now();
    let r = ws.run(&[]);
    assert!(t0.elapsed() < Duration::from_secs(60));
    assert_eq!(r.code, 1, "{}", r.stderr);
    let ev = r.event("slow");
    assert_eq!(ev["status"], "failed");
    assert_eq!(ev["reason"], "timed out after 3.0 s", "{ev}");
    let (id, _) = job_of(ev);
    let until = Instant::now() + Duration::from_secs(30);
    while !squeue_state(&id).starts_with("CANCELLED") {
        assert!(Instant::now() < until, "job {id}: {}", squeue_state(&id));
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Slurm's own time limit (whole minutes, enforced about every 30 s): the job ends as
/// TIMEOUT some 60 to 90 s after it starts.
#[test]
fn a_time_limit_ends_as_timeout() {
    need_slurm!();
    let _shared = cluster().read().unwrap();
    let ws = Workspace::new(
        "stage limited {\n  executor slurm { time = 1m }\n  out \"x\"\n  run \"sleep 300; touch x\"\n}\n",
    );
    let r = ws.run(&[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let ev = r.event("limited");
    assert_eq!(ev["status"], "failed");
    let reason = ev["reason"].as_str().unwrap();
    assert!(reason.contains("TIMEOUT"), "{reason}");
    assert!(reason.contains("--time=1"), "{reason}");
}

#[test]
fn stages_spread_over_both_nodes() {
    need_slurm!();
    // No job of another test may hold a node.
    let _alone = cluster().write().unwrap();
    let listed = nodes();
    if listed.len() < 2 {
        // Not a missing cluster: a smaller one. Skipped even under `CI=true`.
        eprintln!("SKIPPED: this test needs two Slurm nodes, `sinfo` lists {listed:?}");
        return;
    }
    let ws = Workspace::new(
        r#"
executor slurm { args = ["--exclusive"] }
stage left {
  out "left.txt"
  run "sleep 2; echo $SLURMD_NODENAME > left.txt"
}
stage right {
  out "right.txt"
  run "sleep 2; echo $SLURMD_NODENAME > right.txt"
}
"#,
    );
    let r = ws.run(&["-j", "2"]);
    r.assert_ok();
    let (_, l) = job_of(r.event("left"));
    let (_, rt) = job_of(r.event("right"));
    let nodes: BTreeSet<String> = [l.unwrap(), rt.unwrap()].into_iter().collect();
    assert_eq!(nodes.len(), 2, "{:?}", r.events);
    // The recorded node is where the command ran.
    assert_eq!(
        ws.read("left.txt").trim(),
        job_of(r.event("left")).1.unwrap()
    );
    assert_eq!(
        ws.read("right.txt").trim(),
        job_of(r.event("right")).1.unwrap()
    );
    // The run record keeps the notes.
    let out = ws.mlp(&["show", "--json"]);
    let text = out.stdout();
    assert!(text.contains("slurm job"), "{text}");
}

#[test]
fn a_restarted_run_attaches_to_the_running_job() {
    need_slurm!();
    let _shared = cluster().read().unwrap();
    let ws = Workspace::new(
        r#"
executor slurm
stage reattach_a {
  out "a.txt"
  run "sleep 6; echo a > a.txt"
}
stage reattach_b {
  in  reattach_a
  out "b.txt"
  run "cat a.txt > b.txt"
}
"#,
    );
    let mut child = ws.command(&["run", "--json"]).spawn();
    let id = running_job(&ws, "reattach_a", &mut child);
    child.kill().unwrap(); // SIGKILL: no chance to cancel anything
    child.wait().unwrap();
    assert_eq!(squeue_state(&id), "RUNNING");
    let r = ws.run(&[]);
    r.assert_ok();
    assert_eq!(r.ran(), names(&["reattach_a", "reattach_b"]));
    let ev = r.event("reattach_a");
    let (again, _) = job_of(ev);
    assert_eq!(again, id, "{ev}");
    assert!(ev["notes"].to_string().contains("attached"), "{ev}");
    assert_eq!(ws.read("b.txt"), "a\n");
    // Slurm saw one job for this stage of this workspace.
    let root = std::fs::canonicalize(ws.path()).unwrap();
    let out = Command::new("squeue")
        .args(["-h", "-t", "all", "-o", "%i|%j|%Z"])
        .output()
        .unwrap();
    let jobs: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| {
            let f: Vec<&str> = l.split('|').collect();
            f.len() == 3
                && f[1].ends_with("-reattach_a")
                && std::fs::canonicalize(f[2]).is_ok_and(|p| p == root)
        })
        .map(str::to_string)
        .collect();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    // Its output went to the log of the run that attached, too.
    let log = ev["log"].as_str().unwrap();
    assert!(ws.path().join(log).exists(), "{log}");
    assert!(!ws.path().join(".mlp/slurm/reattach_a.job").exists());
}

/// A team cache on the cluster's shared filesystem: one login node runs the pipeline on
/// Slurm and pushes to a directory remote; a second clone, also running on Slurm, pulls on
/// its run-cache misses and submits no job at all.
#[test]
fn a_second_clone_on_slurm_pulls_from_a_shared_directory_remote() {
    need_slurm!();
    let _shared = cluster().read().unwrap();
    let shared = tempfile::tempdir().unwrap();
    let url = shared.path().display().to_string();
    let a = Workspace::new(CHAIN);
    let r = a.run(&["--executor", "slurm", "-j", "4"]);
    r.assert_ok();
    assert_eq!(r.ran(), names(&["prepare", "square", "total"]));
    let pushed = a
        .command(&["push", "--remote", &url])
        .env_remove("MLP_REMOTE")
        .run()
        .success();
    assert!(pushed.stderr().contains("pushed"), "{}", pushed.stderr());

    let b = Workspace::copy_of(a.path(), &["data"]);
    // `mlp run` on Slurm, pulling from the shared remote first.
    let run_pulling = |extra: &[&str]| {
        let mut args = vec!["run", "--json", "--executor", "slurm", "--pull", "--remote"];
        args.push(&url);
        args.extend_from_slice(extra);
        b.command(&args).env_remove("MLP_REMOTE").run().events()
    };
    let r = run_pulling(&[]);
    r.assert_ok();
    assert!(r.ran().is_empty(), "submitted jobs for {:?}", r.ran());
    assert_eq!(
        r.with_status("restored"),
        names(&["prepare", "square", "total"])
    );
    for f in ["data/raw.txt", "data/squares.txt", "data/total.txt"] {
        assert_eq!(b.read(f), a.read(f), "{f}");
    }
    // A param change is a miss on both caches: that stage and what is below it run on
    // Slurm as usual.
    let r = run_pulling(&["--set", "scale=4"]);
    r.assert_ok();
    assert_eq!(r.ran(), names(&["prepare", "square", "total"]));
    assert_eq!(b.read("data/total.txt"), "sum 30\n");
}
