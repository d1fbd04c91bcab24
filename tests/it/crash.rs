//! The crash campaign (issue 17): `mlp run` is SIGKILLed at random moments over a pipeline of
//! 16 stages with multi-megabyte outputs and three input versions (switching back to a
//! version restores it from the run-cache; one round in four brings a new one, so that
//! commands run and are killed too), and after every kill the next run must succeed
//! with byte-for-byte a clean run's outputs, the run after it must do nothing, and nothing
//! may be left behind: no stray temporary files, no store moved aside as corrupt.
//!
//! Bounded here (30 rounds of 1 MB outputs); `MLP_CRASH_ROUNDS`, `MLP_CRASH_MB` and
//! `MLP_CRASH_SEED` scale it up or replay it (`bench/crash.sh` runs the full campaign with
//! the release binary). The seed is printed, and every failure names it.
//!
//! A kill takes the whole session of the run: `mlp` and the stage processes it started (in
//! process groups of their own), as a crash of the machine or the OOM killer would. A
//! stage process that outlived `mlp` would keep writing into outputs the next run rebuilds.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{DefaultHasher, Hasher};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{Output, Run, Workspace};

const VERSIONS: [&str; 3] = ["alpha\n", "beta beta\n", "gamma gamma gamma\n"];
const STAGES: usize = 16;

/// gen → feat_i → model_i → eval_i → report, gen → shards/ (a directory) → summary.
fn pipeline(bytes: u64) -> String {
    let pad = |src: &str, salt: &str| {
        format!("yes $(cksum < {src}) {salt} | head -c {bytes} >> ${{out.o}}")
    };
    let mut p = String::from("pipeline \"crash\"\n");
    p += &format!(
        "stage gen {{\n  in \"data.txt\"\n  out o = \"out/gen.bin\"\n  run \"mkdir -p out && cat data.txt > ${{out.o}} && {}\"\n}}\n",
        pad("data.txt", "gen")
    );
    for i in 0..4 {
        for (stage, from) in [
            ("feat", "gen.o".to_string()),
            ("model", format!("feat{i}.o")),
        ] {
            p += &format!(
                "stage {stage}{i} {{\n  in {from}\n  out o = \"out/{stage}{i}.bin\"\n  run \"mkdir -p out && head -c 64 ${{in[0]}} > ${{out.o}} && {}\"\n}}\n",
                pad("${in[0]}", &format!("{stage}{i}"))
            );
        }
        p += &format!(
            "stage eval{i} {{\n  in model{i}.o\n  out o = \"out/eval{i}.txt\"\n  run \"cksum < ${{in[0]}} > ${{out.o}}\"\n}}\n"
        );
    }
    p += "stage report {\n  in eval0.o, eval1.o, eval2.o, eval3.o\n  out o = \"out/report.txt\"\n  run \"cat ${in[0]} ${in[1]} ${in[2]} ${in[3]} > ${out.o}\"\n}\n";
    p += &format!(
        "stage shards {{\n  in gen.o\n  out o = \"out/shards/\"\n  run \"mkdir -p ${{out.o}} && for k in 1 2 3; do yes $(cksum < ${{in[0]}}) $k | head -c {} > ${{out.o}}/part$k; done\"\n}}\n",
        bytes / 2
    );
    p += "stage summary {\n  in report.o, shards.o\n  out o = \"out/summary.txt\"\n  run \"cat ${in[0]} > ${out.o} && cksum ${in[1]}/part1 ${in[1]}/part3 >> ${out.o}\"\n}\n";
    p
}

/// splitmix64: a deterministic sequence from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Every file under `out/` with a hash of its bytes (the map also catches extra files).
fn outputs(root: &Path) -> BTreeMap<String, u64> {
    fn walk(root: &Path, dir: &Path, into: &mut BTreeMap<String, u64>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, into);
            } else {
                let mut h = DefaultHasher::new();
                h.write(&std::fs::read(&p).unwrap_or_default());
                let rel = p.strip_prefix(root).unwrap().display().to_string();
                into.insert(rel, h.finish());
            }
        }
    }
    let mut m = BTreeMap::new();
    walk(root, &root.join("out"), &mut m);
    m
}

