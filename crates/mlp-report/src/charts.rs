//! Charts over runs: each metric as a line over the runs (baseline and gate thresholds as
//! reference lines, failed runs marked), and each changed param against each metric.

use std::fmt::Write as _;

use crate::model::{Report, Run};
use crate::svg::{self, Axis, Scale, esc, round, tick};
use crate::table::{MetricCol, num};

const W: f64 = 560.0;
const H: f64 = 280.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 130.0;
const TOP: f64 = 34.0;
const BOTTOM: f64 = 46.0;

/// A threshold line of a gate or check on this metric: its label and value in each run.
struct Limit {
    label: String,
    values: Vec<Option<f64>>,
}

fn limits(r: &Report, key: &str) -> Vec<Limit> {
    r.assertions
        .iter()
        .filter(|a| a.metric.as_deref() == Some(key))
        .filter_map(|a| {
            let t = a.threshold.as_ref()?;
            let values: Vec<Option<f64>> = r.runs.iter().map(|run| t.value_in(run)).collect();
            values.iter().any(Option::is_some).then(|| Limit {
                label: format!("{} {} {}", a.kind, t.op, last_value(&values)),
                values,
            })
        })
        .collect()
}

fn last_value(v: &[Option<f64>]) -> String {
    v.iter()
        .rev()
        .flatten()
        .next()
        .map_or("-".into(), |x| num(*x))
}

/// Why a run failed, for a point's tooltip.
fn failure_text(run: &Run) -> String {
    let mut why: Vec<String> = run
        .verdicts()
        .chain(run.failures())
        .map(|s| format!("{}: {}", s.name, s.reason.clone().unwrap_or_default()))
        .collect();
    if why.is_empty() && run.interrupted {
        why.push("interrupted".into());
    }
    why.join("; ")
}

