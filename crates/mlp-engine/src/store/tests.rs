//! The store contract, run against both stores, and the sled store's own behaviour.

use super::disk::SCHEMA_KEY;
use super::*;
use serde_json::json;

fn rec(stage: &str, identity: &str, outcome: Outcome, run: &str) -> StageRecord {
    StageRecord {
        stage: stage.into(),
        identity: identity.into(),
        key: KeyJson::of(&json!({"cmd": format!("run {stage}"), "deps": {"a.txt": identity}})),
        outputs: vec![OutputRecord {
            path: format!("out/{stage}.bin"),
            digest: "ab".repeat(32),
            size: 42,
            is_dir: false,
        }],
        outcome,
        run_id: run.into(),
        started_ms: 1_700_000_000_000,
        ended_ms: 1_700_000_001_000,
        attempts: 1,
        cpu_ms: 900,
        max_rss_kb: 1024,
        metrics: serde_json::Value::Null,
        fallback_used: false,
        checks: String::new(),
        reason: String::new(),
    }
}

fn stat(n: u8) -> StatEntry {
    StatEntry {
        size: u64::from(n) * 10,
        mtime_ns: 1_700_000_000_123_456_789 + i128::from(n),
        ctime_ns: -5,
        ino: u64::from(n) + 1000,
        digest: [n; 32],
    }
}

/// The behaviour every [`Store`] must have.
fn contract(store: &dyn Store) {
    // Empty store.
    assert_eq!(store.cached("id1").unwrap(), None);
    assert_eq!(store.last("train").unwrap(), None);
    assert_eq!(store.last_success("train").unwrap(), None);
    assert!(store.all_cached().unwrap().is_empty());
    assert!(store.stat_entries().unwrap().is_empty());
    assert!(store.runs().unwrap().is_empty());

    // A success fills last, last_success and the run cache.
    let ok1 = rec("train", "id1", Outcome::Succeeded, "r1");
    store.put_record(&ok1).unwrap();
    assert_eq!(store.cached("id1").unwrap(), Some(ok1.clone()));
    assert_eq!(store.last("train").unwrap(), Some(ok1.clone()));
    assert_eq!(store.last_success("train").unwrap(), Some(ok1.clone()));

    // A failure only updates last.
    let failed = rec(
        "train",
        "id2",
        Outcome::Failed {
            code: Some(2),
            signal: None,
        },
        "r2",
    );
    store.put_record(&failed).unwrap();
    assert_eq!(store.last("train").unwrap(), Some(failed.clone()));
    assert_eq!(store.last_success("train").unwrap(), Some(ok1.clone()));
    assert_eq!(store.cached("id2").unwrap(), None);
    for outcome in [Outcome::TimedOut, Outcome::Interrupted] {
        let r = rec("train", "id3", outcome, "r3");
        store.put_record(&r).unwrap();
        assert_eq!(store.last("train").unwrap(), Some(r));
        assert_eq!(store.cached("id3").unwrap(), None);
    }
    // A failed check or gate judged good outputs: they stay in the run-cache (to be
    // judged again), but it is not a success.
    let judged = rec(
        "train",
        "id3b",
        Outcome::CheckFailed {
            message: "gate failed".into(),
        },
        "r3",
    );
    store.put_record(&judged).unwrap();
    assert_eq!(store.last("train").unwrap(), Some(judged.clone()));
    assert_eq!(store.cached("id3b").unwrap(), Some(judged.clone()));
    assert_eq!(store.last_success("train").unwrap(), Some(ok1.clone()));
    // Outputs a fallback made are not the stage's success.
    let mut fb = rec("train", "id3c", Outcome::Succeeded, "r3");
    fb.fallback_used = true;
    store.put_record(&fb).unwrap();
    assert_eq!(store.last("train").unwrap(), Some(fb.clone()));
    assert_eq!(store.cached("id3c").unwrap(), None);
    assert_eq!(store.last_success("train").unwrap(), Some(ok1.clone()));

    // A later success of another identity replaces last_success; both
    // identities stay in the run cache.
    let mut ok2 = rec("train", "id4", Outcome::Succeeded, "r4");
    ok2.metrics = json!({"acc": 0.9});
    store.put_record(&ok2).unwrap();
    assert_eq!(store.last_success("train").unwrap(), Some(ok2.clone()));
    assert_eq!(store.cached("id1").unwrap(), Some(ok1.clone()));
    assert_eq!(store.cached("id4").unwrap(), Some(ok2.clone()));
    // Records of other stages are independent.
    let prep = rec("prep", "id5", Outcome::Succeeded, "r4");
    store.put_record(&prep).unwrap();
    assert_eq!(store.last("train").unwrap(), Some(ok2.clone()));
    assert_eq!(store.last("prep").unwrap(), Some(prep.clone()));
    let mut all: Vec<String> = store
        .all_cached()
        .unwrap()
        .into_iter()
        .map(|r| r.identity)
        .collect();
    all.sort();
    assert_eq!(all, ["id1", "id3b", "id4", "id5"]);

    // Removing a run-cache entry leaves last/last_success alone.
    store.remove_cached("id4").unwrap();
    store.remove_cached("does-not-exist").unwrap();
    assert_eq!(store.cached("id4").unwrap(), None);
    assert_eq!(store.last_success("train").unwrap(), Some(ok2));
    assert_eq!(store.all_cached().unwrap().len(), 3);

    // Stats: batch put, overwrite, remove.
    store
        .put_stats(&[
            ("b/x.csv".into(), stat(2)),
            ("a.txt".into(), stat(1)),
            ("c".into(), stat(3)),
        ])
        .unwrap();
    store.put_stats(&[("c".into(), stat(4))]).unwrap();
    let mut got = store.stat_entries().unwrap();
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        got,
        vec![
            ("a.txt".to_string(), stat(1)),
            ("b/x.csv".to_string(), stat(2)),
            ("c".to_string(), stat(4)),
        ]
    );
    store
        .remove_stats(&["a.txt".into(), "nope".into()])
        .unwrap();
    let mut got = store.stat_entries().unwrap();
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].0, "b/x.csv");

    // Runs come back oldest first (ids sort by time).
    store
        .put_run("20240102T000000-0002", &json!({"n": 2}))
        .unwrap();
    store
        .put_run("20240101T000000-0001", &json!({"n": 1}))
        .unwrap();
    store
        .put_run("20240103T000000-0003", &json!({"n": 3}))
        .unwrap();
    let runs = store.runs().unwrap();
    let ids: Vec<&str> = runs.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "20240101T000000-0001",
            "20240102T000000-0002",
            "20240103T000000-0003"
        ]
    );
    assert_eq!(
        store.run("20240102T000000-0002").unwrap(),
        Some(json!({"n": 2}))
    );
    assert_eq!(store.run("nope").unwrap(), None);
    store.flush().unwrap();
}

