//! Gigabyte outputs on real filesystems: reflink restores on XFS, copies on tmpfs, link
//! mode's read-only hard links, tampered objects in each mode, restore after `gc`, and
//! `mlp cache verify`. The XFS and tmpfs mounts come from `.ci/xfs-up.sh` (`MLP_XFS_DIR`,
//! `MLP_TMPFS_DIR`); without them those tests skip, or fail under `CI=true`.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{Mlp, Output, Run, skip_or_fail};

/// A stage whose output (over 1 MiB: hashed by streaming) depends on `params.n`.
fn pipeline(mode: Option<&str>) -> String {
    let item = mode.map(|m| format!("cache {m}\n")).unwrap_or_default();
    format!(
        "{item}param n = 300000\nstage gen {{\n  params n\n  out \"data/out.txt\"\n  run \"mkdir -p data && seq 1 ${{params.n}} > data/out.txt\"\n}}\n"
    )
}

fn expected(n: u32) -> String {
    (1..=n).map(|i| format!("{i}\n")).collect()
}

/// A workspace in a directory of the test's choosing (a mount), deleted when dropped.
struct Ws {
    dir: tempfile::TempDir,
}

impl Ws {
    fn in_dir(parent: &Path, mode: Option<&str>) -> Ws {
        let dir = tempfile::tempdir_in(parent).expect("tempdir");
        fs::write(dir.path().join("pipeline.mlp"), pipeline(mode)).unwrap();
        Ws { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn mlp(&self, args: &[&str]) -> Output {
        Mlp::new(args).current_dir(self.path()).run()
    }

    fn run_n(&self, n: u32) -> Run {
        let set = format!("n={n}");
        let r = self.mlp(&["run", "--json", "--set", &set]).events();
        r.assert_ok();
        r
    }

    fn out(&self) -> PathBuf {
        self.path().join("data/out.txt")
    }

    fn content(&self) -> String {
        fs::read_to_string(self.out()).unwrap()
    }

    /// The cached object holding `text`.
    fn object_of(&self, text: &str) -> PathBuf {
        let objects = self.path().join(".mlp/cache/objects");
        for shard in fs::read_dir(&objects).unwrap() {
            for o in fs::read_dir(shard.unwrap().path()).unwrap() {
                let p = o.unwrap().path();
                if fs::read(&p).is_ok_and(|b| b == text.as_bytes()) {
                    return p;
                }
            }
        }
        panic!("no object holds the expected bytes")
    }
}

/// Run n=300000, then n=300001, then n=300000 again: the last is restored from the cache.
fn make_restorable(ws: &Ws) {
    assert_eq!(ws.run_n(300_000).ran(), ["gen"]);
    assert_eq!(ws.run_n(300_001).ran(), ["gen"]);
}

fn restored(ws: &Ws) {
    let r = ws.run_n(300_000);
    assert_eq!(r.with_status("restored"), ["gen"], "{}", r.stderr);
    assert_eq!(ws.content(), expected(300_000));
}

fn mount(var: &str) -> Option<PathBuf> {
    match std::env::var_os(var) {
        Some(d) if Path::new(&d).is_dir() => Some(PathBuf::from(d)),
        _ => {
            skip_or_fail(&format!(
                "{var} is not set to a mounted directory (`eval \"$(sudo bash .ci/xfs-up.sh)\"`)"
            ));
            None
        }
    }
}

/// Whether `filefrag -v` reports every extent of `p` as shared (a reflink).
fn shared_extents(p: &Path) -> bool {
    let out = Command::new("filefrag").arg("-v").arg(p).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let extents: Vec<&str> = text
        .lines()
        .filter(|l| {
            l.trim_start()
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_digit())
        })
        .collect();
    !extents.is_empty() && extents.iter().all(|l| l.contains("shared"))
}

#[test]
fn restore_on_xfs_is_a_reflink_of_the_object() {
    let Some(xfs) = mount("MLP_XFS_DIR") else {
        return;
    };
    let ws = Ws::in_dir(&xfs, None);
    make_restorable(&ws);
    restored(&ws);
    let obj = ws.object_of(&expected(300_000));
    assert_ne!(
        fs::metadata(&obj).unwrap().ino(),
        fs::metadata(ws.out()).unwrap().ino()
    );
    assert!(
        shared_extents(&ws.out()),
        "the restored output shares no extents"
    );
    assert!(shared_extents(&obj), "the object shares no extents");
    assert_eq!(fs::metadata(ws.out()).unwrap().mode() & 0o777, 0o644);
}

#[test]
fn copy_mode_on_tmpfs_copies_and_finds_a_tampered_object() {
    let Some(tmpfs) = mount("MLP_TMPFS_DIR") else {
        return;
    };
    let ws = Ws::in_dir(&tmpfs, Some("copy"));
    make_restorable(&ws);
    restored(&ws);
    let obj = ws.object_of(&expected(300_000));
    let meta = fs::metadata(ws.out()).unwrap();
    assert_ne!(meta.ino(), fs::metadata(&obj).unwrap().ino());
    assert_eq!(meta.mode() & 0o777, 0o644, "a copy of its own, writable");
    // Writing the restored copy leaves the cache alone.
    fs::write(ws.out(), "edited\n").unwrap();
    assert_eq!(fs::read_to_string(&obj).unwrap(), expected(300_000));

    // Tamper with the object itself: the next restore sees it is no longer marked,
    // hashes it, deletes it and runs the stage.
    ws.run_n(300_001);
    fs::set_permissions(&obj, fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(&obj, expected(300_000).replace("\n7\n", "\nseven\n")).unwrap();
    let r = ws.run_n(300_000);
    assert_eq!(r.ran(), ["gen"], "a tampered object must not be restored");
    assert_eq!(ws.content(), expected(300_000));
    assert_eq!(ws.mlp(&["cache", "verify"]).code(), 0);
}

#[test]
fn link_mode_restores_read_only_links_and_catches_an_edit_in_place() {
    let Some(tmpfs) = mount("MLP_TMPFS_DIR") else {
        return;
    };
    let ws = Ws::in_dir(&tmpfs, Some("link"));
    make_restorable(&ws);
    restored(&ws);
    let obj = ws.object_of(&expected(300_000));
    let meta = fs::metadata(ws.out()).unwrap();
    assert_eq!(meta.ino(), fs::metadata(&obj).unwrap().ino(), "a hard link");
    assert_eq!(meta.mode() & 0o777, 0o444, "read-only");

    // A person makes the restored file writable and edits it in place: that is an edit
    // of the object. The output is edited by hand, and the object is no longer trusted.
    fs::set_permissions(ws.out(), fs::Permissions::from_mode(0o644)).unwrap();
    let mut f = fs::OpenOptions::new().append(true).open(ws.out()).unwrap();
    std::io::Write::write_all(&mut f, b"by hand\n").unwrap();
    drop(f);
    let r = ws.run_n(300_000);
    assert_eq!(r.ran(), ["gen"], "{}", r.stderr);
    assert_eq!(ws.content(), expected(300_000));
    // The stage's new output went into the cache again, and every object is good.
    let v = ws.mlp(&["cache", "verify", "--json"]);
    assert_eq!(v.code(), 0, "{}", v.stderr());
    assert_eq!(v.json()["removed"].as_array().map(Vec::len), Some(0));

    // A tampered object (not through the workspace) in link mode.
    ws.run_n(300_001);
    let obj = ws.object_of(&expected(300_000));
    fs::set_permissions(&obj, fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(&obj, "x\n").unwrap();
    let r = ws.run_n(300_000);
    assert_eq!(r.ran(), ["gen"]);
    assert_eq!(ws.content(), expected(300_000));
}

#[test]
fn link_mode_copies_what_it_cannot_link() {
    // A directory output records which files are executable: those are copied (0755),
    // the others linked (0444).
    let ws = Ws::in_dir(&std::env::temp_dir(), None);
    fs::write(
        ws.path().join("pipeline.mlp"),
        "cache link\nparam n = 1\nstage tool {\n  params n\n  out \"bin\"\n  run \"mkdir -p bin && echo ${params.n} > bin/data && printf '#!/bin/sh\\\\necho ${params.n}\\\\n' > bin/tool && chmod +x bin/tool\"\n}\n",
    )
    .unwrap();
    ws.run_n(1);
    ws.run_n(2);
    let r = ws.run_n(1);
    assert_eq!(r.with_status("restored"), ["tool"], "{}", r.stderr);
    let tool = fs::metadata(ws.path().join("bin/tool")).unwrap();
    assert_eq!(tool.nlink(), 1, "an executable is copied, not linked");
    assert_eq!(tool.mode() & 0o777, 0o755);
    let data = fs::metadata(ws.path().join("bin/data")).unwrap();
    assert_eq!(data.nlink(), 2, "a plain file is linked");
    assert_eq!(data.mode() & 0o777, 0o444);
    assert_eq!(
        fs::read_to_string(ws.path().join("bin/data")).unwrap(),
        "1\n"
    );
}

#[test]
fn restore_after_gc_and_cache_verify() {
    let ws = Ws::in_dir(&std::env::temp_dir(), None);
    make_restorable(&ws);
    let gc = ws.mlp(&["gc"]);
    assert_eq!(gc.code(), 0, "{}", gc.stderr());
    restored(&ws);
    // Everything but the last run's outputs may go; the run afterwards is right either way.
    ws.run_n(300_001);
    assert_eq!(ws.mlp(&["gc", "--keep", "1"]).code(), 0);
    let r = ws.run_n(300_000);
    assert_eq!(r.ran().len() + r.with_status("restored").len(), 1);
    assert_eq!(ws.content(), expected(300_000));

    // A change that keeps the size, mode and modification time passes for verified on a
    // restore; `mlp cache verify` reads every byte and removes it.
    let obj = ws.object_of(&expected(300_000));
    let mtime = fs::metadata(&obj).unwrap().modified().unwrap();
    fs::set_permissions(&obj, fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(&obj, expected(300_000).replace("\n7\n", "\n8\n")).unwrap();
    fs::set_permissions(&obj, fs::Permissions::from_mode(0o444)).unwrap();
    fs::File::open(&obj).unwrap().set_modified(mtime).unwrap();
    let dry = ws.mlp(&["cache", "verify", "--dry-run", "--json"]);
    assert_eq!(dry.code(), 1);
    assert!(obj.exists(), "--dry-run deletes nothing");
    let v = ws.mlp(&["cache", "verify", "--json"]);
    assert_eq!(v.code(), 1, "{}", v.stderr());
    let removed = v.json()["removed"].as_array().cloned().unwrap_or_default();
    assert_eq!(removed.len(), 1, "{removed:?}");
    assert_eq!(removed[0]["reason"], "contents");
    assert!(!obj.exists());
    assert_eq!(ws.mlp(&["cache", "verify"]).code(), 0);
}
