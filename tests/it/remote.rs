//! The team cache (`mlp push`, `mlp pull`, `mlp run --pull`, `mlp gc --remote`) against a
//! directory remote and a real S3 server (moto, started by `.ci/run` with `.ci/moto-up.sh`,
//! its endpoint in `MLP_S3_ENDPOINT`): a second workspace pulls and has nothing to run,
//! a missing entry runs, kill -9 mid-transfer, a corrupt remote object, errors that name
//! the remote and the object, gc that keeps what another workspace needs, concurrent
//! pushes, and a secret key that is written nowhere.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::common::{Mlp, Output, Workspace, names, skip_or_fail};

/// The secret key the S3 tests use; mlp must never write it down.
const SECRET: &str = "mlp-test-secret-7d1e94b2c0";
const BUCKET: &str = "mlp-test";

const PIPELINE: &str = r#"pipeline "team"

stage gen {
  out d = "data"
  run "mkdir -p data/sub && for i in $(seq 1 40); do echo $i > data/f$i; done && echo x > data/sub/g && seq 1 60000 > data/big"
}

stage count {
  in gen.d
  out c = "count.txt"
  run "ls data | wc -l > count.txt"
}
"#;

/// Where a test's remote is: a directory, or a fresh prefix in the S3 test bucket.
enum Remote {
    Dir(tempfile::TempDir),
    S3 { endpoint: String, prefix: String },
}

impl Remote {
    fn dir() -> Remote {
        Remote::Dir(tempfile::tempdir().expect("tempdir"))
    }

    /// `None` after saying why there is no S3 server.
    fn s3(label: &str) -> Option<Remote> {
        let Ok(endpoint) = std::env::var("MLP_S3_ENDPOINT") else {
            skip_or_fail("MLP_S3_ENDPOINT is not set (`.ci/run` starts moto with .ci/moto-up.sh)");
            return None;
        };
        let n = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        Some(Remote::S3 {
            endpoint,
            prefix: format!("{label}-{n}"),
        })
    }

    fn url(&self) -> String {
        match self {
            Remote::Dir(d) => d.path().display().to_string(),
            Remote::S3 { prefix, .. } => format!("s3://{BUCKET}/{prefix}"),
        }
    }

    /// `mlp ARGS --remote URL` in `ws`, with the S3 settings where they apply.
    fn mlp(&self, ws: &Workspace, args: &[&str]) -> Output {
        self.command(ws, args).run()
    }

    fn command(&self, ws: &Workspace, args: &[&str]) -> Mlp {
        let mut c = ws.command(args).arg("--remote").arg(self.url());
        if let Remote::S3 { endpoint, .. } = self {
            c = c
                .env("AWS_ENDPOINT_URL", endpoint)
                .env("AWS_ACCESS_KEY_ID", "mlptestkey")
                .env("AWS_SECRET_ACCESS_KEY", SECRET)
                .env("AWS_REGION", "us-east-1");
        }
        c.env_remove("MLP_REMOTE")
    }

    /// `mlp run --json ARGS --remote URL`: its events.
    fn run(&self, ws: &Workspace, args: &[&str]) -> crate::common::Run {
        let mut all = vec!["run", "--json"];
        all.extend_from_slice(args);
        self.mlp(ws, &all).events()
    }
}

/// A workspace that ran the pipeline and pushed it.
fn pushed(remote: &Remote) -> Workspace {
    let a = Workspace::new(PIPELINE);
    a.run(&[]).assert_ok();
    let out = remote.mlp(&a, &["push"]).success();
    assert!(out.stderr().contains("pushed"), "{}", out.stderr());
    a
}

/// A second clone of the repository: the sources, without `.mlp/` and outputs.
fn clone_of(a: &Workspace) -> Workspace {
    Workspace::copy_of(a.path(), &["data", "count.txt"])
}