/// `put_records`: what `put_record` of each, in order, would leave (batches larger than
/// one transaction included; a later record of a stage wins).
fn batch_contract(store: &dyn Store) {
    let mut recs: Vec<StageRecord> = (0..BATCH + 10)
        .map(|i| {
            rec(
                &format!("s{i}"),
                &format!("id{i}"),
                Outcome::Succeeded,
                "r1",
            )
        })
        .collect();
    let failed = rec(
        "s3",
        "idf",
        Outcome::Failed {
            code: Some(1),
            signal: None,
        },
        "r1",
    );
    recs.push(failed.clone());
    store.put_records(&recs).unwrap();
    for r in &recs[..BATCH + 10] {
        assert_eq!(store.cached(&r.identity).unwrap().as_ref(), Some(r));
        assert_eq!(store.last_success(&r.stage).unwrap().as_ref(), Some(r));
    }
    assert_eq!(store.last("s3").unwrap(), Some(failed));
    assert_eq!(store.last_success("s3").unwrap(), Some(recs[3].clone()));
    assert_eq!(store.cached("idf").unwrap(), None);
    store.put_records(&[]).unwrap();
}

#[test]
fn mem_store_batches() {
    batch_contract(&MemStore::new());
}

#[test]
fn sled_store_batches() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state");
    {
        let store = SledStore::open(&path).unwrap();
        batch_contract(&store);
    }
    // And they are there after a clean close.
    let store = SledStore::open(&path).unwrap();
    assert!(
        store
            .last_success(&format!("s{}", BATCH + 9))
            .unwrap()
            .is_some()
    );
}

#[test]
fn mem_store_contract() {
    contract(&MemStore::new());
}

#[test]
fn sled_store_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(&dir.path().join("state")).unwrap();
    contract(&store);
}

#[test]
fn sled_store_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state");
    let r = rec("train", "id1", Outcome::Succeeded, "r1");
    {
        let store = SledStore::open(&path).unwrap();
        store.put_record(&r).unwrap();
        store.put_stats(&[("a".into(), stat(7))]).unwrap();
        store.put_run("r1", &json!({"ok": true})).unwrap();
        store.flush().unwrap();
    }
    let store = SledStore::open(&path).unwrap();
    assert_eq!(store.cached("id1").unwrap(), Some(r.clone()));
    assert_eq!(store.last("train").unwrap(), Some(r.clone()));
    assert_eq!(store.last_success("train").unwrap(), Some(r));
    assert_eq!(store.stat_entries().unwrap(), vec![("a".into(), stat(7))]);
    assert_eq!(store.run("r1").unwrap(), Some(json!({"ok": true})));
}