/// What an interrupted run may leave and the next one must have swept.
fn strays(root: &Path) -> Vec<String> {
    fn walk(dir: &Path, into: &mut Vec<String>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name == ".mlp" {
                continue;
            }
            if name.contains(".mlp-tmp-") || name.contains(".mlp-old-") {
                into.push(e.path().display().to_string());
            } else if e.path().is_dir() {
                walk(&e.path(), into);
            }
        }
    }
    let mut v = Vec::new();
    walk(root, &mut v);
    let tmp = root.join(".mlp/cache/tmp");
    if let Ok(rd) = std::fs::read_dir(&tmp) {
        v.extend(rd.flatten().map(|e| e.path().display().to_string()));
    }
    if root.join(".mlp/running").exists() {
        v.push(".mlp/running".into());
    }
    v
}

/// The live processes of session `sid` (state `Z` excluded: already dead).
fn session(sid: u32) -> Vec<u32> {
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        let f: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        if f.len() > 3 && f[0] != "Z" && f[3] == sid.to_string() {
            v.push(pid);
        }
    }
    v
}

/// SIGKILL every process of the session led by `sid`, until none is left.
fn kill_session(sid: u32) {
    for _ in 0..200 {
        let pids = session(sid);
        if pids.is_empty() {
            return;
        }
        let mut cmd = Command::new("kill");
        cmd.arg("-KILL").stderr(Stdio::null());
        for p in pids {
            cmd.arg(p.to_string());
        }
        let _ = cmd.status();
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("processes of session {sid} survive SIGKILL");
}

/// Where in the run the kill landed, from the events the run had printed.
fn classify(finished_first: bool, log: &str, seen_version: bool) -> &'static str {
    let events: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let kind = |e: &Value| e["event"].as_str().unwrap_or("").to_string();
    if finished_first || events.iter().any(|e| kind(e) == "finish") {
        return "after finish";
    }
    if !events.iter().any(|e| kind(e) == "start") {
        return "startup";
    }
    let stages = |k: &str| -> BTreeSet<String> {
        events
            .iter()
            .filter(|e| kind(e) == k)
            .filter_map(|e| e["stage"].as_str().map(str::to_string))
            .collect()
    };
    let (started, done) = (stages("stage_started"), stages("stage_finished"));
    let restored = events
        .iter()
        .any(|e| kind(e) == "stage_finished" && e["status"] == "restored");
    if done.len() == STAGES {
        "record/snapshot"
    } else if started.difference(&done).next().is_some() {
        "command/caching"
    } else if restored || seen_version {
        "restoring"
    } else {
        "hashing"
    }
}

pub struct Campaign {
    pub rounds: u64,
    pub seed: u64,
    pub mb: u64,
    /// The `mlp` under test: this build's, or `MLP_CRASH_BIN` (bench/crash.sh passes a
    /// release binary).
    pub bin: String,
}

/// `mlp ARGS` in `dir` with the binary under test.
fn mlp(bin: &str, dir: &Path, args: &[&str]) -> Output {
    Command::new(bin)
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("MLFLOW_TRACKING_URI")
        .env_remove("MLFLOW_EXPERIMENT_NAME")
        .output()
        .expect("spawn mlp")
        .into()
}

/// `mlp run --json ARGS` in `dir`: its events.
fn run(bin: &str, dir: &Path, args: &[&str]) -> Run {
    let mut all = vec!["run", "--json"];
    all.extend_from_slice(args);
    mlp(bin, dir, &all).events()
}

/// Counts by class, and the failures (each naming seed and round).
pub struct Outcome {
    pub classes: BTreeMap<&'static str, u64>,
    pub failures: Vec<String>,
    pub moved_aside: u64,
    pub clean_ms: u128,
    pub restore_ms: u128,
}

impl Campaign {
    pub fn from_env(rounds: u64, mb: u64) -> Campaign {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        Campaign {
            rounds: env_u64("MLP_CRASH_ROUNDS", rounds),
            seed: env_u64("MLP_CRASH_SEED", now),
            mb: env_u64("MLP_CRASH_MB", mb),
            bin: std::env::var("MLP_CRASH_BIN")
                .unwrap_or_else(|_| env!("CARGO_BIN_EXE_mlp").to_string()),
        }
    }