fn same_outputs(a: &Workspace, b: &Workspace) {
    assert_eq!(a.read("count.txt"), b.read("count.txt"));
    assert_eq!(
        std::fs::read(a.path().join("data/big")).unwrap(),
        std::fs::read(b.path().join("data/big")).unwrap()
    );
    assert_eq!(a.read("data/sub/g"), b.read("data/sub/g"));
    assert_eq!(a.read("data/f17"), b.read("data/f17"));
}

fn pull_then_run_runs_nothing(remote: &Remote) {
    let a = pushed(remote);
    let b = clone_of(&a);
    remote.mlp(&b, &["pull"]).success();
    same_outputs(&a, &b);
    let r = b.run(&[]);
    r.assert_ok();
    assert!(r.ran().is_empty(), "ran {:?}", r.ran());
    // A second push has nothing to send.
    let out = remote.mlp(&a, &["push", "--json"]).success();
    assert_eq!(out.json()["objects_sent"], 0, "{}", out.stdout());
}

fn run_pull_restores_without_running(remote: &Remote) {
    let a = pushed(remote);
    let b = clone_of(&a);
    let r = remote.run(&b, &["--pull"]);
    r.assert_ok();
    assert!(r.ran().is_empty(), "ran {:?}", r.ran());
    assert_eq!(r.with_status("restored"), names(&["count", "gen"]));
    same_outputs(&a, &b);
}

fn missing_entry_runs(remote: &Remote) {
    let a = Workspace::new(PIPELINE);
    a.run(&[]).assert_ok();
    remote.mlp(&a, &["push", "gen"]).success();
    let b = clone_of(&a);
    let r = remote.run(&b, &["--pull"]);
    r.assert_ok();
    assert_eq!(r.ran(), names(&["count"]));
    assert_eq!(r.with_status("restored"), names(&["gen"]));
}

#[test]
fn dir_pull_then_run_runs_nothing() {
    pull_then_run_runs_nothing(&Remote::dir());
}

#[test]
fn dir_run_pull_restores_without_running() {
    run_pull_restores_without_running(&Remote::dir());
}

#[test]
fn dir_missing_entry_runs() {
    missing_entry_runs(&Remote::dir());
}

#[test]
fn s3_pull_then_run_runs_nothing() {
    if let Some(r) = Remote::s3("pull") {
        pull_then_run_runs_nothing(&r);
    }
}

#[test]
fn s3_run_pull_restores_without_running() {
    if let Some(r) = Remote::s3("runpull") {
        run_pull_restores_without_running(&r);
    }
}

#[test]
fn s3_missing_entry_runs() {
    if let Some(r) = Remote::s3("missing") {
        missing_entry_runs(&r);
    }
}

#[test]
fn s3_big_file_goes_up_in_parts() {
    let Some(remote) = Remote::s3("big") else {
        return;
    };
    let a = Workspace::new(
        r#"pipeline "big"

stage big {
  out f = "big.bin"
  run "head -c 70000000 /dev/urandom > big.bin"
}
"#,
    );
    a.run(&[]).assert_ok();
    remote.mlp(&a, &["push", "-j", "4"]).success();
    let b = Workspace::copy_of(a.path(), &["big.bin"]);
    remote.mlp(&b, &["pull"]).success();
    assert!(
        std::fs::read(a.path().join("big.bin")).unwrap()
            == std::fs::read(b.path().join("big.bin")).unwrap()
    );
}

#[test]
fn unknown_stage_and_no_remote() {
    let remote = Remote::dir();
    let a = pushed(&remote);
    let out = remote.mlp(&a, &["pull", "nope"]).failure(1);
    assert!(out.stderr().contains("no stage `nope`"), "{}", out.stderr());
    let out = a
        .command(&["push"])
        .env_remove("MLP_REMOTE")
        .run()
        .failure(2);
    assert!(out.stderr().contains("no remote"), "{}", out.stderr());
}

