use super::*;
use std::fs;
use std::path::Path;

fn job(dir: &Path, command: &str) -> Job {
    Job {
        command: command.to_owned(),
        cwd: dir.to_path_buf(),
        env: Vec::new(),
        log: dir.join("logs/nested/stage.log"),
        timeout: None,
        echo: None,
        append_log: false,
    }
}

fn log_of(job: &Job) -> String {
    fs::read_to_string(&job.log).unwrap()
}

/// Alive and not a zombie (a reparented zombie may linger if the
/// container's init does not reap).
fn alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rsplit(')')
                .next()
                .and_then(|s| s.trim().chars().next());
            !matches!(state, Some('Z' | 'X') | None)
        }
        Err(_) => false,
    }
}

fn gone_within(pid: i32, limit: Duration) -> bool {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if !alive(pid) {
            return true;
        }
        thread::sleep(Duration::from_millis(20));
    }
    !alive(pid)
}

fn read_pid(path: &Path, limit: Duration) -> i32 {
    let until = Instant::now() + limit;
    loop {
        if let Ok(s) = fs::read_to_string(path)
            && let Ok(pid) = s.trim().parse()
        {
            return pid;
        }
        assert!(Instant::now() < until, "no pid file {}", path.display());
        thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn exit_code_is_propagated() {
    let dir = tempfile::tempdir().unwrap();
    let table = ProcessTable::new();
    let f = run(&job(dir.path(), "exit 3"), 1, &table).unwrap();
    assert_eq!(f.exit, Exit::Code(3));
    assert!(!f.success());
    let f = run(&job(dir.path(), "true"), 2, &table).unwrap();
    assert!(f.success());
    assert!(f.ended >= f.started);
    assert_eq!(table.running(), 0);
}

#[test]
fn killed_by_signal() {
    let dir = tempfile::tempdir().unwrap();
    let f = run(&job(dir.path(), "kill -9 $$"), 1, &ProcessTable::new()).unwrap();
    assert_eq!(f.exit, Exit::Signal(9));
}

#[test]
fn both_streams_land_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let j = job(dir.path(), "echo out; echo err >&2; printf tail");
    let f = run(&j, 1, &ProcessTable::new()).unwrap();
    assert!(f.success());
    assert_eq!(log_of(&j), "out\nerr\ntail");
}

#[test]
fn a_silent_job_leaves_no_log() {
    let dir = tempfile::tempdir().unwrap();
    let j = job(dir.path(), "true");
    let f = run(&j, 1, &ProcessTable::new()).unwrap();
    assert!(f.success());
    assert!(!j.log.exists());
    assert!(!j.log.parent().unwrap().exists());
}

#[test]
fn log_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let j = job(dir.path(), "echo a long first line");
    run(&j, 1, &ProcessTable::new()).unwrap();
    let j = job(dir.path(), "echo b");
    run(&j, 1, &ProcessTable::new()).unwrap();
    assert_eq!(log_of(&j), "b\n");
}

#[test]
fn env_cwd_and_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let mut j = job(
        dir.path(),
        r#"printf '%s|%s|' "$MLP_TEST_VAR" "$(pwd -P)"; cat"#,
    );
    j.env.push(("MLP_TEST_VAR".into(), "hello world".into()));
    let f = run(&j, 1, &ProcessTable::new()).unwrap();
    assert!(f.success());
    let cwd = fs::canonicalize(dir.path()).unwrap();
    assert_eq!(log_of(&j), format!("hello world|{}|", cwd.display()));
}

#[test]
fn spawn_error_in_missing_cwd() {
    let dir = tempfile::tempdir().unwrap();
    let mut j = job(dir.path(), "true");
    j.cwd = dir.path().join("missing");
    assert!(run(&j, 1, &ProcessTable::new()).is_err());
}

#[test]
fn timeout_kills_the_group() {
    let dir = tempfile::tempdir().unwrap();
    let mut j = job(dir.path(), "sleep 30 & echo $! > pid; wait");
    j.timeout = Some(Duration::from_millis(300));
    let t0 = Instant::now();
    let f = run(&j, 1, &ProcessTable::new()).unwrap();
    assert_eq!(f.exit, Exit::TimedOut);
    assert!(t0.elapsed() < Duration::from_secs(10));
    let pid = read_pid(&dir.path().join("pid"), Duration::from_secs(1));
    assert!(gone_within(pid, Duration::from_secs(5)));
}

#[test]
fn timeout_escalates_to_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut j = job(dir.path(), "trap '' TERM; sleep 30 & echo $! > pid; wait");
    j.timeout = Some(Duration::from_millis(200));
    let t0 = Instant::now();
    let f = run(&j, 1, &ProcessTable::new()).unwrap();
    assert_eq!(f.exit, Exit::TimedOut);
    assert!(t0.elapsed() < Duration::from_secs(10));
    let pid = read_pid(&dir.path().join("pid"), Duration::from_secs(1));
    assert!(gone_within(pid, Duration::from_secs(5)));
}