#[test]
fn torn_snapshot_from_a_kill_is_ignored_on_reopen() {
    // A kill -9 while sled writes a snapshot leaves `snap.<LSN>.generating`; sled 0.34
    // reads the last-sorting `snap.*` file and calls the database corrupt (sled#1527).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state");
    let r = rec("train", "id1", Outcome::Succeeded, "r1");
    {
        let store = SledStore::open(&path).unwrap();
        store.put_record(&r).unwrap();
        store.put_run("r1", &json!({"ok": true})).unwrap();
        store.flush().unwrap();
    }
    let torn = path.join("snap.FFFFFFFFFFFFFFFF.generating");
    std::fs::write(&torn, b"half a snapshot, no checksum").unwrap();
    // sled alone trips over it (this is what the fix works around).
    assert!(matches!(
        sled::open(&path),
        Err(sled::Error::Corruption { .. })
    ));
    let store = SledStore::open(&path).unwrap();
    assert!(!torn.exists(), "the torn snapshot is deleted");
    assert_eq!(store.last_success("train").unwrap(), Some(r.clone()));
    assert_eq!(store.cached("id1").unwrap(), Some(r));
    assert_eq!(store.run("r1").unwrap(), Some(json!({"ok": true})));
}

#[test]
fn torn_snapshot_of_a_live_store_is_left_alone() {
    // While another handle holds the database, its `.generating` file may be a snapshot
    // being written right now: the open reports the lock and deletes nothing.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state");
    let first = SledStore::open(&path).unwrap();
    let generating = path.join("snap.FFFFFFFFFFFFFFFF.generating");
    std::fs::write(&generating, b"being written").unwrap();
    assert!(matches!(
        SledStore::open(&path),
        Err(StoreError::Locked { .. })
    ));
    assert!(generating.exists());
    drop(first);
}

#[test]
fn a_full_disk_is_not_a_reason_to_delete_the_store() {
    let full = StoreError::Sled {
        path: "ws/.mlp/store".into(),
        source: sled::Error::Io(std::io::Error::from_raw_os_error(28)),
    }
    .to_string();
    assert!(full.contains("ws/.mlp/store cannot be written"), "{full}");
    assert!(full.contains("No space left on device"), "{full}");
    assert!(!full.contains("delete"), "{full}");
    let other = StoreError::Sled {
        path: "ws/.mlp/store".into(),
        source: sled::Error::Unsupported("x".into()),
    }
    .to_string();
    assert!(
        other.contains("delete ws/.mlp/store to start afresh"),
        "{other}"
    );
}

#[test]
fn only_costly_successes_are_flushed_at_once() {
    // `rec` ran for 1 s: its record is worth a flush.
    let costly = rec("train", "id1", Outcome::Succeeded, "r1");
    assert!(worth_flushing(&costly));
    let cheap = StageRecord {
        ended_ms: costly.started_ms + DURABLE_AFTER_MS - 1,
        ..costly.clone()
    };
    assert!(!worth_flushing(&cheap));
    let restored = StageRecord {
        attempts: 0,
        ..costly.clone()
    };
    assert!(!worth_flushing(&restored));
    let failed = rec(
        "train",
        "id1",
        Outcome::Failed {
            code: Some(1),
            signal: None,
        },
        "r1",
    );
    assert!(!worth_flushing(&failed));
    // A clock that went backwards is not a long stage.
    let backwards = StageRecord {
        ended_ms: costly.started_ms - 5,
        ..costly
    };
    assert!(!worth_flushing(&backwards));
}

#[test]
fn unflushed_records_survive_a_clean_close() {
    // Cheap records are not flushed by `put_record`; closing the store (as every
    // mlp process does when it ends) writes them out.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state");
    let mut recs = Vec::new();
    {
        let store = SledStore::open(&path).unwrap();
        for i in 0..50 {
            let mut r = rec(
                &format!("s{i}"),
                &format!("id{i}"),
                Outcome::Succeeded,
                "r1",
            );
            r.ended_ms = r.started_ms + 3;
            assert!(!worth_flushing(&r));
            store.put_record(&r).unwrap();
            recs.push(r);
        }
    }
    let store = SledStore::open(&path).unwrap();
    for r in &recs {
        assert_eq!(store.last_success(&r.stage).unwrap().as_ref(), Some(r));
        assert_eq!(store.cached(&r.identity).unwrap().as_ref(), Some(r));
    }
}

#[test]
fn reopens_right_after_a_close() {
    // sled lets go of its lock a moment after the handle is dropped; `decide`'s
    // `never_run` test failed about once in 40 runs on it.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state");
    for i in 0..30 {
        let store = SledStore::open(&path).unwrap();
        store
            .put_record(&rec("s", &format!("id{i}"), Outcome::Succeeded, "r1"))
            .unwrap();
        drop(store);
    }
    assert!(
        SledStore::open(&path)
            .unwrap()
            .cached("id29")
            .unwrap()
            .is_some()
    );
}