#[test]
fn corrupt_remote_object_is_refused() {
    let remote = Remote::dir();
    let a = pushed(&remote);
    let Remote::Dir(d) = &remote else {
        unreachable!()
    };
    // Flip the bytes of every pack: a pull must refuse them and keep nothing.
    let mut packs = Vec::new();
    walk(&d.path().join("packs"), &mut packs);
    assert!(!packs.is_empty());
    for p in &packs {
        std::fs::write(p, b"garbage").unwrap();
    }
    let b = clone_of(&a);
    let out = remote.mlp(&b, &["pull"]);
    assert_ne!(out.code(), 0);
    let err = out.stderr();
    assert!(
        err.contains(&remote.url()) && err.contains("packs/"),
        "{err}"
    );
    assert!(err.contains("corrupt"), "{err}");
    assert!(!b.exists("data") && !b.exists("count.txt"));
    let mut cached = Vec::new();
    walk(&b.path().join(".mlp/cache/objects"), &mut cached);
    for c in &cached {
        let bytes = std::fs::read(c).unwrap();
        let name = format!(
            "{}{}",
            c.parent().unwrap().file_name().unwrap().to_string_lossy(),
            c.file_name().unwrap().to_string_lossy()
        );
        assert_eq!(
            blake3::hash(&bytes).to_hex().as_str(),
            name,
            "{}",
            c.display()
        );
    }
}

#[test]
fn errors_name_the_remote() {
    let a = Workspace::new(PIPELINE);
    a.run(&[]).assert_ok();
    // Nothing listens on port 9 of loopback.
    let out = a
        .command(&["push", "--remote", "s3://mlp-test/x"])
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_ACCESS_KEY_ID", "k")
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .run()
        .failure(1);
    let err = out.stderr().trim();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("s3://mlp-test/x") && err.contains("cannot reach"),
        "{err}"
    );
    assert!(!err.contains(SECRET));
    let out = a
        .command(&["pull", "--remote", "s3://AKIA:x@mlp-test/x"])
        .run()
        .failure(1);
    assert!(
        out.stderr().contains("must not hold credentials"),
        "{}",
        out.stderr()
    );
    // A missing bucket (needs the server).
    if let Some(Remote::S3 { endpoint, .. }) = Remote::s3("nobucket") {
        let out = a
            .command(&["push", "--remote", "s3://no-such-bucket-mlp/x"])
            .env("AWS_ENDPOINT_URL", &endpoint)
            .env("AWS_ACCESS_KEY_ID", "k")
            .env("AWS_SECRET_ACCESS_KEY", SECRET)
            .run()
            .failure(1);
        assert!(
            out.stderr().contains("s3://no-such-bucket-mlp/x")
                && out.stderr().contains("does not exist"),
            "{}",
            out.stderr()
        );
    }
}

