//! The Ray executor against a real cluster: `.ci/ray-up.sh` starts two nodes on this host
//! (`node1` with the head, `node2`, one CPU each); `.ci/run` does, and sets
//! `MLP_RAY_ADDRESS`. Without a dashboard answering at `MLP_RAY_ADDRESS` (or `RAY_ADDRESS`)
//! each test says why and returns; under `CI=true` that is a failure.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::{OnceLock, RwLock};
use std::time::{Duration, Instant};

use crate::common::{Output, Run, Workspace, interrupt, names, skip_or_fail};
use serde_json::Value;

/// The dashboard's `http://HOST:PORT`, as the tests were given it.
fn address() -> Option<String> {
    ["MLP_RAY_ADDRESS", "RAY_ADDRESS"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|a| !a.trim().is_empty()))
        .map(|a| {
            let a = a.trim().trim_end_matches('/');
            if a.contains("://") {
                a.to_string()
            } else {
                format!("http://{a}")
            }
        })
}

/// One HTTP/1.0 request to the dashboard: the status and the JSON body.
fn http(method: &str, path: &str) -> Result<(u16, Value), String> {
    let base = address().ok_or("no address")?;
    let host = base.trim_start_matches("http://");
    let addr = std::net::ToSocketAddrs::to_socket_addrs(host)
        .map_err(|e| e.to_string())?
        .next()
        .ok_or("no address")?;
    let mut s =
        TcpStream::connect_timeout(&addr, Duration::from_secs(3)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: {host}\r\nContent-Length: 0\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no body")?;
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or("no status")?;
    Ok((code, serde_json::from_str(body).unwrap_or(Value::Null)))
}

/// Why Ray cannot be used here, if it cannot.
fn unavailable() -> Option<String> {
    static WHY: OnceLock<Option<String>> = OnceLock::new();
    WHY.get_or_init(|| {
        let Some(a) = address() else {
            return Some(
                "neither MLP_RAY_ADDRESS nor RAY_ADDRESS is set (start a cluster with .ci/ray-up.sh)"
                    .into(),
            );
        };
        match http("GET", "/api/version") {
            Ok((200, v)) if v["ray_version"].is_string() => None,
            Ok((code, _)) => Some(format!("{a}/api/version answered HTTP {code}")),
            Err(e) => Some(format!("no Ray dashboard answers at {a}: {e}")),
        }
    })
    .clone()
}

/// Most tests share the cluster; the ones that need both CPUs, or stop the cluster, need it
/// to themselves.
fn cluster() -> &'static RwLock<()> {
    static LOCK: RwLock<()> = RwLock::new(());
    &LOCK
}

macro_rules! need_ray {
    () => {
        if let Some(why) = unavailable() {
            skip_or_fail(&format!("Ray is not available: {why}"));
            return;
        }
    };
}

/// `executor ray { address = ... }` with the tests' cluster, then `rest`.
fn pipeline(settings: &str, rest: &str) -> String {
    format!(
        "executor ray {{ address = \"{}\" {settings} }}\n{rest}",
        address().unwrap()
    )
}

/// The submission id and node in a stage's notes (`ray job mlp-... on node 1a2b`).
fn job_of(ev: &Value) -> (String, Option<String>) {
    for n in ev["notes"].as_array().cloned().unwrap_or_default() {
        if let Some(rest) = n.as_str().unwrap_or("").strip_prefix("ray job ") {
            let mut w = rest.split_whitespace();
            let id = w.next().unwrap_or("").to_string();
            let node = match (w.next(), w.next(), w.next()) {
                (Some("on"), Some("node"), Some(n)) => Some(n.to_string()),
                _ => None,
            };
            return (id, node);
        }
    }
    panic!("no ray job in the notes: {ev}");
}

fn job(id: &str) -> Value {
    let (code, v) = http("GET", &format!("/api/jobs/{id}")).unwrap();
    assert_eq!(code, 200, "{v}");
    v
}

