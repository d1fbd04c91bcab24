//! The last run as pictures: a Gantt chart of its stages with the critical path, and the
//! DAG with each stage coloured (and labelled) by its status.

use std::fmt::Write as _;

use crate::model::{DagNode, Run, StageRun};
use crate::svg::{self, Axis, Scale, esc, round, tick};
use crate::table::human_ms;

/// The stages that made the run as long as it was: from the stage that ended last, back
/// through the need that ended last, while there is one that ran in this run.
pub fn critical_path(run: &Run, dag: &[DagNode]) -> Vec<String> {
    let timed = |name: &str| -> Option<&StageRun> {
        run.stages
            .iter()
            .find(|s| s.name == name && s.ended_ms.is_some() && s.started_ms.is_some())
    };
    let index = |name: &str| dag.iter().position(|n| n.name == name);
    let mut cur = run
        .stages
        .iter()
        .filter(|s| s.started_ms.is_some())
        .max_by_key(|s| (s.ended_ms.unwrap_or(0), std::cmp::Reverse(s.name.clone())));
    let mut path = Vec::new();
    while let Some(s) = cur {
        path.push(s.name.clone());
        cur = index(&s.name).and_then(|i| {
            dag[i]
                .deps
                .iter()
                .filter_map(|d| timed(&dag.get(*d)?.name))
                .filter(|p| p.ended_ms <= s.started_ms.map(|t| t + 50))
                .max_by_key(|p| (p.ended_ms.unwrap_or(0), std::cmp::Reverse(p.name.clone())))
        });
    }
    path.reverse();
    path
}

fn status_label(s: &str) -> String {
    s.replace('_', " ")
}

/// A Gantt chart of the run: one row per stage in pipeline order.
pub fn gantt(run: &Run, dag: &[DagNode], standalone: bool) -> String {
    let rows: Vec<&StageRun> = run
        .stages
        .iter()
        .filter(|s| s.status != "not_selected")
        .collect();
    let crit = critical_path(run, dag);
    let t0 = rows
        .iter()
        .filter_map(|s| s.started_ms)
        .min()
        .unwrap_or(run.started_ms)
        .min(run.started_ms.max(1));
    let end = rows
        .iter()
        .filter_map(|s| s.ended_ms)
        .max()
        .unwrap_or(run.ended_ms)
        .max(run.ended_ms);
    let span_s = end.saturating_sub(t0) as f64 / 1000.0;
    let name_w = rows
        .iter()
        .map(|s| s.name.chars().count())
        .max()
        .unwrap_or(4)
        .clamp(6, 28) as f64
        * 7.5
        + 16.0;
    let (w, row_h) = (900.0, 22.0);
    let h = 50.0 + rows.len() as f64 * row_h + 64.0;
    let (xt, xlo, xhi) = svg::ticks(0.0, span_s.max(0.001), 8);
    let x = Scale {
        lo: xlo,
        hi: xhi,
        from: name_w,
        to: w - 110.0,
    };
    let plot_bottom = 50.0 + rows.len() as f64 * row_h;
    let title = format!("run {}: timeline", run.id);
    let mut o = String::new();
    svg::open(
        &mut o,
        w,
        h,
        &format!("data-chart=\"timeline\" data-stages=\"{}\"", rows.len()),
        &title,
        standalone,
    );
    let _ = write!(
        o,
        "<text class=\"title\" x=\"8\" y=\"18\">{}</text>",
        esc(&title)
    );
    let _ = write!(
        o,
        "<text x=\"8\" y=\"34\" class=\"muted\">outlined: the critical path ({})</text>",
        esc(&crit.join(" → "))
    );
    let xt: Vec<(f64, String)> = xt.into_iter().map(|v| (v, tick(v))).collect();
    let y = Scale {
        lo: 0.0,
        hi: 1.0,
        from: plot_bottom,
        to: 44.0,
    };
    svg::axes(
        &mut o,
        &x,
        &y,
        &Axis {
            label: "seconds since the run started",
            ticks: &xt,
        },
        &Axis {
            label: "",
            ticks: &[],
        },
    );
    for (i, s) in rows.iter().enumerate() {
        let top = 50.0 + i as f64 * row_h;
        let _ = write!(
            o,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            name_w - 8.0,
            top + 15.0,
            esc(&s.name)
        );
        let on_crit = crit.contains(&s.name);
        let class = format!(
            "st-{}{}",
            esc(&s.status),
            if on_crit { " crit" } else { "" }
        );
        let mut tip = format!("{}: {}", s.name, status_label(&s.status));
        if let Some(d) = s.duration_ms() {
            tip.push_str(&format!(", {}", human_ms(d)));
        }
        if let Some(r) = &s.reason {
            tip.push_str(&format!(" — {r}"));
        }
        match (s.started_ms, s.ended_ms) {
            (Some(a), Some(b)) => {
                let x0 = x.at(a.saturating_sub(t0) as f64 / 1000.0);
                let x1 = x.at(b.saturating_sub(t0) as f64 / 1000.0).max(x0 + 4.0);
                let _ = write!(
                    o,
                    "<rect class=\"{class}\" data-stage=\"{}\" x=\"{x0}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"2\"><title>{}</title></rect><text x=\"{}\" y=\"{}\" class=\"muted\">{}</text>",
                    esc(&s.name),
                    top + 3.0,
                    round(x1 - x0),
                    row_h - 6.0,
                    esc(&tip),
                    x1 + 5.0,
                    top + 15.0,
                    esc(&format!(
                        "{} {}",
                        status_label(&s.status),
                        s.duration_ms().map(human_ms).unwrap_or_default()
                    ))
                );
            }
            _ => {
                let _ = write!(
                    o,
                    "<rect class=\"st-{}\" data-stage=\"{}\" x=\"{}\" y=\"{}\" width=\"8\" height=\"{}\" rx=\"2\"><title>{}</title></rect><text x=\"{}\" y=\"{}\" class=\"muted\">{}</text>",
                    esc(&s.status),
                    esc(&s.name),
                    x.from,
                    top + 3.0,
                    row_h - 6.0,
                    esc(&tip),
                    x.from + 13.0,
                    top + 15.0,
                    esc(&status_label(&s.status))
                );
            }
        }
    }
    legend(&mut o, 8.0, h - 10.0);
    o.push_str("</svg>");
    o
}