    pub fn run(&self) -> Outcome {
        let bytes = self.mb * 1024 * 1024;
        let text = pipeline(bytes);
        // What a clean run of each version writes, how long one takes, and how long a run
        // takes that restores a version from the run-cache (kills are spread over each).
        let clean = |data: &str| {
            let ws = Workspace::new(&text);
            ws.write("data.txt", data);
            run(&self.bin, ws.path(), &["-j", "2"]).assert_ok();
            outputs(ws.path())
        };
        let mut versions: Vec<String> = VERSIONS.iter().map(|v| v.to_string()).collect();
        let mut expected: Vec<_> = versions.iter().map(|d| clean(d)).collect();
        let mut clean_ms = 0;
        let warm = Workspace::new(&text);
        for (v, data) in versions.iter().enumerate() {
            warm.write("data.txt", data);
            let t = Instant::now();
            run(&self.bin, warm.path(), &["-j", "2"]).assert_ok();
            // The first run also creates the store: time the others.
            if v > 0 {
                clean_ms = clean_ms.max(t.elapsed().as_millis());
            }
        }
        warm.write("data.txt", VERSIONS[0]);
        let t = Instant::now();
        run(&self.bin, warm.path(), &["-j", "2"]).assert_ok();
        let restore_ms = t.elapsed().as_millis();
        let mut rng = Rng(self.seed);
        let ws = Workspace::new(&text);
        let logs = tempfile::tempdir().unwrap();
        let mut seen = vec![false; versions.len()];
        let mut current = versions.len() - 1;
        let mut span = [clean_ms as f64 * 1.1, restore_ms as f64 * 1.1];
        let mut out = Outcome {
            classes: BTreeMap::new(),
            failures: Vec::new(),
            moved_aside: 0,
            clean_ms,
            restore_ms,
        };
        for round in 0..self.rounds {
            // Always another version than the last round's, so every run has work to do:
            // one of the three known ones (restored from the run-cache once seen), or one
            // in four rounds a new one (every command runs again).
            let v = if rng.below(4) == 0 {
                let data = format!("new in round {round}\n");
                expected.push(clean(&data));
                versions.push(data);
                seen.push(false);
                versions.len() - 1
            } else {
                let others: Vec<usize> = (0..3).filter(|&i| i != current).collect();
                others[rng.below(others.len() as u64) as usize]
            };
            current = v;
            ws.write("data.txt", &versions[v]);
            let log = logs.path().join(format!("{round}.jsonl"));
            let mut child = Command::new("setsid")
                .arg(&self.bin)
                .args(["run", "--json", "-j", "2"])
                .current_dir(ws.path())
                .env("NO_COLOR", "1")
                .env_remove("MLFLOW_TRACKING_URI")
                .stdout(std::fs::File::create(&log).unwrap())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn setsid mlp");
            // Kills spread over a span that adapts to how long such a run takes now (the
            // machine's load changes): shorter after a run that finished first.
            let kind = usize::from(seen[v]);
            let delay = rng.below(span[kind] as u64 + 1);
            std::thread::sleep(Duration::from_millis(delay));
            let finished_first = child.try_wait().ok().flatten().is_some();
            kill_session(child.id());
            let _ = child.wait();
            let class = classify(
                finished_first,
                &std::fs::read_to_string(&log).unwrap_or_default(),
                seen[v],
            );
            *out.classes.entry(class).or_default() += 1;
            span[kind] = if class == "after finish" {
                span[kind] * 0.85
            } else {
                span[kind] * 1.05
            };
            let fail = |what: String| {
                format!(
                    "seed {} round {round} (version {v}, kill after {delay} ms, {class}): {what}",
                    self.seed
                )
            };

            let next = run(&self.bin, ws.path(), &["-j", "2"]);
            if next.code != 0 {
                out.failures
                    .push(fail(format!("the next run failed:\n{}", next.stderr)));
                continue;
            }
            if next.stdout.contains("could not be read after a crash") {
                out.moved_aside += 1;
                out.failures
                    .push(fail("the store was found corrupt and moved aside".into()));
            }
            let got = outputs(ws.path());
            if got != expected[v] {
                let wrong: Vec<&String> = expected[v]
                    .keys()
                    .chain(got.keys())
                    .filter(|k| got.get(*k) != expected[v].get(*k))
                    .collect();
                out.failures
                    .push(fail(format!("outputs differ from a clean run: {wrong:?}")));
            }
            let again = run(&self.bin, ws.path(), &[]);
            if again.code != 0 || !again.nothing_to_do() {
                out.failures.push(fail(format!(
                    "the run after the recovery did something: {:?}",
                    again.statuses()
                )));
            }
            let left = strays(ws.path());
            if !left.is_empty() {
                out.failures.push(fail(format!("left behind: {left:?}")));
            }
            for cmd in [&["runs"][..], &["status"][..]] {
                let o = mlp(&self.bin, ws.path(), cmd);
                if o.code() != 0 {
                    out.failures
                        .push(fail(format!("mlp {cmd:?} failed: {}", o.stderr())));
                }
            }
            seen[v] = true;
        }
        out
    }
}

