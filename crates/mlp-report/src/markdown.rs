//! The report in Markdown, to post on a pull request: the same tables, and the charts as
//! SVG files beside it (linked relative to the Markdown file).

use std::fmt::Write as _;

use crate::charts;
use crate::html::subtitle;
use crate::model::Report;
use crate::table::{self, Columns, human_kb, human_ms, judged, num, signed, when};
use crate::text;
use crate::timeline;

/// The Markdown text and the files it links to: (path relative to the Markdown, SVG).
#[derive(Clone, Debug, Default)]
pub struct Markdown {
    pub text: String,
    pub files: Vec<(String, String)>,
}

/// Text safe in a Markdown table cell: no HTML, no emphasis, no cell break.
pub fn md(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '|' | '\\' | '*' | '_' | '[' | ']' | '`' | '#' | '~' | '!' => {
                o.push('\\');
                o.push(c);
            }
            '\n' | '\r' => o.push(' '),
            c => o.push(c),
        }
    }
    o
}

/// A file name from a metric key: `evaluate.eval.auc` → `evaluate.eval.auc`, anything
/// outside `[A-Za-z0-9._-]` as `-`.
fn file_part(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .take(80)
        .collect()
}

/// The report as Markdown; the charts go to `dir/` (a name relative to the Markdown file).
pub fn markdown(r: &Report, dir: &str) -> Markdown {
    let cols = Columns::of(r);
    let mut t = String::new();
    let mut files = Vec::new();
    let _ = writeln!(t, "# mlp report: {}\n", md(&r.pipeline));
    let _ = writeln!(t, "{}\n", md(&subtitle(r)));
    let notes = text::notes(r);
    if !notes.trim().is_empty() {
        for l in notes.lines() {
            let _ = writeln!(t, "- {}", md(l));
        }
        t.push('\n');
    }
    t.push_str("## Runs\n\n| run | started | outcome | took | CPU | peak mem |");
    for p in &cols.params {
        let _ = write!(t, " params.{} |", md(p));
    }
    for m in &cols.metrics {
        let _ = write!(t, " {} |", md(&m.label));
    }
    for c in &cols.costs {
        let _ = write!(t, " {} |", c.label);
    }
    t.push_str(" gates, checks, failures |\n|");
    let n = 6 + cols.params.len() + cols.metrics.len() + cols.costs.len() + 1;
    for i in 0..n {
        t.push_str(
            if i == 0 || (3..6).contains(&i) || (6 + cols.params.len()..n - 1).contains(&i) {
                " ---: |"
            } else {
                " --- |"
            },
        );
    }
    t.push('\n');
    for run in r.runs.iter().rev() {
        let is_base = r.baseline.as_ref().is_some_and(|b| b.id == run.id);
        let _ = write!(
            t,
            "| {}{} | {} | {} | {} | {} | {} |",
            md(&run.id),
            if is_base { " (baseline)" } else { "" },
            when(run.started_ms),
            if run.ok {
                "ok".to_string()
            } else {
                format!("**{}**", run.outcome())
            },
            human_ms(run.duration_ms()),
            if run.cpu_ms() > 0 {
                human_ms(run.cpu_ms())
            } else {
                "-".into()
            },
            human_kb(run.max_rss_kb())
        );
        for p in &cols.params {
            let _ = write!(t, " {} |", md(&table::value_text(run.params.get(p))));
        }
        for m in &cols.metrics {
            match run.metrics.get(&m.key) {
                None => t.push_str(" - |"),
                Some(v) => {
                    let _ = write!(t, " {}", num(*v));
                    if let Some(d) = table::delta(r, run, &m.key) {
                        let mark = match judged(d, m.higher_is_better) {
                            Some(true) => "▲ ",
                            Some(false) => "▼ ",
                            None => "",
                        };
                        let _ = write!(t, " ({mark}{})", signed(d));
                    }
                    t.push_str(" |");
                }
            }
        }
        for c in &cols.costs {
            let _ = write!(t, " {} |", c.total(run).map_or("-".into(), num));
        }
        let verdicts: Vec<String> = run
            .verdicts()
            .chain(run.failures())
            .map(|s| {
                format!(
                    "✗ {}: {}",
                    md(&s.name),
                    md(s.reason.as_deref().unwrap_or("failed"))
                )
            })
            .collect();
        let verdict = if verdicts.is_empty() && run.ok && !r.assertions.is_empty() {
            "✓".to_string()
        } else {
            verdicts.join("<br>")
        };
        let _ = writeln!(t, " {verdict} |");
    }
    t.push('\n');
    let mut chart = |t: &mut String, name: String, title: &str, svg: String| {
        let path = format!("{dir}/{name}");
        let _ = writeln!(t, "![{}]({})\n", md(title), path.replace(' ', "%20"));
        files.push((path, svg));
    };
    if !cols.metrics.is_empty() && !r.runs.is_empty() {
        t.push_str("## Metrics over runs\n\n");
        for (i, c) in cols.metrics.iter().enumerate() {
            let svg = charts::metric_over_runs(r, c, true);
            chart(
                &mut t,
                format!("metric-{}-{}.svg", i + 1, file_part(&c.key)),
                &format!("{} over runs", c.label),
                svg,
            );
        }
    }
    let mut first = true;
    for (i, p) in table::scatter_params(r, &cols).into_iter().enumerate() {
        for (j, c) in cols.metrics.iter().take(table::SCATTER_METRICS).enumerate() {
            if let Some(svg) = charts::param_vs_metric(r, p, c, true) {
                if first {
                    t.push_str("## Params against metrics\n\n");
                    first = false;
                }
                chart(
                    &mut t,
                    format!("scatter-{}-{}.svg", i + 1, j + 1),
                    &format!("{} vs params.{p}", c.label),
                    svg,
                );
            }
        }
    }
    if let Some(last) = r.runs.last() {
        let _ = writeln!(t, "## Run {}: timeline\n", md(&last.id));
        chart(
            &mut t,
            "timeline.svg".into(),
            "timeline",
            timeline::gantt(last, &r.dag, true),
        );
    }
    if !r.dag.is_empty() {
        t.push_str("## The DAG\n\n");
        chart(
            &mut t,
            "dag.svg".into(),
            "the DAG",
            timeline::dag(r.runs.last(), &r.dag, true),
        );
    }
    Markdown { text: t, files }
}