#[test]
fn s3_secret_is_written_nowhere() {
    let Some(remote) = Remote::s3("secret") else {
        return;
    };
    let a = Workspace::new(PIPELINE);
    let mut printed = String::new();
    let run = remote.run(&a, &["--pull"]);
    printed += &run.stdout;
    printed += &run.stderr;
    for args in [
        &["push", "--json"][..],
        &["push", "--kept"],
        &["gc", "--json"],
    ] {
        let out = remote.mlp(&a, args);
        printed += out.stdout();
        printed += out.stderr();
    }
    let b = clone_of(&a);
    let out = remote.mlp(&b, &["pull", "--json"]);
    printed += out.stdout();
    printed += out.stderr();
    assert!(!printed.contains(SECRET));
    for ws in [&a, &b] {
        let mut files = Vec::new();
        walk(ws.path(), &mut files);
        for f in files {
            let bytes = std::fs::read(&f).unwrap_or_default();
            assert!(
                !bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
                "the secret is in {}",
                f.display()
            );
        }
    }
    // And on the remote: every object under the prefix, read with signed requests.
    let Remote::S3 { endpoint, prefix } = &remote else {
        unreachable!()
    };
    use rusty_s3::S3Action as _;
    let bucket = rusty_s3::Bucket::new(
        endpoint.parse().unwrap(),
        rusty_s3::UrlStyle::Path,
        BUCKET,
        "us-east-1",
    )
    .unwrap();
    let creds = rusty_s3::Credentials::new("mlptestkey", SECRET);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let mut list_action = bucket.list_objects_v2(Some(&creds));
    list_action.with_prefix(format!("{prefix}/"));
    let list = agent
        .get(list_action.sign(Duration::from_secs(600)).as_str())
        .call()
        .expect("list")
        .body_mut()
        .read_to_string()
        .expect("list body");
    let keys: Vec<&str> = list
        .split("<Key>")
        .skip(1)
        .filter_map(|s| s.split("</Key>").next())
        .collect();
    assert!(keys.len() > 3, "{list}");
    for k in keys {
        let url = bucket
            .get_object(Some(&creds), k)
            .sign(Duration::from_secs(600));
        let body = agent
            .get(url.as_str())
            .call()
            .expect("get")
            .body_mut()
            .with_config()
            .limit(u64::MAX)
            .read_to_vec()
            .expect("body");
        assert!(
            !body.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
            "the secret is in {k}"
        );
    }
}

#[test]
fn kill_during_push_and_pull_then_correct() {
    let remote = Remote::dir();
    let a = Workspace::new(
        r#"pipeline "many"

stage gen {
  out d = "data"
  run "mkdir -p data && for i in $(seq 1 30); do head -c 2000000 /dev/urandom > data/b$i; done && for i in $(seq 1 300); do echo $i > data/s$i; done"
}
"#,
    );
    a.run(&[]).assert_ok();
    for delay in [5, 30, 80] {
        let child = remote.command(&a, &["push", "-j", "2"]).spawn_silent();
        std::thread::sleep(Duration::from_millis(delay));
        let _ = std::process::Command::new("kill")
            .args(["-9", &child.id().to_string()])
            .status();
        let _ = Output::of(child);
    }
    remote.mlp(&a, &["push"]).success();
    let b = Workspace::copy_of(a.path(), &["data"]);
    for delay in [5, 30, 80] {
        let child = remote.command(&b, &["pull", "-j", "2"]).spawn_silent();
        std::thread::sleep(Duration::from_millis(delay));
        let _ = std::process::Command::new("kill")
            .args(["-9", &child.id().to_string()])
            .status();
        let _ = Output::of(child);
    }
    remote.mlp(&b, &["pull"]).success();
    let r = b.run(&[]);
    r.assert_ok();
    assert!(r.ran().is_empty(), "ran {:?}", r.ran());
    for i in [1, 30] {
        let f = format!("data/b{i}");
        assert_eq!(
            std::fs::read(a.path().join(&f)).unwrap(),
            std::fs::read(b.path().join(&f)).unwrap()
        );
    }
}

#[test]
fn two_pushes_at_once() {
    let remote = Remote::dir();
    let a = Workspace::new(PIPELINE);
    a.run(&[]).assert_ok();
    let b = Workspace::new(&PIPELINE.replace("count.txt", "n.txt"));
    b.run(&[]).assert_ok();
    let ca = remote.command(&a, &["push"]).spawn();
    let cb = remote.command(&b, &["push"]).spawn();
    Output::of(ca).success();
    Output::of(cb).success();
    for ws in [&a, &b] {
        let c = Workspace::copy_of(ws.path(), &["data", "count.txt", "n.txt"]);
        let r = remote.run(&c, &["--pull"]);
        r.assert_ok();
        assert!(r.ran().is_empty(), "ran {:?}", r.ran());
    }
}

