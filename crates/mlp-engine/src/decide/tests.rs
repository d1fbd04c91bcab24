//! The decision for each reason a stage can be stale, and `mlp status` saying the same.

use std::path::PathBuf;

use super::*;
use crate::inspect::{self, State};
use crate::store::SledStore;
use crate::workspace::Workspace;

struct Ws {
    dir: tempfile::TempDir,
    p: Pipeline,
}

impl Ws {
    fn new(text: &str) -> Ws {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pipeline.mlp"), text).unwrap();
        let p = crate::testing::plan_in(dir.path(), text);
        Ws { dir, p }
    }

    /// The pipeline edited to `text` (same workspace).
    fn replan(&mut self, text: &str) {
        self.write("pipeline.mlp", text);
        self.p = crate::testing::plan_in(self.dir.path(), text);
    }

    fn root(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    fn ws(&self) -> Workspace {
        Workspace::new(self.dir.path())
    }

    fn write(&self, path: &str, text: &str) {
        std::fs::write(self.dir.path().join(path), text).unwrap();
    }

    fn store(&self) -> SledStore {
        let ws = self.ws();
        ws.create().unwrap();
        ws.open_store().unwrap()
    }

    /// Decide `name` with the given upstream statuses (the others undecided).
    fn decide(
        &self,
        store: &SledStore,
        name: &str,
        dry_run: bool,
        force: bool,
        upstream: &[(&str, Status)],
    ) -> Decision {
        let i = self.p.stage(name).unwrap();
        let mut states = StageState::all(&vec![true; self.p.stages.len()], |j| force && j == i);
        for (n, st) in upstream {
            states[self.p.stage(n).unwrap()].status = Some(st.clone());
        }
        let root = self.root();
        let stat_cache = StatCache::new(Vec::new());
        let view = SnapView::new(&self.p, None, &root);
        let decider = Decider {
            root: &root,
            p: &self.p,
            store,
            stat_cache: &stat_cache,
            cache: None,
            snap: &view,
            baseline: &None,
            run_id: "00000002",
            dry_run,
            remote: None,
            pull_only: false,
        };
        decider.decide(i, &states)
    }

    /// Record a success of `name` with its key and outputs as they are now.
    fn succeed(&self, store: &SledStore, name: &str, ended_ms: u64) {
        let i = self.p.stage(name).unwrap();
        let root = self.root();
        let stat_cache = StatCache::new(Vec::new());
        let view = SnapView::new(&self.p, None, &root);
        let decider = Decider {
            root: &root,
            p: &self.p,
            store,
            stat_cache: &stat_cache,
            cache: None,
            snap: &view,
            baseline: &None,
            run_id: "00000001",
            dry_run: false,
            remote: None,
            pull_only: false,
        };
        let states = StageState::all(&vec![true; self.p.stages.len()], |_| false);
        let key = decider.key(i, &states).unwrap();
        let hasher = Hasher::new(&root, &stat_cache);
        let s = &self.p.stages[i];
        let outputs = s
            .outputs
            .iter()
            .map(|o| {
                let c = hasher.path(&o.path).unwrap();
                crate::store::OutputRecord {
                    path: o.path.clone(),
                    digest: c.digest().map_or_else(|| "missing".into(), hex),
                    size: c.size(),
                    is_dir: c.is_dir(),
                }
            })
            .collect();
        store
            .put_record(&StageRecord {
                stage: name.to_string(),
                identity: hex(&key.digest()),
                key: key.to_json(),
                outputs,
                outcome: Outcome::Succeeded,
                run_id: "00000001".into(),
                started_ms: ended_ms,
                ended_ms,
                attempts: 1,
                cpu_ms: 0,
                max_rss_kb: 0,
                metrics: serde_json::Value::Null,
                fallback_used: false,
                checks: checks_digest(s),
                reason: String::new(),
            })
            .unwrap();
    }

    /// What `mlp status` says of `name` (the store must be closed).
    fn status(&self, name: &str) -> State {
        inspect::status(
            &self.ws(),
            &self.p,
            "pipeline.mlp",
            &mut crate::lock::Patience::none(),
        )
        .unwrap()
        .into_iter()
        .find(|s| s.stage == name)
        .unwrap()
        .state
    }
}

fn why(d: &Decision) -> Why {
    match d {
        Decision::Run { why, .. } | Decision::Restore { why, .. } => why.clone(),
        other => panic!("not stale: {other:?}"),
    }
}

const LONG_AGO: u64 = 1_000_000;

const FROZEN_EVERY: &str = r#"
pipeline "f"
stage a {
  out o = "a.txt"
  run "date +%s%N > a.txt"
  every 1s
  frozen
}
"#;

#[test]
fn frozen_wins_over_an_expired_every() {
    let ws = Ws::new(FROZEN_EVERY);
    ws.write("a.txt", "1\n");
    let store = ws.store();
    ws.succeed(&store, "a", now_ms() - LONG_AGO);
    // run and --dry-run
    for dry in [false, true] {
        let d = ws.decide(&store, "a", dry, false, &[]);
        assert!(matches!(d, Decision::Fresh { .. }), "{d:?}");
    }
    assert_eq!(every_due(&ws.p.stages[0], 5), None);
    drop(store);
    // status
    assert_eq!(ws.status("a"), State::Fresh);
}

#[test]
fn a_frozen_stage_restores_what_changed_and_only_force_runs_it() {
    let ws = Ws::new(FROZEN_EVERY);
    ws.write("a.txt", "1\n");
    let store = ws.store();
    ws.succeed(&store, "a", now_ms() - LONG_AGO);
    ws.write("a.txt", "edited\n");
    let d = ws.decide(&store, "a", true, false, &[]);
    assert!(matches!(d, Decision::Restore { .. }), "{d:?}");
    assert_eq!(why(&d).status_text(), "output `a.txt` was changed by hand");
    let d = ws.decide(&store, "a", true, true, &[]);
    assert_eq!(why(&d), Why::Forced);
    drop(store);
    assert_eq!(
        ws.status("a"),
        State::Stale {
            reason: "output `a.txt` was changed by hand".into()
        }
    );
}

#[test]
fn every_makes_a_stage_stale_once_expired() {
    let ws = Ws::new(&FROZEN_EVERY.replace("  frozen\n", ""));
    ws.write("a.txt", "1\n");
    let store = ws.store();
    ws.succeed(&store, "a", now_ms());
    assert!(matches!(
        ws.decide(&store, "a", false, false, &[]),
        Decision::Fresh { .. }
    ));
    drop(store);
    let store = ws.store();
    ws.succeed(&store, "a", now_ms() - LONG_AGO);
    let w = why(&ws.decide(&store, "a", true, false, &[]));
    assert_eq!(w, Why::Expired(1000));
    assert_eq!(
        w.run_text(),
        "`every 1.0 s` has passed since its last success"
    );
    drop(store);
    assert_eq!(
        ws.status("a"),
        State::Stale {
            reason: "`every 1.0 s` has expired".into()
        }
    );
}

const CHAIN: &str = r#"
pipeline "c"
stage a {
  in "in.txt"
  out o = "a.txt"
  run "cp in.txt a.txt"
}
stage b {
  in a.o
  out o = "b.txt"
  run "cp a.txt b.txt"
}
"#;

fn chain_ran() -> (Ws, SledStore) {
    let ws = Ws::new(CHAIN);
    ws.write("in.txt", "1\n");
    ws.write("a.txt", "1\n");
    ws.write("b.txt", "1\n");
    let store = ws.store();
    ws.succeed(&store, "a", now_ms());
    ws.succeed(&store, "b", now_ms());
    (ws, store)
}

#[test]
fn never_run() {
    let ws = Ws::new(CHAIN);
    ws.write("in.txt", "1\n");
    let store = ws.store();
    let w = why(&ws.decide(&store, "a", true, false, &[]));
    assert_eq!(w, Why::NeverRun);
    drop(store);
    assert_eq!(ws.status("a"), State::NeverRun);
}

#[test]
fn fresh_when_nothing_changed() {
    let (ws, store) = chain_ran();
    let d = ws.decide(&store, "b", false, false, &[("a", Status::Fresh)]);
    assert!(matches!(d, Decision::Fresh { .. }), "{d:?}");
    drop(store);
    assert_eq!(ws.status("a"), State::Fresh);
    assert_eq!(ws.status("b"), State::Fresh);
}

#[test]
fn an_input_changed() {
    let (ws, store) = chain_ran();
    ws.write("in.txt", "2\n");
    let w = why(&ws.decide(&store, "a", true, false, &[]));
    assert_eq!(w, Why::Changed("input `in.txt` changed".into()));
    // Downstream: an upstream that would run.
    let running = Status::WouldRun {
        reason: w.run_text(),
    };
    let d = ws.decide(&store, "b", true, false, &[("a", running)]);
    assert_eq!(why(&d).run_text(), "upstream `a` would run");
    drop(store);
    assert_eq!(
        ws.status("a"),
        State::Stale {
            reason: "input `in.txt` changed".into()
        }
    );
    assert_eq!(
        ws.status("b"),
        State::Stale {
            reason: "upstream `a` is not up to date".into()
        }
    );
}

#[test]
fn an_output_is_missing_and_comes_back_from_the_cache() {
    let (ws, store) = chain_ran();
    std::fs::remove_file(ws.dir.path().join("b.txt")).unwrap();
    let d = ws.decide(&store, "b", true, false, &[("a", Status::Fresh)]);
    assert!(matches!(d, Decision::Restore { .. }), "{d:?}");
    drop(store);
    assert_eq!(
        ws.status("b"),
        State::Stale {
            reason: "output `b.txt` is missing".into()
        }
    );
}

#[test]
fn forced_and_always() {
    let (ws, store) = chain_ran();
    let w = why(&ws.decide(&store, "a", true, true, &[]));
    assert_eq!(w.run_text(), "forced");
    drop(store);
    let ws2 = Ws::new(&CHAIN.replace(
        "  run \"cp in.txt a.txt\"\n",
        "  run \"cp in.txt a.txt\"\n  always\n",
    ));
    ws2.write("in.txt", "1\n");
    ws2.write("a.txt", "1\n");
    let store = ws2.store();
    ws2.succeed(&store, "a", now_ms());
    let w = why(&ws2.decide(&store, "a", true, false, &[]));
    assert_eq!(
        (w.run_text(), w.status_text()),
        ("`always`".into(), "`always`: it runs every time".into())
    );
}

#[test]
fn a_missing_input_fails_the_decision() {
    let ws = Ws::new(CHAIN);
    let store = ws.store();
    match ws.decide(&store, "a", false, false, &[]) {
        Decision::Fail(e) => {
            assert_eq!(e.kind(), FailureKind::MissingInput);
            assert_eq!(
                e.to_string(),
                "input `in.txt` does not exist, and no stage declares it as an output"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_changed_gate_judges_the_outputs_again() {
    let text = r#"
pipeline "g"
stage evaluate {
  metrics eval = "eval.json"
  run     "x"
  gate    eval.auc >= 0.5
}
"#;
    let mut ws = Ws::new(text);
    ws.write("eval.json", "{\"auc\": 0.7}");
    let store = ws.store();
    ws.succeed(&store, "evaluate", now_ms());
    assert!(matches!(
        ws.decide(&store, "evaluate", true, false, &[]),
        Decision::Fresh { .. }
    ));
    drop(store);
    ws.replan(&text.replace(">= 0.5", ">= 0.9"));
    let store = ws.store();
    let d = ws.decide(&store, "evaluate", true, false, &[]);
    assert_eq!(why(&d), Why::Judge);
    drop(store);
    assert_eq!(
        ws.status("evaluate"),
        State::Stale {
            reason: "its checks or gates changed: its outputs are judged again".into()
        }
    );
}

#[test]
fn a_frozen_stage_below_one_that_would_run_stays_fresh() {
    let ws = Ws::new(&CHAIN.replace(
        "  run \"cp a.txt b.txt\"\n",
        "  run \"cp a.txt b.txt\"\n  frozen\n",
    ));
    ws.write("in.txt", "1\n");
    ws.write("a.txt", "1\n");
    ws.write("b.txt", "1\n");
    let store = ws.store();
    ws.succeed(&store, "a", now_ms());
    ws.succeed(&store, "b", now_ms());
    ws.write("in.txt", "2\n");
    let running = Status::WouldRun {
        reason: "input `in.txt` changed".into(),
    };
    let d = ws.decide(&store, "b", true, false, &[("a", running)]);
    assert!(matches!(d, Decision::Fresh { .. }), "{d:?}");
    drop(store);
    assert_eq!(ws.status("b"), State::Fresh);
}
