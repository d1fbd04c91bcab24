//! The ready queue and the resource tokens: a pure data structure (no processes, no
//! store), tested alone with a fake runner as ninja tests its `Plan` and cargo its
//! `DependencyQueue`.
//!
//! A stage becomes *evaluable* when every selected upstream stage has finished; the
//! coordinator decides it and, when it must run, makes it *ready*. Ready stages are handed
//! out highest critical path first (a stage's recorded duration plus the longest chain of
//! recorded durations below it), earlier in the pipeline's order among equals, while the
//! `cpu`/`mem`/`gpu` tokens last: they are never oversubscribed. A stage that does not fit
//! is passed over (up to 64 of them), so that one big stage does not idle the machine.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use mlp_plan::{ExecutorKind, Pipeline, Stage, StageId};

use crate::slurm;

/// Tokens the scheduler hands out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tokens {
    pub cpu: u64,
    pub mem: u64,
    pub gpu: u64,
}

impl Tokens {
    fn fits_in(&self, free: &Tokens) -> bool {
        self.cpu <= free.cpu && self.mem <= free.mem && self.gpu <= free.gpu
    }
}

/// This machine's tokens: `jobs` cpu slots, its memory, its GPUs (`MLP_GPUS` overrides
/// the count of `/dev/nvidiaN`).
pub fn machine_tokens(jobs: usize) -> Tokens {
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(u64::MAX, |kb| kb * 1024);
    let gpu = std::env::var("MLP_GPUS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::fs::read_dir("/dev")
                .map(|d| {
                    d.filter_map(Result::ok)
                        .filter(|e| {
                            let n = e.file_name();
                            let n = n.to_string_lossy();
                            n.strip_prefix("nvidia").is_some_and(|r| {
                                !r.is_empty() && r.chars().all(|c| c.is_ascii_digit())
                            })
                        })
                        .count() as u64
                })
                .unwrap_or(0)
        });
    Tokens {
        cpu: jobs as u64,
        mem,
        gpu,
    }
}

/// What a stage needs from the tokens. A Slurm or Ray job takes one job slot here, and
/// the cluster's resources there.
pub fn needs(s: &Stage, total: Tokens, executor: Option<ExecutorKind>) -> Tokens {
    if slurm::kind_of(s, executor) != ExecutorKind::Local {
        return Tokens {
            cpu: 1,
            mem: 0,
            gpu: 0,
        };
    }
    Tokens {
        cpu: u64::from(s.resources.cpu.max(1)).min(total.cpu),
        mem: s.resources.mem_bytes,
        gpu: u64::from(s.resources.gpu),
    }
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Ready {
    priority: u64,
    /// Earlier in the order first among equals.
    order: Reverse<usize>,
    stage: StageId,
}

/// What [`Queue::next`] hands out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handout {
    /// Start it: its tokens are taken.
    Start(StageId),
    /// The run is stopping: it will not run.
    Drop(StageId),
}

pub struct Queue {
    /// Per stage: the selected stages that wait for it.
    dependents: Vec<Vec<StageId>>,
    /// Per stage: how many selected upstream stages have not finished.
    remaining: Vec<usize>,
    priority: Vec<u64>,
    position: Vec<usize>,
    evaluable: Vec<StageId>,
    ready: BinaryHeap<Ready>,
    /// Passed over in this round of hand-outs (they did not fit).
    passed: Vec<Ready>,
    total: Tokens,
    free: Tokens,
    /// Per stage: the tokens it holds while it runs.
    holding: Vec<Option<Tokens>>,
    running: usize,
}

impl Queue {
    /// A queue over the selected stages; `duration` is a stage's recorded duration (ms).
    pub fn new(
        p: &Pipeline,
        selected: &[bool],
        duration: impl Fn(StageId) -> u64,
        total: Tokens,
    ) -> Queue {
        let n = p.stages.len();
        let mut dependents: Vec<Vec<StageId>> = vec![Vec::new(); n];
        let mut remaining = vec![0usize; n];
        for (i, s) in p.stages.iter().enumerate() {
            if !selected[i] {
                continue;
            }
            for d in &s.deps {
                if selected[d.stage] {
                    dependents[d.stage].push(i);
                    remaining[i] += 1;
                }
            }
        }
        // Critical path first: own duration plus the longest chain below.
        let mut priority = vec![0u64; n];
        for &i in p.order.iter().rev() {
            let below = dependents[i]
                .iter()
                .map(|&j| priority[j])
                .max()
                .unwrap_or(0);
            priority[i] = duration(i).max(1) + below;
        }
        let mut position = vec![0; n];
        for (k, &i) in p.order.iter().enumerate() {
            position[i] = k;
        }
        let evaluable = p
            .order
            .iter()
            .copied()
            .filter(|&i| selected[i] && remaining[i] == 0)
            .collect();
        Queue {
            dependents,
            remaining,
            priority,
            position,
            evaluable,
            ready: BinaryHeap::new(),
            passed: Vec::new(),
            total,
            free: total,
            holding: vec![None; n],
            running: 0,
        }
    }

    /// The stages whose upstream has finished since the last call (in order).
    pub fn take_evaluable(&mut self) -> Vec<StageId> {
        std::mem::take(&mut self.evaluable)
    }

    pub fn has_evaluable(&self) -> bool {
        !self.evaluable.is_empty()
    }

    /// A decided stage must run: queue it.
    pub fn push_ready(&mut self, i: StageId) {
        self.ready.push(Ready {
            priority: self.priority[i],
            order: Reverse(self.position[i]),
            stage: i,
        });
    }

    pub fn ready_is_empty(&self) -> bool {
        self.ready.is_empty()
    }

    pub fn running(&self) -> usize {
        self.running
    }

    /// The next stage to start (or to drop, when `stopping` says so), while the tokens
    /// last; `None` ends a round of hand-outs.
    pub fn next(
        &mut self,
        need: impl Fn(StageId) -> Tokens,
        stopping: impl Fn(StageId) -> bool,
    ) -> Option<Handout> {
        while let Some(r) = self.ready.pop() {
            if stopping(r.stage) {
                return Some(Handout::Drop(r.stage));
            }
            let need = need(r.stage);
            if need.fits_in(&self.free) {
                self.free.cpu -= need.cpu;
                self.free.mem -= need.mem;
                self.free.gpu -= need.gpu;
                self.holding[r.stage] = Some(need);
                self.running += 1;
                return Some(Handout::Start(r.stage));
            }
            self.passed.push(r);
            if self.passed.len() >= 64 || self.free.cpu == 0 {
                break;
            }
        }
        self.end_round();
        None
    }

    /// Put back what this round passed over.
    pub fn end_round(&mut self) {
        self.ready.extend(self.passed.drain(..));
    }

    /// A started stage stopped running: its tokens are free again.
    pub fn release(&mut self, i: StageId) {
        if let Some(t) = self.holding[i].take() {
            self.free.cpu += t.cpu;
            self.free.mem += t.mem;
            self.free.gpu += t.gpu;
            self.running -= 1;
        }
    }

    /// A stage has its final status: the stages waiting only for it become evaluable.
    pub fn finished(&mut self, i: StageId) {
        for &j in &self.dependents[i] {
            self.remaining[j] -= 1;
            if self.remaining[j] == 0 {
                self.evaluable.push(j);
            }
        }
    }

    /// The tokens free now.
    #[cfg(test)]
    pub fn free(&self) -> Tokens {
        self.free
    }

    pub fn total(&self) -> Tokens {
        self.total
    }
}

#[cfg(test)]
mod tests;