#[test]
fn gc_keeps_what_another_workspace_needs() {
    let remote = Remote::dir();
    // Workspace A pushes v1; B pulls v1 and pushes (its ref names v1).
    let a = pushed(&remote);
    let b = clone_of(&a);
    remote.mlp(&b, &["pull"]).success();
    remote.mlp(&b, &["push"]).success();
    // A moves on to v2, then v3: v2 is needed by nobody.
    let v2 = PIPELINE.replace("seq 1 40", "seq 1 41");
    a.write("pipeline.mlp", &v2);
    a.run(&[]).assert_ok();
    remote.mlp(&a, &["push"]).success();
    a.write("pipeline.mlp", PIPELINE.replace("seq 1 40", "seq 1 42"));
    a.run(&[]).assert_ok();
    remote.mlp(&a, &["push"]).success();
    // A dry run by default.
    let out = remote.mlp(&a, &["gc", "--grace", "0", "--json"]).success();
    assert!(
        out.json()["removed"].as_u64().unwrap() > 0,
        "{}",
        out.stdout()
    );
    assert_eq!(out.json()["dry_run"], true);
    let out = remote
        .mlp(&a, &["gc", "--grace", "0", "--force", "--json"])
        .success();
    assert!(
        out.json()["removed"].as_u64().unwrap() > 0,
        "{}",
        out.stdout()
    );
    // v1 (B's) still pulls without running; v2 runs again.
    let c = clone_of(&b);
    let r = remote.run(&c, &["--pull"]);
    r.assert_ok();
    assert!(r.ran().is_empty(), "ran {:?}", r.ran());
    let d = Workspace::new(&v2);
    let r = remote.run(&d, &["--pull"]);
    r.assert_ok();
    assert_eq!(r.ran(), names(&["count", "gen"]));
    // Within the grace period nothing goes.
    let out = remote.mlp(&a, &["gc", "--force", "--json"]).success();
    assert_eq!(out.json()["removed"], 0, "{}", out.stdout());
}

fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() && !p.is_symlink() {
            walk(&p, out);
        } else if p.is_file() {
            out.push(p);
        }
    }
}

#[test]
fn pipeline_item_pulls_by_default_and_flags_win() {
    let remote = Remote::dir();
    let a = pushed(&remote);
    let with_item = format!(
        "remote \"{}\" {{ pull = true }}\n\n{PIPELINE}",
        remote.url()
    );
    // The item alone: `mlp run` pulls.
    let b = clone_of(&a);
    b.write("pipeline.mlp", &with_item);
    let r = b
        .command(&["run", "--json"])
        .env_remove("MLP_REMOTE")
        .run()
        .events();
    r.assert_ok();
    assert!(r.ran().is_empty(), "ran {:?}", r.ran());
    // --no-pull: it runs.
    let c = clone_of(&a);
    c.write("pipeline.mlp", &with_item);
    let r = c
        .command(&["run", "--json", "--no-pull"])
        .env_remove("MLP_REMOTE")
        .run()
        .events();
    r.assert_ok();
    assert_eq!(r.ran(), names(&["count", "gen"]));
    // MLP_REMOTE beats the item; --remote beats MLP_REMOTE.
    let empty = tempfile::tempdir().unwrap();
    let d = clone_of(&a);
    d.write("pipeline.mlp", &with_item);
    let r = d
        .command(&["run", "--json"])
        .env("MLP_REMOTE", &empty.path().display().to_string())
        .run()
        .events();
    r.assert_ok();
    assert_eq!(r.ran(), names(&["count", "gen"]));
    let e = clone_of(&a);
    e.write("pipeline.mlp", &with_item);
    let r = e
        .command(&["run", "--json", "--remote", &remote.url()])
        .env("MLP_REMOTE", &empty.path().display().to_string())
        .run()
        .events();
    r.assert_ok();
    assert!(r.ran().is_empty(), "ran {:?}", r.ran());
    // A run with nothing stale never opens the remote, even a broken one.
    let r = b
        .command(&["run", "--json", "--pull", "--remote", "s3://mlp-test/x"])
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env_remove("AWS_ACCESS_KEY_ID")
        .run()
        .events();
    r.assert_ok();
}
