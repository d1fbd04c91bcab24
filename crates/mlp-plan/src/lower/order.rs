//! Pass 7, the order: a topological order by Kahn's algorithm (iterative: a chain of
//! 100,000 stages needs no deep stack); only when it cannot order every stage is there a
//! cycle, and only then are the cycles found (Tarjan) and each reported, every stage of it
//! labelled.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::Lowerer;
use crate::codes::Code;
use crate::diag::Diagnostic;
use crate::model::{Stage, StageId};

impl Lowerer {
    /// A topological order, or `None` after reporting every cycle.
    pub(super) fn order(&self, stages: &[Stage]) -> Option<Vec<StageId>> {
        let order = topological(stages);
        if order.len() == stages.len() {
            return Some(order);
        }
        self.cycles(stages);
        None
    }

    /// Report every dependency cycle (there is at least one: Kahn's algorithm left stages
    /// unordered).
    fn cycles(&self, stages: &[Stage]) {
        let g = crate::graph::build(stages);
        // Kosaraju's, not Tarjan's: petgraph's Tarjan recurses once per stage of a cycle.
        let mut cycles: Vec<Vec<usize>> = petgraph::algo::kosaraju_scc(&g)
            .into_iter()
            .filter(|scc| scc.len() > 1 || g.contains_edge(scc[0], scc[0]))
            .map(|scc| {
                let mut ids: Vec<usize> = scc.iter().map(|n| g[*n]).collect();
                ids.sort_unstable();
                ids
            })
            .collect();
        cycles.sort_unstable();
        for ids in cycles {
            let names: Vec<String> = ids
                .iter()
                .map(|&i| format!("`{}`", stages[i].name))
                .collect();
            let first = &stages[ids[0]].origin;
            // Each stage of the cycle, with the stages of the cycle it needs.
            let needs = |i: usize| {
                let up: Vec<String> = stages[i]
                    .deps
                    .iter()
                    .filter(|dd| ids.binary_search(&dd.stage).is_ok())
                    .map(|dd| format!("`{}`", stages[dd.stage].name))
                    .collect();
                if up.is_empty() {
                    "in the cycle".to_string()
                } else {
                    format!("needs {}", up.join(", "))
                }
            };
            let mut d = Diagnostic::new(
                Code::DependencyCycle,
                format!("dependency cycle between {}", names.join(", ")),
            )
            .at(first.file, first.span, needs(ids[0]));
            for &i in &ids[1..] {
                let o = &stages[i].origin;
                if o.file == first.file {
                    d = d.also(o.span, needs(i));
                }
            }
            self.err(d.help("a stage cannot depend, directly or not, on its own outputs: break one of the edges"));
        }
    }
}

/// Kahn's algorithm, taking ready stages in source order: a stable, readable order.
fn topological(stages: &[Stage]) -> Vec<StageId> {
    let mut indeg: Vec<usize> = stages.iter().map(|s| s.deps.len()).collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); stages.len()];
    for (i, s) in stages.iter().enumerate() {
        for d in &s.deps {
            dependents[d.stage].push(i);
        }
    }
    let mut ready: BinaryHeap<Reverse<usize>> = (0..stages.len())
        .filter(|&i| indeg[i] == 0)
        .map(Reverse)
        .collect();
    let mut order = Vec::with_capacity(stages.len());
    while let Some(Reverse(i)) = ready.pop() {
        order.push(i);
        for &j in &dependents[i] {
            indeg[j] -= 1;
            if indeg[j] == 0 {
                ready.push(Reverse(j));
            }
        }
    }
    order
}