/// The line chart of one metric over the runs.
pub fn metric_over_runs(r: &Report, col: &MetricCol, standalone: bool) -> String {
    let pts: Vec<(usize, &Run, f64)> = r
        .runs
        .iter()
        .enumerate()
        .filter_map(|(i, run)| Some((i, run, *run.metrics.get(&col.key)?)))
        .collect();
    let base = r
        .baseline
        .as_ref()
        .and_then(|b| Some((b, *b.metrics.get(&col.key)?)));
    let mut all: Vec<f64> = pts.iter().map(|p| p.2).collect();
    all.extend(base.map(|b| b.1));
    // A threshold far from the values (a latency of 5 ms against a limit of 50) would
    // squash them into a line: when it is far in every run, it is named at the edge
    // instead of drawn.
    let (dlo, dhi) = (
        all.iter().copied().fold(f64::INFINITY, f64::min),
        all.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    );
    let reach = (dhi - dlo).max(dhi.abs().max(dlo.abs()) * 0.1).max(1e-9) * 0.75;
    let (lims, far): (Vec<Limit>, Vec<Limit>) = limits(r, &col.key).into_iter().partition(|l| {
        all.is_empty()
            || l.values
                .iter()
                .flatten()
                .any(|v| *v >= dlo - reach && *v <= dhi + reach)
    });
    all.extend(lims.iter().flat_map(|l| l.values.iter().flatten().copied()));
    let lo = all.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = all.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if all.is_empty() { (0.0, 1.0) } else { (lo, hi) };
    let (yt, ylo, yhi) = svg::ticks(lo, hi, 5);
    let n = r.runs.len().max(1);
    let x = Scale {
        lo: 0.0,
        hi: (n - 1).max(1) as f64,
        from: LEFT + 10.0,
        to: W - RIGHT - 10.0,
    };
    let y = Scale {
        lo: ylo,
        hi: yhi,
        from: H - BOTTOM,
        to: TOP,
    };
    let title = format!("{} over runs", col.label);
    let mut o = String::new();
    svg::open(
        &mut o,
        W,
        H,
        &format!(
            "data-chart=\"metric\" data-metric=\"{}\" data-points=\"{}\"",
            esc(&col.key),
            pts.len()
        ),
        &title,
        standalone,
    );
    let _ = write!(
        o,
        "<text class=\"title\" x=\"{LEFT}\" y=\"18\">{}</text>",
        esc(&title)
    );
    let every = n.div_ceil(12);
    let xt: Vec<(f64, String)> = r
        .runs
        .iter()
        .enumerate()
        .filter(|(i, _)| i % every == 0 || *i == n - 1)
        .map(|(i, run)| (i as f64, run.id.clone()))
        .collect();
    let yt: Vec<(f64, String)> = yt.into_iter().map(|v| (v, tick(v))).collect();
    let ylabel = svg::with_unit(&col.label, &col.key);
    svg::axes(
        &mut o,
        &x,
        &y,
        &Axis {
            label: "run",
            ticks: &xt,
        },
        &Axis {
            label: &ylabel,
            ticks: &yt,
        },
    );
    let lx = W - RIGHT + 6.0;
    // Labels at the right end of the reference lines: (y, class, text), spread apart below.
    let mut labels: Vec<(f64, &str, String)> = Vec::new();
    if let Some((b, v)) = base {
        let py = y.at(v);
        let _ = write!(
            o,
            "<line class=\"base\" data-series=\"baseline\" x1=\"{}\" x2=\"{}\" y1=\"{py}\" y2=\"{py}\"><title>baseline: run {} = {}</title></line>",
            x.from,
            x.to,
            esc(&b.id),
            num(v),
        );
        labels.push((py, "base", format!("baseline (run {})", b.id)));
    }
    for (k, l) in lims.iter().enumerate() {
        let mut d = String::new();
        let mut last: Option<f64> = None;
        for (i, v) in l.values.iter().enumerate() {
            let Some(v) = v else { continue };
            let (x0, x1) = (
                x.at((i as f64 - 0.5).max(0.0)),
                x.at((i as f64 + 0.5).min(x.hi)),
            );
            let py = y.at(*v);
            match last {
                None => {
                    let _ = write!(d, "M{} {py}", if i == 0 { x.from } else { x0 });
                }
                Some(l) if l != py => {
                    let _ = write!(d, "V{py}");
                }
                Some(_) => {}
            }
            let _ = write!(d, "H{}", if i == n - 1 { x.to } else { x1 });
            last = Some(py);
        }
        if let Some(py) = last {
            let _ = write!(
                o,
                "<path class=\"gate\" data-series=\"threshold\" d=\"{d}\"><title>{}</title></path>",
                esc(&l.label),
            );
            labels.push((py + 0.01 * k as f64, "gate", l.label.clone()));
        }
    }
    for l in &far {
        let above = l.values.iter().flatten().any(|v| *v > dhi);
        let (py, arrow) = if above {
            (y.to, "↑")
        } else {
            (y.from - 14.0, "↓")
        };
        labels.push((py, "gate", format!("{} {arrow}", l.label)));
    }
    labels.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut prev = f64::NEG_INFINITY;
    for (py, class, text) in &labels {
        let at = (py + 4.0).max(prev + 14.0);
        prev = at;
        let _ = write!(
            o,
            "<text class=\"{class}\" x=\"{lx}\" y=\"{}\">{}</text>",
            round(at),
            esc(text)
        );
    }
    let mut d = String::new();
    let mut prev: Option<usize> = None;
    for (i, _, v) in &pts {
        let cmd = if prev.is_some_and(|p| p + 1 == *i) {
            'L'
        } else {
            'M'
        };
        let _ = write!(d, "{cmd}{} {}", x.at(*i as f64), y.at(*v));
        prev = Some(*i);
    }
    let _ = write!(
        o,
        "<path class=\"series\" data-series=\"value\" d=\"{d}\"/>"
    );
    let stage = col.key.split('.').next().unwrap_or("");
    let failed_here = |run: &Run| {
        run.stages
            .iter()
            .any(|s| s.name == stage && s.status == "failed")
    };
    for (i, run, v) in &pts {
        let (px, py) = (x.at(*i as f64), y.at(*v));
        let tip = if run.ok {
            format!("run {}: {}", run.id, num(*v))
        } else {
            format!(
                "run {}: {} — FAILED: {}",
                run.id,
                num(*v),
                failure_text(run)
            )
        };
        if !run.ok && !failed_here(run) {
            let _ = write!(
                o,
                "<circle class=\"pt other\" data-run=\"{}\" cx=\"{px}\" cy=\"{py}\" r=\"4\"><title>{}</title></circle>",
                esc(&run.id),
                esc(&tip)
            );
        } else if failed_here(run) {
            let _ = write!(
                o,
                "<path class=\"pt fail\" data-run=\"{}\" d=\"M{} {}l10 10m0 -10l-10 10\"><title>{}</title></path>",
                esc(&run.id),
                round(px - 5.0),
                round(py - 5.0),
                esc(&tip)
            );
        } else {
            let _ = write!(
                o,
                "<circle class=\"pt\" data-run=\"{}\" cx=\"{px}\" cy=\"{py}\" r=\"3.5\"><title>{}</title></circle>",
                esc(&run.id),
                esc(&tip)
            );
        }
    }
    // The legend of the markers, under the reference lines' labels.
    let mut ly = H - 30.0;
    if pts.iter().any(|p| failed_here(p.1)) {
        let _ = write!(
            o,
            "<path class=\"pt fail\" d=\"M{lx} {}l8 8m0 -8l-8 8\"/><text x=\"{}\" y=\"{ly}\" class=\"muted\" font-size=\"11\">its stage failed</text>",
            ly - 8.0,
            lx + 13.0
        );
        ly += 15.0;
    }
    if pts.iter().any(|p| !p.1.ok && !failed_here(p.1)) {
        let _ = write!(
            o,
            "<circle class=\"pt other\" cx=\"{}\" cy=\"{}\" r=\"4\"/><text x=\"{}\" y=\"{ly}\" class=\"muted\" font-size=\"11\">failed elsewhere</text>",
            lx + 4.0,
            ly - 4.0,
            lx + 13.0
        );
    }
    o.push_str("</svg>");
    o
}

