//! A full disk (issue 17): the workspace lives on its own 16 MB tmpfs, and a filler file
//! leaves just-not-enough room at every point of a run in turn — while the stage writes its
//! output, while the output is copied into the object cache, while the store writes, while
//! the snapshot is replaced. Each time: either the run succeeds, or it fails with one line
//! naming the path and `No space left on device`; the store stays readable; and once the
//! filler is deleted the next run is correct and the one after does nothing.
//!
//! Mounting needs root: CI runs as root; elsewhere the test skips with a reason.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{Mlp, skip_or_fail};

const BIG: usize = 2 * 1024 * 1024;

const PIPELINE: &str = r#"
pipeline "full"
stage big {
  in "data.txt"
  out o = "out/big.bin"
  run "mkdir -p out && yes $(cat data.txt) | head -c 2097152 > ${out.o}"
}
stage tail {
  in big.o
  out o = "out/tail.txt"
  run "tail -c 100 ${in[0]} > ${out.o}"
}
"#;

/// A tmpfs of its own, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Result<Tmpfs, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount -t tmpfs failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Tmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Free bytes.
    fn avail(&self) -> u64 {
        let out = Command::new("df")
            .args(["-B1", "--output=avail"])
            .arg(self.path())
            .output()
            .expect("df");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .nth(1)
            .and_then(|l| l.trim().parse().ok())
            .expect("df --output=avail")
    }

    /// Fill the disk with `filler` until `leave` bytes are free.
    fn fill(&self, filler: &Path, leave: u64) {
        let mut f = std::fs::File::create(filler).expect("create filler");
        let chunk = vec![0u8; 4096];
        while self.avail() > leave {
            let n = (self.avail() - leave).min(1 << 20) as usize;
            let n = n.div_ceil(4096) * 4096;
            for _ in 0..n / 4096 {
                if f.write_all(&chunk).is_err() {
                    return;
                }
            }
            f.flush().unwrap();
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(self.path())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(self.path()).status();
        }
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

fn mlp(dir: &Path, args: &[&str]) -> crate::common::Output {
    Mlp::new(args).current_dir(dir).run()
}

fn expected_big(data: &str) -> Vec<u8> {
    let line = format!("{data}\n");
    line.repeat(BIG / line.len() + 1).into_bytes()[..BIG].to_vec()
}

/// A command that ran out of room says so on one line naming the path: `mlp: ...`, a stage
/// that failed to cache its output, or a failed stage's note that its disk is full.
#[track_caller]
fn names_path_and_cause(leave: u64, stderr: &str) {
    assert!(
        !stderr.contains("panicked"),
        "leave {leave}: a panic:\n{stderr}"
    );
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("No space left on device") && l.contains('/')),
        "leave {leave}: no line naming the path and the cause:\n{stderr}"
    );
}

/// Which point of the run the full disk hit, from what mlp said.
fn point(code: i32, stderr: &str) -> &'static str {
    let has = |s: &str| stderr.contains(s);
    if has(".mlp/lock") {
        "lock"
    } else if has(".mlp/store") {
        "store"
    } else if has("note: the disk holding") {
        "stage write"
    } else if has("cannot cache output") {
        "cache copy"
    } else if has("state.bin") {
        "snapshot (warning)"
    } else if code == 0 {
        "none: enough room"
    } else {
        "other"
    }
}

#[test]
fn full_disk_at_every_point_of_a_run() {
    if !is_root() {
        skip_or_fail("the full-disk test mounts a tmpfs and needs root");
        return;
    }
    let fs = match Tmpfs::mount("16m") {
        Ok(fs) => fs,
        Err(e) => {
            skip_or_fail(&format!("cannot mount a tmpfs: {e}"));
            return;
        }
    };
    let ws: PathBuf = fs.path().join("ws");
    let filler = fs.path().join("filler");
    let k = 1024u64;
    // Coarse steps up to the room sled needs to open, then around the output (2 MiB),
    // then finely where the output and its cached copy (4 MiB) fit and the records do not.
    let mut levels: Vec<u64> = (0..8).map(|i| i * 128 * k).collect();
    levels.extend((0..8).map(|i| 2048 * k + i * 96 * k));
    levels.extend((0..5).map(|i| 4096 * k + i * 96 * k));
    levels.extend((0..32).map(|i| 4560 * k + i * 4 * k));
    let mut seen: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for (n, &leave) in levels.iter().enumerate() {
        let _ = std::fs::remove_dir_all(&ws);
        let _ = std::fs::remove_file(&filler);
        std::fs::create_dir_all(&ws).unwrap();
        std::fs::write(ws.join("pipeline.mlp"), PIPELINE).unwrap();
        std::fs::write(ws.join("data.txt"), "setup\n").unwrap();
        mlp(&ws, &["run"]).success();
        let data = format!("level{n}");
        std::fs::write(ws.join("data.txt"), format!("{data}\n")).unwrap();

        // Its output gone too (clearing it would otherwise free the room it needs).
        std::fs::remove_dir_all(ws.join("out")).unwrap();
        fs.fill(&filler, leave);
        let full = mlp(&ws, &["run"]);
        let what = point(full.code(), full.stderr());
        eprintln!("leave {leave:>8}: exit {}, {what}", full.code());
        seen.entry(what).or_default().push(leave);
        if full.code() != 0 {
            names_path_and_cause(leave, full.stderr());
        }
        // Reading commands may need a little room too (sled writes when it opens): they
        // work, or say which path is full.
        for cmd in [&["runs"][..], &["status"][..]] {
            let o = mlp(&ws, cmd);
            if o.code() != 0 {
                names_path_and_cause(leave, o.stderr());
            }
        }

        std::fs::remove_file(&filler).unwrap();
        let next = mlp(&ws, &["run"]);
        assert_eq!(
            next.code(),
            0,
            "leave {leave}: the run after freeing space: {}",
            next.stderr()
        );
        assert!(
            !next.stderr().contains("could not be read"),
            "leave {leave}: {}",
            next.stderr()
        );
        let big = std::fs::read(ws.join("out/big.bin")).unwrap();
        assert!(
            big == expected_big(&data),
            "leave {leave}: out/big.bin is wrong"
        );
        let tail = std::fs::read(ws.join("out/tail.txt")).unwrap();
        assert_eq!(tail, big[big.len() - 100..], "leave {leave}: out/tail.txt");
        for cmd in [&["runs"][..], &["status"][..]] {
            let o = mlp(&ws, cmd);
            assert_eq!(
                o.code(),
                0,
                "leave {leave}: mlp {cmd:?} once there is room: {}",
                o.stderr()
            );
        }
        let again = mlp(&ws, &["run", "--json"]).events();
        assert!(
            again.nothing_to_do(),
            "leave {leave}: {:?}",
            again.statuses()
        );
    }
    for (what, levels) in &seen {
        eprintln!("{what}: left {levels:?} bytes free");
    }
    for what in ["store", "stage write", "cache copy"] {
        assert!(seen.contains_key(what), "no level hit the {what}: {seen:?}");
    }
    assert!(!seen.contains_key("other"), "{seen:?}");
}