#[test]
fn second_open_in_same_process_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state");
    let first = SledStore::open(&path).unwrap();
    match SledStore::open(&path) {
        Err(StoreError::Locked { path: p }) => {
            assert_eq!(p, path);
            let msg = StoreError::Locked { path: p }.to_string();
            assert!(msg.contains(&path.display().to_string()), "{msg}");
        }
        Err(e) => panic!("expected Locked, got {e}"),
        Ok(_) => panic!("expected Locked, got a second handle"),
    }
    drop(first);
    // Once the first handle is gone the store opens again.
    SledStore::open(&path).unwrap();
}

#[test]
fn unknown_schema_version_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state");
    {
        let db = sled::open(&path).unwrap();
        db.open_tree("meta")
            .unwrap()
            .insert(SCHEMA_KEY, b"99".as_slice())
            .unwrap();
        db.flush().unwrap();
    }
    match SledStore::open(&path) {
        Err(e @ StoreError::Schema { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains(&path.display().to_string()), "{msg}");
            assert!(msg.contains("99") && msg.contains("delete"), "{msg}");
        }
        Err(e) => panic!("expected Schema, got {e}"),
        Ok(_) => panic!("expected Schema error"),
    }
}

#[test]
fn corrupt_value_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state");
    {
        let store = SledStore::open(&path).unwrap();
        store.last.insert("train", b"{not json".as_slice()).unwrap();
        store.stat.insert("a", b"\xff".as_slice()).unwrap();
        store.flush().unwrap();
    }
    let store = SledStore::open(&path).unwrap();
    assert!(matches!(
        store.last("train"),
        Err(StoreError::Corrupt { .. })
    ));
    assert!(matches!(
        store.stat_entries(),
        Err(StoreError::Corrupt { .. })
    ));
}

#[test]
fn outcome_json_shape() {
    let v = serde_json::to_value(Outcome::Failed {
        code: Some(1),
        signal: None,
    })
    .unwrap();
    assert_eq!(v, json!({"kind": "failed", "code": 1, "signal": null}));
    let v = serde_json::to_value(Outcome::CheckFailed {
        message: "m".into(),
    })
    .unwrap();
    assert_eq!(v, json!({"kind": "check_failed", "message": "m"}));
    // `metrics` may be absent in older records.
    let mut r = serde_json::to_value(rec("s", "i", Outcome::Succeeded, "r")).unwrap();
    r.as_object_mut().unwrap().remove("metrics");
    let back: StageRecord = serde_json::from_value(r).unwrap();
    assert_eq!(back.metrics, serde_json::Value::Null);
}

/// A store of schema 1 (run records in `runs` itself) opens, its runs read as before, new
/// runs go into trees of their own, and it is marked 2, which a binary of schema 1
/// refuses.
#[test]
fn schema_1_runs_stay_readable_and_new_runs_get_their_own_tree() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state");
    {
        let db = sled::open(&path).unwrap();
        db.open_tree("meta")
            .unwrap()
            .insert(SCHEMA_KEY, b"1".as_slice())
            .unwrap();
        db.open_tree("runs")
            .unwrap()
            .insert(b"00000001", br#"{"n": 1}"#.as_slice())
            .unwrap();
        db.flush().unwrap();
    }
    {
        let store = SledStore::open(&path).unwrap();
        assert_eq!(store.run("00000001").unwrap(), Some(json!({"n": 1})));
        store.put_run_json("00000002", br#"{"n": 2}"#).unwrap();
        store.put_run("00000003", &json!({"n": 3})).unwrap();
        assert_eq!(store.last_run_id().unwrap().as_deref(), Some("00000003"));
        let runs = store.runs().unwrap();
        assert_eq!(
            runs,
            vec![
                ("00000001".to_string(), json!({"n": 1})),
                ("00000002".to_string(), json!({"n": 2})),
                ("00000003".to_string(), json!({"n": 3})),
            ]
        );
    }
    let db = sled::open(&path).unwrap();
    let meta = db.open_tree("meta").unwrap();
    assert_eq!(
        meta.get(SCHEMA_KEY).unwrap().as_deref(),
        Some(SCHEMA_VERSION.to_string().as_bytes())
    );
    // The new runs are listed in `runs` with an empty value, their records apart.
    let runs = db.open_tree("runs").unwrap();
    assert_eq!(runs.get(b"00000002").unwrap().as_deref(), Some(&b""[..]));
    let body = db.open_tree("run:00000002").unwrap();
    assert_eq!(
        body.get(b"record").unwrap().as_deref(),
        Some(&br#"{"n": 2}"#[..])
    );
}