/// A param (numeric in at least two runs) against a metric, one point per run.
pub fn param_vs_metric(
    r: &Report,
    param: &str,
    col: &MetricCol,
    standalone: bool,
) -> Option<String> {
    let pts: Vec<(&Run, f64, f64)> = r
        .runs
        .iter()
        .filter_map(|run| {
            Some((
                run,
                run.params.get(param)?.as_f64()?,
                *run.metrics.get(&col.key)?,
            ))
        })
        .collect();
    let mut xs: Vec<f64> = pts.iter().map(|p| p.1).collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    if xs.len() < 2 {
        return None;
    }
    let (xt, xlo, xhi) = svg::ticks(xs[0], xs[xs.len() - 1], 5);
    let ys = pts.iter().map(|p| p.2);
    let (lo, hi) = (
        ys.clone().fold(f64::INFINITY, f64::min),
        ys.fold(f64::NEG_INFINITY, f64::max),
    );
    let (yt, ylo, yhi) = svg::ticks(lo, hi, 5);
    let (w, h) = (420.0, 290.0);
    let x = Scale {
        lo: xlo,
        hi: xhi,
        from: LEFT,
        to: w - 20.0,
    };
    let y = Scale {
        lo: ylo,
        hi: yhi,
        from: h - BOTTOM,
        to: TOP + 10.0,
    };
    let title = format!("{} against params.{param}", col.label);
    let mut o = String::new();
    svg::open(
        &mut o,
        w,
        h,
        &format!(
            "data-chart=\"scatter\" data-param=\"{}\" data-metric=\"{}\" data-points=\"{}\"",
            esc(param),
            esc(&col.key),
            pts.len()
        ),
        &title,
        standalone,
    );
    let _ = write!(
        o,
        "<text class=\"title\" x=\"8\" y=\"18\">{}</text><text class=\"muted\" x=\"8\" y=\"32\">against params.{}</text>",
        esc(&col.label),
        esc(param)
    );
    // A whole-number param (`top_k`) gets whole-number ticks.
    let whole = xs.iter().all(|v| v.fract() == 0.0);
    let xt: Vec<(f64, String)> = xt
        .into_iter()
        .filter(|v| !whole || v.fract() == 0.0)
        .map(|v| (v, tick(v)))
        .collect();
    let yt: Vec<(f64, String)> = yt.into_iter().map(|v| (v, tick(v))).collect();
    let xlabel = svg::with_unit(&format!("params.{param}"), param);
    let ylabel = svg::with_unit(&col.label, &col.key);
    svg::axes(
        &mut o,
        &x,
        &y,
        &Axis {
            label: &xlabel,
            ticks: &xt,
        },
        &Axis {
            label: &ylabel,
            ticks: &yt,
        },
    );
    let stage = col.key.split('.').next().unwrap_or("");
    for (run, px, py) in &pts {
        let (cx, cy) = (x.at(*px), y.at(*py));
        let failed_here = run
            .stages
            .iter()
            .any(|s| s.name == stage && s.status == "failed");
        let tip = format!(
            "run {}: params.{param} = {}, {} = {}{}",
            run.id,
            num(*px),
            col.label,
            num(*py),
            if run.ok { "" } else { " (FAILED)" }
        );
        if !failed_here {
            let class = if run.ok { "pt" } else { "pt other" };
            let _ = write!(
                o,
                "<circle class=\"{class}\" data-run=\"{}\" cx=\"{cx}\" cy=\"{cy}\" r=\"4\"><title>{}</title></circle>",
                esc(&run.id),
                esc(&tip)
            );
        } else {
            let _ = write!(
                o,
                "<path class=\"pt fail\" data-run=\"{}\" d=\"M{} {}l10 10m0 -10l-10 10\"><title>{}</title></path>",
                esc(&run.id),
                round(cx - 5.0),
                round(cy - 5.0),
                esc(&tip)
            );
        }
    }
    o.push_str("</svg>");
    Some(o)
}