fn wait_status(id: &str, want: &str) {
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let st = job(id)["status"].as_str().unwrap_or("").to_string();
        if st == want {
            return;
        }
        assert!(Instant::now() < until, "job {id} is {st}, not {want}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The jobs Ray knows of this workspace (by the metadata mlp gives them), by stage.
fn jobs_of(ws: &Workspace) -> BTreeMap<String, Vec<Value>> {
    let root = std::fs::canonicalize(ws.path()).unwrap();
    let (_, all) = http("GET", "/api/jobs/").unwrap();
    let mut by = BTreeMap::<String, Vec<Value>>::new();
    for j in all.as_array().cloned().unwrap_or_default() {
        let m = &j["metadata"];
        if m["mlp_workspace"].as_str() == Some(root.to_str().unwrap()) {
            by.entry(m["mlp_stage"].as_str().unwrap_or("").to_string())
                .or_default()
                .push(j);
        }
    }
    by
}

/// The id of the node that has the custom resource `res`.
fn node_with(res: &str) -> String {
    let (_, v) = http("GET", "/api/v0/nodes?limit=100").unwrap();
    v["data"]["result"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["state"] == "ALIVE" && n["resources_total"][res].is_number())
        .unwrap_or_else(|| panic!("no node has {res}: {v}"))["node_id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Wait until `.mlp/ray/STAGE.job` names a job that Ray runs; its id.
fn running_job(ws: &Workspace, stage: &str, child: &mut std::process::Child) -> String {
    let file = ws.path().join(format!(".mlp/ray/{stage}.job"));
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < until, "no running job for `{stage}`");
        if let Ok(Some(st)) = child.try_wait() {
            panic!("mlp ended before its job ran: {st}");
        }
        if let Ok(text) = std::fs::read_to_string(&file)
            && let Ok(v) = serde_json::from_str::<Value>(&text)
        {
            let id = v["submission_id"].as_str().unwrap_or("").to_string();
            if let Ok((200, j)) = http("GET", &format!("/api/jobs/{id}"))
                && j["status"] == "RUNNING"
            {
                return id;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn log_of(ws: &Workspace, ev: &Value) -> String {
    std::fs::read_to_string(ws.path().join(ev["log"].as_str().unwrap())).unwrap()
}

const CHAIN: &str = r#"
pipeline "chain"
param scale = 3

stage prepare {
  params scale
  out    "data/raw.txt"
  run    "mkdir -p data && seq 1 $MLP_PARAM_SCALE > data/raw.txt; echo prepared"
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
fn a_pipeline_on_ray_matches_a_local_run_and_the_next_run_submits_nothing() {
    need_ray!();
    let _shared = cluster().read().unwrap();
    let remote = Workspace::new(CHAIN);
    let local = Workspace::new(CHAIN);
    // The address from RAY_ADDRESS, Ray's own variable.
    let r = remote
        .command(&["run", "--json", "--executor", "ray"])
        .env("RAY_ADDRESS", &address().unwrap())
        .run()
        .events();
    r.assert_ok();
    assert_eq!(r.ran(), names(&["prepare", "square", "total"]));
    local.run(&[]).assert_ok();
    for f in ["data/raw.txt", "data/squares.txt", "data/total.txt"] {
        assert_eq!(remote.read(f), local.read(f), "{f}");
    }
    assert_eq!(remote.read("data/total.txt"), "sum 14\n");
    // The log holds the command's output, not Ray's lines.
    assert_eq!(log_of(&remote, r.event("prepare")), "prepared\n");
    let submitted = jobs_of(&remote);
    assert_eq!(
        submitted.values().map(Vec::len).sum::<usize>(),
        3,
        "{submitted:?}"
    );
    for (stage, jobs) in &submitted {
        assert_eq!(jobs[0]["status"], "SUCCEEDED", "{stage}");
    }
    let again = remote
        .command(&["run", "--json", "--executor", "ray"])
        .env("RAY_ADDRESS", &address().unwrap())
        .run()
        .events();
    again.assert_ok();
    assert!(again.nothing_to_do(), "{:?}", again.events);
    assert_eq!(
        jobs_of(&remote),
        submitted,
        "the second run submitted a job"
    );
    // What ran on Ray is up to date locally.
    assert!(remote.run(&[]).nothing_to_do());
}

#[test]
fn stages_pinned_by_a_custom_resource_run_on_that_node() {
    need_ray!();
    let _shared = cluster().read().unwrap();
    let ws = Workspace::new(&pipeline(
        "",
        r#"
stage on_one {
  executor ray { resources = ["node1"] }
  out "one.txt"
  run "echo one > one.txt"
}
stage on_two {
  executor ray { resources = ["node2=1"] }
  out "two.txt"
  run "echo two > two.txt"
}
"#,
    ));
    let r = ws.run(&["-j", "2"]);
    r.assert_ok();
    for (stage, res) in [("on_one", "node1"), ("on_two", "node2")] {
        let (id, node) = job_of(r.event(stage));
        let j = job(&id);
        let on = j["driver_node_id"].as_str().unwrap();
        assert_eq!(on, node_with(res), "{stage} ran on the wrong node: {j}");
        assert!(on.starts_with(&node.unwrap()), "the note names the node");
    }
}

#[test]
fn independent_stages_run_at_the_same_time_on_both_nodes() {
    need_ray!();
    // Both CPUs of the cluster.
    let _alone = cluster().write().unwrap();
    let stage = |n: &str| {
        format!(
            "stage {n} {{\n  out \"{n}.txt\"\n  run \"date +%s.%N > {n}.txt; sleep 4; date +%s.%N >> {n}.txt\"\n}}\n"
        )
    };
    let ws = Workspace::new(&pipeline("", &(stage("left") + &stage("right"))));
    let r = ws.run(&["-j", "2"]);
    r.assert_ok();
    let span = |n: &str| {
        let t: Vec<f64> = ws
            .read(&format!("{n}.txt"))
            .lines()
            .map(|l| l.parse().unwrap())
            .collect();
        (t[0], t[1])
    };
    let (l, rt) = (span("left"), span("right"));
    assert!(
        l.0 < rt.1 && rt.0 < l.1,
        "not at the same time: {l:?} {rt:?}"
    );
    let on = |s: &str| job(&job_of(r.event(s)).0)["driver_node_id"].clone();
    assert_ne!(on("left"), on("right"), "both on one node");
}

#[test]
fn a_failing_command_fails_the_stage_with_its_exit_code_and_log() {
    need_ray!();
    let _shared = cluster().read().unwrap();
    let ws = Workspace::new(&pipeline(
        "",
        r#"
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
    ));
    let r = ws.run(&[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let ev = r.event("boom");
    assert_eq!(ev["status"], "failed");
    assert_eq!(ev["reason"], "exit code 3", "{ev}");
    let (id, _) = job_of(ev);
    assert_eq!(job(&id)["status"], "FAILED");
    assert_eq!(log_of(&ws, ev), "about to fail\n");
    // The progress output shows the end of the log.
    let human = ws.mlp(&["run", "--force", "boom"]);
    assert!(
        human.stderr().contains("about to fail"),
        "{}",
        human.stderr()
    );
    assert_ne!(r.event("downstream")["status"], "ran");
    assert!(!ws.path().join(".mlp/ray/boom.job").exists());
}

#[test]
fn a_timeout_stops_the_job() {
    need_ray!();
    let _shared = cluster().read().unwrap();
    let ws = Workspace::new(&pipeline(
        "",
        "stage slow {\n  timeout 3s\n  out \"x\"\n  run \"sleep 120; touch x\"\n}\n",
    ));
    let r = ws.run(&[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let ev = r.event("slow");
    assert_eq!(ev["reason"], "timed out after 3.0 s", "{ev}");
    wait_status(&job_of(ev).0, "STOPPED");
}

#[test]
fn a_job_stopped_from_outside_fails_the_stage() {
    need_ray!();
    let _shared = cluster().read().unwrap();
    let ws = Workspace::new(&pipeline(
        "",
        "stage stop_me {\n  out \"x\"\n  run \"sleep 120; touch x\"\n}\n",
    ));
    let mut child = ws.command(&["run", "--json"]).spawn();
    let id = running_job(&ws, "stop_me", &mut child);
    let (code, v) = http("POST", &format!("/api/jobs/{id}/stop")).unwrap();
    assert_eq!((code, &v["stopped"]), (200, &Value::Bool(true)), "{v}");
    let r = Output::of(child).events();
    assert_eq!(r.code, 1, "{}", r.stderr);
    let reason = r.event("stop_me")["reason"].as_str().unwrap().to_string();
    assert!(reason.contains(&format!("ray job {id}")), "{reason}");
    assert!(reason.contains("STOPPED"), "{reason}");
    assert!(!ws.path().join(".mlp/ray/stop_me.job").exists());
}

#[test]
fn ctrl_c_stops_the_jobs() {
    need_ray!();
    let _shared = cluster().read().unwrap();
    let ws = Workspace::new(&pipeline(
        "",
        "stage interrupted_job {\n  out \"x\"\n  run \"echo started; sleep 120; touch x\"\n}\n",
    ));
    let mut child = ws.command(&["run", "--json"]).spawn();
    let id = running_job(&ws, "interrupted_job", &mut child);
    // While the job runs, its output so far is in the stage's log.
    let log = ws.path().join(".mlp/logs/00000001/interrupted_job.log");
    let until = Instant::now() + Duration::from_secs(20);
    while std::fs::read_to_string(&log).unwrap_or_default() != "started\n" {
        assert!(
            Instant::now() < until,
            "{:?}",
            std::fs::read_to_string(&log)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(interrupt(&child));
    let r = Output::of(child).events();
    assert_eq!(r.code, 130, "{}", r.stderr);
    assert_eq!(r.event("interrupted_job")["status"], "interrupted");
    wait_status(&id, "STOPPED");
}

#[test]
fn a_restarted_run_attaches_to_the_running_job() {
    need_ray!();
    let _shared = cluster().read().unwrap();
    let ws = Workspace::new(&pipeline(
        "",
        r#"
stage reattach_a {
  out "a.txt"
  run "sleep 6; echo a > a.txt; echo from-a"
}
stage reattach_b {
  in  reattach_a
  out "b.txt"
  run "cat a.txt > b.txt"
}
"#,
    ));
    let mut child = ws.command(&["run", "--json"]).spawn();
    let id = running_job(&ws, "reattach_a", &mut child);
    child.kill().unwrap(); // SIGKILL: no chance to stop anything
    child.wait().unwrap();
    assert_eq!(job(&id)["status"], "RUNNING");
    // `mlp status` shows the job the killed run left.
    let status = ws.mlp(&["status"]);
    assert!(
        status.stdout().contains(&format!("[ray job {id} at ")),
        "{}",
        status.stdout()
    );
    let r = ws.run(&[]);
    r.assert_ok();
    assert_eq!(r.ran(), names(&["reattach_a", "reattach_b"]));
    let ev = r.event("reattach_a");
    assert_eq!(job_of(ev).0, id, "{ev}");
    assert!(ev["notes"].to_string().contains("attached"), "{ev}");
    assert_eq!(ws.read("b.txt"), "a\n");
    assert_eq!(log_of(&ws, ev), "from-a\n");
    // Ray saw one job for this stage of this workspace.
    assert_eq!(jobs_of(&ws)["reattach_a"].len(), 1);
    assert!(!ws.path().join(".mlp/ray/reattach_a.job").exists());
}

#[test]
fn resources_no_node_has_fail_in_one_line_instead_of_pending_forever() {
    need_ray!();
    let _shared = cluster().read().unwrap();
    let ws = Workspace::new(&pipeline(
        "",
        "stage greedy {\n  executor ray { resources = [\"gpu_a100=1\"] }\n  out \"x\"\n  run \"touch x\"\n}\n",
    ));
    let t0 = Instant::now();
    let r = ws.run(&[]);
    assert!(t0.elapsed() < Duration::from_secs(30), "{:?}", t0.elapsed());
    assert_eq!(r.code, 1, "{}", r.stderr);
    let reason = r.event("greedy")["reason"].as_str().unwrap().to_string();
    assert!(reason.contains("gpu_a100=1"), "{reason}");
    assert!(reason.contains("no node of the cluster"), "{reason}");
    assert!(
        reason.contains("node1=1") && reason.contains("node2=1"),
        "{reason}"
    );
    // A pending_timeout instead (an autoscaler may add the node): the job waits that long.
    let ws = Workspace::new(&pipeline(
        "pending_timeout = 2s",
        "stage waits {\n  executor ray { resources = [\"gpu_a100=1\"] }\n  out \"x\"\n  run \"touch x\"\n}\n",
    ));
    let r = ws.run(&[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let reason = r.event("waits")["reason"].as_str().unwrap().to_string();
    assert!(
        reason.contains("still PENDING after `pending_timeout` (2s)"),
        "{reason}"
    );
}

#[test]
fn a_cluster_that_does_not_answer_is_a_one_line_error() {
    // No cluster needed: nothing listens on port 9 of loopback.
    let ws = Workspace::new(
        "executor ray { address = \"http://127.0.0.1:9\" }\nstage a {\n  out \"x\"\n  run \"touch x\"\n}\n",
    );
    let r = ws.run(&[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let reason = r.event("a")["reason"].as_str().unwrap().to_string();
    assert!(
        reason.contains("cannot reach the Ray cluster at http://127.0.0.1:9"),
        "{reason}"
    );
    // No address at all.
    let ws = Workspace::new("stage a {\n  executor ray\n  out \"x\"\n  run \"touch x\"\n}\n");
    let r: Run = ws
        .command(&["run", "--json"])
        .env_remove("RAY_ADDRESS")
        .run()
        .events();
    assert_eq!(r.code, 1, "{}", r.stderr);
    let reason = r.event("a")["reason"].as_str().unwrap().to_string();
    assert!(reason.contains("RAY_ADDRESS"), "{reason}");
}

/// Stops the cluster under a running job, then starts it again (`.ci/ray-up.sh`): only
/// where the cluster is the tests' own (`MLP_RAY_CI=1`, as `.ci/run` sets).
#[test]
fn the_cluster_stopped_mid_run_fails_the_stage() {
    need_ray!();
    if std::env::var("MLP_RAY_CI").as_deref() != Ok("1") {
        eprintln!(
            "SKIPPED: stopping the Ray cluster needs MLP_RAY_CI=1 (the cluster is the tests' own)"
        );
        return;
    }
    let _alone = cluster().write().unwrap();
    let ws = Workspace::new(&pipeline(
        "",
        "stage doomed {\n  out \"x\"\n  run \"sleep 300; touch x\"\n}\n",
    ));
    let mut child = ws
        .command(&["run", "--json"])
        .env("MLP_RAY_LOST_MS", "3000")
        .spawn();
    running_job(&ws, "doomed", &mut child);
    let root = env!("CARGO_MANIFEST_DIR");
    let st = Command::new("bash")
        .arg(format!("{root}/.ci/ray-down.sh"))
        .status()
        .unwrap();
    assert!(st.success());
    let t0 = Instant::now();
    let r = Output::of(child).events();
    let up = Command::new("bash")
        .arg(format!("{root}/.ci/ray-up.sh"))
        .status()
        .unwrap();
    assert!(up.success(), "the cluster did not come back");
    assert!(t0.elapsed() < Duration::from_secs(60), "{:?}", t0.elapsed());
    assert_eq!(r.code, 1, "{}", r.stderr);
    let reason = r.event("doomed")["reason"].as_str().unwrap().to_string();
    assert!(
        reason.contains("lost the Ray cluster") || reason.contains("is gone from the cluster"),
        "{reason}"
    );
}

/// The shared-filesystem contract broken on purpose: `mlp` runs in a mount namespace of its
/// own, with the workspace on a tmpfs there; Ray's nodes see the directory empty. Needs
/// `unshare -m` (root): without it, the test says so and returns.
#[test]
fn a_job_that_cannot_see_the_workspace_says_so() {
    need_ray!();
    let _shared = cluster().read().unwrap();
    let private = Command::new("unshare")
        .args(["-m", "--propagation", "private", "true"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !private {
        eprintln!("SKIPPED: `unshare -m` is not allowed here (it needs root)");
        return;
    }
    let outer = Workspace::empty();
    let hidden = outer.path().join("hidden");
    std::fs::create_dir(&hidden).unwrap();
    let src = pipeline(
        "",
        "stage unseen {\n  out \"x.txt\"\n  run \"echo here > x.txt\"\n}\n",
    );
    std::fs::write(outer.path().join("pipeline.mlp"), src).unwrap();
    let script = format!(
        "mount -t tmpfs tmpfs '{h}' && mkdir '{h}/ws' && cp '{p}' '{h}/ws/' && cd '{h}/ws' && '{mlp}' run --json; rc=$?; cat .mlp/logs/*/unseen.log >&2; exit $rc",
        h = hidden.display(),
        p = outer.path().join("pipeline.mlp").display(),
        mlp = env!("CARGO_BIN_EXE_mlp"),
    );
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let ev: Value = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|e| e["event"] == "stage_finished")
        .expect("a stage_finished event");
    let reason = ev["reason"].as_str().unwrap();
    assert!(reason.contains("cannot see the workspace"), "{reason}");
    assert!(reason.contains("shares, at the same path"), "{reason}");
    // The log holds the entrypoint's own words, from the node.
    assert!(
        stderr.contains("mlp: cannot enter the workspace"),
        "{stderr}"
    );
}

#[test]
fn a_retry_is_a_new_job_and_the_log_keeps_both_attempts_as_locally() {
    need_ray!();
    let _shared = cluster().read().unwrap();
    let stage = "stage flaky {\n  retry 1\n  out \"x.txt\"\n  run \"echo attempt; test -f flag || { touch flag; exit 1; }; echo done > x.txt\"\n}\n";
    let remote = Workspace::new(&pipeline("", stage));
    let local = Workspace::new(stage);
    let r = remote.run(&[]);
    r.assert_ok();
    let l = local.run(&[]);
    l.assert_ok();
    assert_eq!(
        log_of(&remote, r.event("flaky")),
        log_of(&local, l.event("flaky"))
    );
    let jobs = &jobs_of(&remote)["flaky"];
    let mut ids: Vec<&str> = jobs
        .iter()
        .map(|j| j["submission_id"].as_str().unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert!(
        ids[0].ends_with("-flaky-1") && ids[1].ends_with("-flaky-2"),
        "{ids:?}"
    );
}