#[test]
fn fast_job_with_timeout_is_not_delayed() {
    let dir = tempfile::tempdir().unwrap();
    let mut j = job(dir.path(), "echo ok");
    j.timeout = Some(Duration::from_secs(60));
    let t0 = Instant::now();
    let f = run(&j, 1, &ProcessTable::new()).unwrap();
    assert!(f.success());
    assert!(t0.elapsed() < Duration::from_secs(10));
}

#[test]
fn background_children_do_not_leak() {
    let dir = tempfile::tempdir().unwrap();
    let j = job(dir.path(), "sleep 30 & echo $! > pid");
    let f = run(&j, 1, &ProcessTable::new()).unwrap();
    assert!(f.success());
    let pid = read_pid(&dir.path().join("pid"), Duration::from_secs(1));
    assert!(gone_within(pid, Duration::from_secs(5)));
}

fn cancel_running(cancel: impl FnOnce(&ProcessTable)) {
    let dir = tempfile::tempdir().unwrap();
    let table = ProcessTable::new();
    let j = job(dir.path(), "sleep 30 & echo $! > pid; wait");
    let t0 = Instant::now();
    let worker = {
        let table = table.clone();
        thread::spawn(move || run(&j, 7, &table))
    };
    let pid = read_pid(&dir.path().join("pid"), Duration::from_secs(10));
    cancel(&table);
    let f = worker.join().unwrap().unwrap();
    assert_eq!(f.exit, Exit::Cancelled);
    assert!(t0.elapsed() < Duration::from_secs(10));
    assert!(gone_within(pid, Duration::from_secs(5)));
    assert_eq!(table.running(), 0);
}

#[test]
fn cancel_one_job() {
    cancel_running(|t| t.cancel(7));
}

#[test]
fn cancel_all_jobs() {
    cancel_running(ProcessTable::cancel_all);
}

#[test]
fn cancel_unknown_id_is_a_no_op() {
    let table = ProcessTable::new();
    table.cancel(42);
    assert!(!table.is_cancelled());
}

#[test]
fn nothing_runs_after_cancel_all() {
    let dir = tempfile::tempdir().unwrap();
    let table = ProcessTable::new();
    table.cancel_all();
    assert!(table.is_cancelled());
    let f = run(&job(dir.path(), "touch ran"), 1, &table).unwrap();
    assert_eq!(f.exit, Exit::Cancelled);
    assert!(!dir.path().join("ran").exists());
}

#[test]
fn resource_usage() {
    let dir = tempfile::tempdir().unwrap();
    let j = job(
        dir.path(),
        "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done",
    );
    let f = run(&j, 1, &ProcessTable::new()).unwrap();
    assert!(f.success());
    assert!(f.cpu_ms > 0, "cpu_ms = {}", f.cpu_ms);
    assert!(f.max_rss_kb > 0);
}

#[test]
fn echo_mode_writes_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut j = job(dir.path(), "echo out; echo err >&2; printf tail >&2");
    j.echo = Some(Echo {
        prefix: "stage".into(),
    });
    let f = run(&j, 1, &ProcessTable::new()).unwrap();
    assert!(f.success());
    let log = log_of(&j);
    assert!(log.contains("out\n"), "{log:?}");
    assert!(log.contains("err\n"), "{log:?}");
    assert!(
        log.ends_with("tail") || log.contains("tailout\n"),
        "{log:?}"
    );
    assert_eq!(log.len(), "out\nerr\ntail".len());
}

#[test]
fn echo_mode_with_background_child_returns() {
    let dir = tempfile::tempdir().unwrap();
    let mut j = job(dir.path(), "sleep 30 & echo $! > pid; echo hi");
    j.echo = Some(Echo {
        prefix: "bg".into(),
    });
    let t0 = Instant::now();
    let f = run(&j, 1, &ProcessTable::new()).unwrap();
    assert!(f.success());
    assert!(t0.elapsed() < Duration::from_secs(10));
    assert_eq!(log_of(&j), "hi\n");
    let pid = read_pid(&dir.path().join("pid"), Duration::from_secs(1));
    assert!(gone_within(pid, Duration::from_secs(5)));
}

#[test]
fn finished_round_trips_through_json() {
    let f = Finished::not_run(Exit::TimedOut);
    let back: Finished = serde_json::from_str(&serde_json::to_string(&f).unwrap()).unwrap();
    assert_eq!(back.exit, Exit::TimedOut);
    assert_eq!(back.started, f.started);
}
