//! The queue driven by a fake runner (as ninja tests its `Plan` with a fake
//! `CommandRunner`): no process, no store, no thread.

use std::collections::HashMap;

use super::*;

fn plan(text: &str) -> Pipeline {
    let dir = tempfile::tempdir().unwrap();
    mlp_plan::load_str(
        "pipeline.mlp",
        text,
        dir.path(),
        &mlp_plan::Options {
            overrides: Vec::new(),
            ..Default::default()
        },
    )
    .unwrap_or_else(|d| panic!("{d:?}"))
    .pipeline
}

fn cpus(n: u64) -> Tokens {
    Tokens {
        cpu: n,
        mem: 100,
        gpu: 0,
    }
}

fn one_cpu(_: StageId) -> Tokens {
    Tokens {
        cpu: 1,
        mem: 0,
        gpu: 0,
    }
}

#[derive(Debug, PartialEq, Eq, Clone)]
enum Step {
    Start(String),
    End(String),
}

/// A fake runner: every evaluable stage must run; what started ends first-in first-out.
/// Checks on the way that tokens are never oversubscribed.
struct Fake<'a> {
    p: &'a Pipeline,
    q: Queue,
    steps: Vec<Step>,
    most_running: usize,
}

impl<'a> Fake<'a> {
    fn new(p: &'a Pipeline, durations: &[(&str, u64)], total: Tokens) -> Fake<'a> {
        let by_name: HashMap<&str, u64> = durations.iter().copied().collect();
        let duration = |i: StageId| by_name.get(p.stages[i].name.as_str()).copied().unwrap_or(1);
        let selected = vec![true; p.stages.len()];
        Fake {
            p,
            q: Queue::new(p, &selected, duration, total),
            steps: Vec::new(),
            most_running: 0,
        }
    }

    fn name(&self, i: StageId) -> String {
        self.p.stages[i].name.clone()
    }

    fn run(mut self, need: impl Fn(StageId) -> Tokens) -> Self {
        let mut running: Vec<StageId> = Vec::new();
        loop {
            for i in self.q.take_evaluable() {
                self.q.push_ready(i);
            }
            while let Some(h) = self.q.next(&need, |_| false) {
                let Handout::Start(i) = h else {
                    panic!("dropped {h:?} while not stopping")
                };
                let free = self.q.free();
                assert!(free.cpu <= self.q.total().cpu && free.mem <= self.q.total().mem);
                self.steps.push(Step::Start(self.name(i)));
                running.push(i);
            }
            self.most_running = self.most_running.max(running.len());
            assert_eq!(self.q.running(), running.len());
            if running.is_empty() {
                assert!(!self.q.has_evaluable() && self.q.ready_is_empty());
                return self;
            }
            let i = running.remove(0);
            self.q.release(i);
            self.q.finished(i);
            self.steps.push(Step::End(self.name(i)));
        }
    }

    fn starts(&self) -> Vec<String> {
        self.steps
            .iter()
            .filter_map(|s| match s {
                Step::Start(n) => Some(n.clone()),
                Step::End(_) => None,
            })
            .collect()
    }

    fn position(&self, step: &Step) -> usize {
        self.steps
            .iter()
            .position(|s| s == step)
            .unwrap_or_else(|| panic!("{step:?} never happened: {:?}", self.steps))
    }
}

const CHAIN: &str = r#"
pipeline "chain"
stage a { out o = "a.txt" run "x" }
stage b { in a.o out o = "b.txt" run "x" }
stage c { in b.o out o = "c.txt" run "x" }
"#;

#[test]
fn a_stage_starts_only_after_its_upstream_ended() {
    let p = plan(CHAIN);
    let f = Fake::new(&p, &[], cpus(4)).run(one_cpu);
    assert_eq!(f.starts(), ["a", "b", "c"]);
    for (up, down) in [("a", "b"), ("b", "c")] {
        assert!(
            f.position(&Step::End(up.into())) < f.position(&Step::Start(down.into())),
            "{:?}",
            f.steps
        );
    }
    assert_eq!(f.most_running, 1);
}

fn wide(n: usize) -> Pipeline {
    let mut text = String::from("pipeline \"wide\"\n");
    for i in 0..n {
        text.push_str(&format!(
            "stage s{i} {{ out o = \"s{i}.txt\" run \"x\" }}\n"
        ));
    }
    plan(&text)
}

#[test]
fn the_cpu_tokens_are_never_oversubscribed() {
    let p = wide(10);
    let f = Fake::new(&p, &[], cpus(3)).run(one_cpu);
    assert_eq!(f.starts().len(), 10);
    assert_eq!(f.most_running, 3);
}

#[test]
fn equals_start_in_pipeline_order() {
    let p = wide(5);
    let f = Fake::new(&p, &[], cpus(1)).run(one_cpu);
    assert_eq!(f.starts(), ["s0", "s1", "s2", "s3", "s4"]);
}

#[test]
fn the_critical_path_starts_first() {
    let p = plan(
        r#"
pipeline "cp"
stage short { out o = "short.txt" run "x" }
stage x1 { out o = "x1.txt" run "x" }
stage x2 { in x1.o out o = "x2.txt" run "x" }
stage x3 { in x2.o out o = "x3.txt" run "x" }
"#,
    );
    // Equal durations: the longer chain first.
    let f = Fake::new(&p, &[], cpus(1)).run(one_cpu);
    assert_eq!(f.starts()[0], "x1");
    // A recorded duration longer than the whole chain: that stage first.
    let f = Fake::new(&p, &[("short", 100)], cpus(1)).run(one_cpu);
    assert_eq!(f.starts()[0], "short");
}

#[test]
fn a_stage_that_does_not_fit_is_passed_over_not_waited_for() {
    let p = wide(4);
    // s0 and s1 each need 60 of the 100 memory tokens; s2 and s3 need none.
    let need = |i: StageId| Tokens {
        cpu: 1,
        mem: if i < 2 { 60 } else { 0 },
        gpu: 0,
    };
    let f = Fake::new(&p, &[], cpus(4)).run(need);
    // s1 does not fit beside s0: s2 and s3 start instead, s1 after s0 ended.
    assert_eq!(f.starts(), ["s0", "s2", "s3", "s1"]);
    assert!(f.position(&Step::End("s0".into())) < f.position(&Step::Start("s1".into())));
}

#[test]
fn a_stopping_run_drops_what_is_ready() {
    let p = wide(3);
    let mut q = Queue::new(&p, &[true; 3], |_| 1, cpus(1));
    for i in q.take_evaluable() {
        q.push_ready(i);
    }
    assert_eq!(q.next(one_cpu, |_| false), Some(Handout::Start(0)));
    // The one cpu is taken: a round ends without handing out more.
    assert_eq!(q.next(one_cpu, |_| false), None);
    assert_eq!(q.next(one_cpu, |_| true), Some(Handout::Drop(1)));
    assert_eq!(q.next(one_cpu, |_| true), Some(Handout::Drop(2)));
    assert_eq!(q.next(one_cpu, |_| true), None);
    q.release(0);
    assert_eq!(q.running(), 0);
    assert_eq!(q.free(), cpus(1));
}

#[test]
fn unselected_stages_are_not_waited_for() {
    let p = plan(CHAIN);
    // Only b and c: b does not wait for a.
    let mut q = Queue::new(&p, &[false, true, true], |_| 1, cpus(2));
    let b = p.stage("b").unwrap();
    let c = p.stage("c").unwrap();
    assert_eq!(q.take_evaluable(), [b]);
    q.finished(b);
    assert_eq!(q.take_evaluable(), [c]);
}