#[test]
fn campaign() {
    let c = Campaign::from_env(30, 1);
    eprintln!(
        "crash campaign: {} rounds of {} MB, MLP_CRASH_SEED={}, {}",
        c.rounds, c.mb, c.seed, c.bin
    );
    let o = c.run();
    eprintln!(
        "kills by class: {:?}; clean run {} ms, restoring run {} ms; stores moved aside: {}",
        o.classes, o.clean_ms, o.restore_ms, o.moved_aside
    );
    assert!(
        o.failures.is_empty(),
        "{} of {} rounds failed (replay with MLP_CRASH_SEED={}):\n{}",
        o.failures.len(),
        c.rounds,
        c.seed,
        o.failures.join("\n")
    );
}

#[test]
fn strays_of_an_unfinished_run_are_swept() {
    let ws = Workspace::new(&pipeline(1000));
    ws.write("data.txt", VERSIONS[0]);
    ws.run(&[]).assert_ok();
    let clean = outputs(ws.path());
    // What a kill -9 during a restore leaves: the new content beside a file output, the
    // old content of a directory output moved aside, objects half-written to the cache.
    ws.write("out/.gen.bin.mlp-tmp-1.2.3", "new");
    ws.write("out/.shards.mlp-old-1.2.3/part1", "old");
    ws.write(".mlp/cache/tmp/1.2.3", "half an object");
    // Files that only look alike are not ours to delete.
    ws.write("out/.other.bin.mlp-tmp-1", "not an output's");
    ws.write("out/notes.mlp-tmp-1", "no leading dot");
    ws.write(".mlp/running", "");
    let r = ws.run(&[]);
    r.assert_ok();
    assert!(!ws.exists("out/.gen.bin.mlp-tmp-1.2.3"));
    assert!(!ws.exists("out/.shards.mlp-old-1.2.3"));
    assert!(!ws.exists(".mlp/cache/tmp/1.2.3"));
    assert!(
        !ws.exists(".mlp/running"),
        "a finished run removes its marker"
    );
    assert!(ws.exists("out/.other.bin.mlp-tmp-1"));
    assert!(ws.exists("out/notes.mlp-tmp-1"));
    ws.remove("out/.other.bin.mlp-tmp-1");
    ws.remove("out/notes.mlp-tmp-1");
    assert_eq!(outputs(ws.path()), clean);
    assert!(ws.run(&[]).nothing_to_do());
}

#[test]
fn strays_are_left_alone_after_a_finished_run() {
    // Without the marker no run has crashed: nothing is swept (and nothing read).
    let ws = Workspace::new(&pipeline(1000));
    ws.write("data.txt", VERSIONS[0]);
    ws.run(&[]).assert_ok();
    ws.write("out/.gen.bin.mlp-tmp-1.2.3", "someone else's");
    ws.write("data.txt", VERSIONS[1]);
    ws.run(&[]).assert_ok();
    assert!(ws.exists("out/.gen.bin.mlp-tmp-1.2.3"));
}