/// The status colours, in words.
fn legend(o: &mut String, x0: f64, y: f64) {
    let mut x = x0;
    for st in [
        "ran",
        "restored",
        "fresh",
        "failed",
        "skipped",
        "interrupted",
    ] {
        let _ = write!(
            o,
            "<rect class=\"st-{st}\" x=\"{x}\" y=\"{}\" width=\"12\" height=\"12\" rx=\"2\"/><text x=\"{}\" y=\"{y}\">{st}</text>",
            y - 10.0,
            x + 16.0
        );
        x += 24.0 + st.len() as f64 * 7.5;
    }
    let _ = write!(
        o,
        "<rect class=\"crit\" fill=\"none\" x=\"{x}\" y=\"{}\" width=\"12\" height=\"12\" rx=\"2\"/><text x=\"{}\" y=\"{y}\">critical path</text>",
        y - 10.0,
        x + 16.0
    );
}

/// The DAG left to right: a column per depth, each stage a box in its status's colour with
/// the status written under its name.
pub fn dag(run: Option<&Run>, dag: &[DagNode], standalone: bool) -> String {
    let n = dag.len();
    let mut depth = vec![0usize; n];
    // `dag` is in pipeline order, a topological order: needs come first.
    for i in 0..n {
        depth[i] = dag[i]
            .deps
            .iter()
            .filter(|d| **d < i)
            .map(|d| depth[*d] + 1)
            .max()
            .unwrap_or(0);
    }
    let cols = depth.iter().max().map_or(0, |m| m + 1);
    // Rows within a column: by the mean row of the stages each one needs (one barycentre
    // pass, column by column), so that edges mostly run straight.
    let mut row = vec![0usize; n];
    let mut per_col = vec![0usize; cols];
    for (c, count) in per_col.iter_mut().enumerate() {
        let mut members: Vec<(f64, usize)> = (0..n)
            .filter(|&i| depth[i] == c)
            .map(|i| {
                let deps: Vec<f64> = dag[i]
                    .deps
                    .iter()
                    .filter(|d| **d < i)
                    .map(|d| row[*d] as f64)
                    .collect();
                let key = if deps.is_empty() {
                    i as f64
                } else {
                    deps.iter().sum::<f64>() / deps.len() as f64
                };
                (key, i)
            })
            .collect();
        members.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        for (_, i) in members {
            row[i] = *count;
            *count += 1;
        }
    }
    let rows = per_col.iter().copied().max().unwrap_or(0);
    let box_w = dag
        .iter()
        .map(|d| d.name.chars().count())
        .max()
        .unwrap_or(4)
        .clamp(8, 30) as f64
        * 7.5
        + 20.0;
    let (gap_x, box_h, gap_y) = (48.0, 36.0, 14.0);
    let w = 16.0 + cols as f64 * (box_w + gap_x);
    let h = 40.0 + rows as f64 * (box_h + gap_y) + 30.0;
    let pos = |i: usize| {
        (
            round(16.0 + depth[i] as f64 * (box_w + gap_x)),
            round(36.0 + row[i] as f64 * (box_h + gap_y)),
        )
    };
    let status = |name: &str| {
        run.and_then(|r| r.stages.iter().find(|s| s.name == name))
            .map_or("not_run".to_string(), |s| s.status.clone())
    };
    let crit = run.map(|r| critical_path(r, dag)).unwrap_or_default();
    let title = match run {
        Some(r) => format!("the DAG, as run {} left it", r.id),
        None => "the DAG".into(),
    };
    let mut o = String::new();
    svg::open(
        &mut o,
        w.max(420.0),
        h,
        &format!("data-chart=\"dag\" data-stages=\"{n}\""),
        &title,
        standalone,
    );
    let _ = write!(
        o,
        "<text class=\"title\" x=\"8\" y=\"18\">{}</text>",
        esc(&title)
    );
    for (i, node) in dag.iter().enumerate() {
        for &d in node.deps.iter().filter(|d| **d < n) {
            let (x0, y0) = pos(d);
            let (x1, y1) = pos(i);
            let (ax, ay) = (x0 + box_w, y0 + box_h / 2.0);
            let (bx, by) = (x1, y1 + box_h / 2.0);
            let mid = round((ax + bx) / 2.0);
            let c = if crit.contains(&dag[d].name) && crit.contains(&node.name) {
                " crit"
            } else {
                ""
            };
            let _ = write!(
                o,
                "<path class=\"edge{c}\" d=\"M{ax} {ay}C{mid} {ay} {mid} {by} {bx} {by}\"/>"
            );
        }
    }
    for (i, node) in dag.iter().enumerate() {
        let (x0, y0) = pos(i);
        let st = status(&node.name);
        let c = if crit.contains(&node.name) {
            " crit"
        } else {
            ""
        };
        let light = matches!(
            st.as_str(),
            "skipped" | "not_run" | "not_selected" | "restored" | "interrupted"
        );
        let text_class = if light { "" } else { " class=\"on\"" };
        let _ = write!(
            o,
            "<g data-stage=\"{}\" data-status=\"{}\"><rect class=\"st-{}{c}\" x=\"{x0}\" y=\"{y0}\" width=\"{box_w}\" height=\"{box_h}\" rx=\"5\"><title>{}: {}</title></rect><text{text_class} x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text><text{text_class} x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"10\">{}</text></g>",
            esc(&node.name),
            esc(&st),
            esc(&st),
            esc(&node.name),
            esc(&status_label(&st)),
            round(x0 + box_w / 2.0),
            y0 + 15.0,
            esc(&node.name),
            round(x0 + box_w / 2.0),
            y0 + 29.0,
            esc(&status_label(&st))
        );
    }
    legend(&mut o, 8.0, h - 8.0);
    o.push_str("</svg>");
    o
}
