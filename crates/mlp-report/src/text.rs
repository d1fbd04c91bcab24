//! `mlp runs` as text: one line a run, newest first, with the metric columns and their
//! change against the baseline, the cost totals, and which run was best.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::model::{Report, Run};
use crate::table::{self, Columns, human_ms, num, signed, when};

/// The table `mlp runs` prints (the runs of `r`, newest first), and the notes under it.
pub fn runs_table(r: &Report) -> String {
    let cols = Columns::of(r);
    let mut header: Vec<String> = vec![
        "run".into(),
        "started".into(),
        "took".into(),
        "result".into(),
    ];
    header.extend(cols.metrics.iter().map(|m| m.label.clone()));
    header.extend(cols.costs.iter().map(|c| c.label.to_string()));
    header.push("commit".into());
    header.push("stages".into());
    let mut rows: Vec<Vec<String>> = Vec::new();
    for run in r.runs.iter().rev() {
        let is_base = r.baseline.as_ref().is_some_and(|b| b.id == run.id);
        let mut row = vec![
            format!("{}{}", run.id, if is_base { "*" } else { " " }),
            when(run.started_ms),
            human_ms(run.duration_ms()),
            run.outcome().to_string(),
        ];
        for m in &cols.metrics {
            row.push(match run.metrics.get(&m.key) {
                None => "-".into(),
                Some(v) => match table::delta(r, run, &m.key) {
                    Some(d) => format!("{} ({})", num(*v), signed(d)),
                    None => num(*v),
                },
            });
        }
        for c in &cols.costs {
            row.push(c.total(run).map_or("-".into(), num));
        }
        row.push(run.commit.as_ref().map_or("-".into(), |(c, dirty)| {
            format!("{c}{}", if *dirty { "+" } else { "" })
        }));
        row.push(counts(run));
        rows.push(row);
    }
    let n = header.len();
    let mut width = vec![0; n];
    for row in std::iter::once(&header).chain(&rows) {
        for (i, c) in row.iter().enumerate() {
            width[i] = width[i].max(c.chars().count());
        }
    }
    // Numbers right-aligned (the run id keeps its baseline mark on the right).
    let right = |i: usize| i == 0 || i == 2 || (4..n - 2).contains(&i);
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (i, c) in row.iter().enumerate() {
            let pad = width[i] - c.chars().count();
            if i > 0 {
                line.push_str("  ");
            }
            if i == n - 1 {
                line.push_str(c);
            } else if right(i) {
                // The header of the id column lines up with the digits, not the mark.
                let c = if i == 0 && std::ptr::eq(row, &header) {
                    format!("{c} ")
                } else {
                    c.clone()
                };
                let pad = width[i].saturating_sub(c.chars().count());
                line.push_str(&" ".repeat(pad));
                line.push_str(&c);
            } else {
                line.push_str(c);
                line.push_str(&" ".repeat(pad));
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

/// The lines under the table: the baseline mark, the best run of each metric a gate
/// gives a direction, and the failed gates of the runs shown.
pub fn notes(r: &Report) -> String {
    let cols = Columns::of(r);
    let mut out = String::new();
    if let Some(b) = &r.baseline {
        let _ = writeln!(
            out,
            "* the baseline (run {}); (±x) is the change against it",
            b.id
        );
    }
    for m in &cols.metrics {
        if let Some((run, v)) = table::best(r, m) {
            let against = match table::delta(r, run, &m.key) {
                Some(d) => format!(", {} against the baseline", signed(d)),
                None if r.baseline.as_ref().is_some_and(|b| b.id == run.id) => {
                    ", the baseline".into()
                }
                None => String::new(),
            };
            let _ = writeln!(
                out,
                "best {}: run {} ({}{against}; {} is better)",
                m.label,
                run.id,
                num(v),
                if m.higher_is_better == Some(true) {
                    "higher"
                } else {
                    "lower"
                }
            );
        }
    }
    out
}

/// `5 ran, 2 fresh`.
pub fn counts(run: &Run) -> String {
    let mut c: BTreeMap<&str, usize> = BTreeMap::new();
    for s in &run.stages {
        if s.status != "not_selected" {
            *c.entry(s.status.as_str()).or_default() += 1;
        }
    }
    c.iter()
        .map(|(k, v)| format!("{v} {}", k.replace('_', " ")))
        .collect::<Vec<_>>()
        .join(", ")
}
