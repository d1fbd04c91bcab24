//! The report as one HTML page: no request leaves it (a strict Content-Security-Policy
//! says so to the browser), CSS and SVG inline, a few lines of script to sort the table.

use std::fmt::Write as _;

use crate::charts;
use crate::model::{Report, Run};
use crate::svg::{STYLE, esc};
use crate::table::{self, Columns, human_kb, human_ms, judged, num, signed, when};
use crate::text;
use crate::timeline;

const PAGE_STYLE: &str = "\
body{font-family:'DejaVu Sans',Verdana,sans-serif;margin:24px;color:var(--fg);background:var(--bg);line-height:1.4}\
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid var(--grid)}\
.sub{color:var(--muted);margin:0 0 12px}.best{background:var(--panel);padding:8px 12px;border-radius:6px;white-space:pre-wrap;font-family:'DejaVu Sans Mono',monospace;font-size:13px}\
table{border-collapse:collapse;font-size:13px}th,td{padding:4px 8px;border-bottom:1px solid var(--grid);text-align:left;vertical-align:top;white-space:nowrap}\
th{cursor:pointer;position:sticky;top:0;background:var(--panel)}td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}\
.good{color:var(--base)}.bad{color:var(--fail)}.fail{color:var(--fail);font-weight:bold}.wrap{overflow-x:auto}\
.charts{display:flex;flex-wrap:wrap;gap:12px}.charts svg{border:1px solid var(--grid);border-radius:6px;max-width:100%;height:auto}\
.verdict{min-width:260px;max-width:480px;white-space:normal}details summary{cursor:pointer}details small{display:block;font-weight:normal}small{color:var(--muted)}";

/// A few lines of script: click a column header to sort the runs by it.
const SCRIPT: &str = "\
document.querySelectorAll('table.runs th').forEach(function(th,i){th.addEventListener('click',function(){\
var tb=th.closest('table').tBodies[0],rows=Array.from(tb.rows),asc=th.dataset.asc!=='1';th.dataset.asc=asc?'1':'0';\
rows.sort(function(a,b){var x=a.cells[i].dataset.v||a.cells[i].textContent,y=b.cells[i].dataset.v||b.cells[i].textContent,\
p=parseFloat(x),q=parseFloat(y),c=(!isNaN(p)&&!isNaN(q))?p-q:x.localeCompare(y);return asc?c:-c;});\
rows.forEach(function(r){tb.appendChild(r);});});});";

/// The whole page.
pub fn page(r: &Report) -> String {
    let cols = Columns::of(r);
    let mut o = String::with_capacity(64 * 1024);
    let title = format!("mlp report: {}", r.pipeline);
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<meta name=\"color-scheme\" content=\"light dark\"><title>{}</title><style>{STYLE}{PAGE_STYLE}</style></head><body>\n",
        esc(&title)
    );
    let _ = writeln!(o, "<h1>{}</h1>", esc(&title));
    let _ = writeln!(o, "<p class=\"sub\">{}</p>", esc(&subtitle(r)));
    let best = text::notes(r);
    if !best.trim().is_empty() {
        let _ = writeln!(o, "<div class=\"best\">{}</div>", esc(best.trim_end()));
    }
    o.push_str("<h2>Runs</h2>\n<div class=\"wrap\">");
    runs_table(&mut o, r, &cols);
    o.push_str("</div>\n");
    if !cols.metrics.is_empty() && !r.runs.is_empty() {
        o.push_str("<h2>Metrics over runs</h2>\n<div class=\"charts\">\n");
        for c in &cols.metrics {
            o.push_str(&charts::metric_over_runs(r, c, false));
            o.push('\n');
        }
        o.push_str("</div>\n");
    }
    let scatters: Vec<String> = table::scatter_params(r, &cols)
        .into_iter()
        .flat_map(|p| {
            cols.metrics
                .iter()
                .take(table::SCATTER_METRICS)
                .map(move |c| (p, c))
        })
        .filter_map(|(p, c)| charts::param_vs_metric(r, p, c, false))
        .collect();
    if !scatters.is_empty() {
        o.push_str("<h2>Params against metrics</h2>\n<div class=\"charts\">\n");
        for s in scatters {
            o.push_str(&s);
            o.push('\n');
        }
        o.push_str("</div>\n");
    }
    if let Some(last) = r.runs.last() {
        let _ = write!(
            o,
            "<h2>Run {}: timeline</h2>\n<div class=\"charts\">",
            esc(&last.id)
        );
        o.push_str(&timeline::gantt(last, &r.dag, false));
        o.push_str("</div>\n");
    }
    if !r.dag.is_empty() {
        o.push_str("<h2>The DAG</h2>\n<div class=\"charts\">");
        o.push_str(&timeline::dag(r.runs.last(), &r.dag, false));
        o.push_str("</div>\n");
    }
    let _ = write!(o, "<script>{SCRIPT}</script>\n</body></html>\n");
    o
}

/// `7 runs (3 to 9), baseline: run 5`.
pub fn subtitle(r: &Report) -> String {
    let mut s = match (r.runs.first(), r.runs.last()) {
        (Some(a), Some(b)) if r.runs.len() > 1 => format!(
            "{} runs ({} to {}), from {} to {}",
            r.runs.len(),
            a.id,
            b.id,
            when(a.started_ms),
            when(b.started_ms)
        ),
        (Some(a), _) => format!("1 run ({}), {}", a.id, when(a.started_ms)),
        _ => "no runs yet".into(),
    };
    match &r.baseline {
        Some(b) => s.push_str(&format!("; baseline: run {}", b.id)),
        None => s.push_str("; no baseline yet (`mlp promote RUN` sets one)"),
    }
    s
}

fn runs_table(o: &mut String, r: &Report, cols: &Columns) {
    o.push_str("<table class=\"runs\"><thead><tr><th>run</th><th>started</th><th>outcome</th><th>gates, checks, failures</th><th>took</th><th>CPU</th><th>peak mem</th>");
    for p in &cols.params {
        let _ = write!(o, "<th>params.{}</th>", esc(p));
    }
    for m in &cols.metrics {
        let arrow = match m.higher_is_better {
            Some(true) => " ↑",
            Some(false) => " ↓",
            None => "",
        };
        let _ = write!(
            o,
            "<th title=\"{}\">{}{arrow}</th>",
            esc(&m.key),
            esc(&m.label)
        );
    }
    for c in &cols.costs {
        let _ = write!(o, "<th>{}</th>", c.label);
    }
    o.push_str("</tr></thead><tbody>\n");
    for run in r.runs.iter().rev() {
        row(o, r, cols, run);
    }
    o.push_str("</tbody></table>");
}

fn row(o: &mut String, r: &Report, cols: &Columns, run: &Run) {
    let is_base = r.baseline.as_ref().is_some_and(|b| b.id == run.id);
    let _ = write!(
        o,
        "<tr data-run=\"{}\"><td class=\"n\" data-v=\"{}\">{}{}</td><td>{}</td><td{}>{}</td>{}<td class=\"n\" data-v=\"{}\">{}</td><td class=\"n\" data-v=\"{}\">{}</td><td class=\"n\" data-v=\"{}\">{}</td>",
        esc(&run.id),
        esc(&run.id),
        esc(&run.id),
        if is_base {
            " <small>baseline</small>"
        } else {
            ""
        },
        when(run.started_ms),
        if run.ok { "" } else { " class=\"fail\"" },
        run.outcome(),
        verdict(r, run),
        run.duration_ms(),
        human_ms(run.duration_ms()),
        run.cpu_ms(),
        if run.cpu_ms() > 0 {
            human_ms(run.cpu_ms())
        } else {
            "-".into()
        },
        run.max_rss_kb(),
        human_kb(run.max_rss_kb())
    );
    for p in &cols.params {
        let _ = write!(o, "<td>{}</td>", esc(&table::value_text(run.params.get(p))));
    }
    for m in &cols.metrics {
        match run.metrics.get(&m.key) {
            None => o.push_str("<td class=\"n\">-</td>"),
            Some(v) => {
                let _ = write!(o, "<td class=\"n\" data-v=\"{v}\">{}", num(*v));
                if let Some(d) = table::delta(r, run, &m.key) {
                    let (class, mark) = match judged(d, m.higher_is_better) {
                        Some(true) => ("good", "▲ "),
                        Some(false) => ("bad", "▼ "),
                        None => ("", ""),
                    };
                    let _ = write!(o, " <small class=\"{class}\">({mark}{})</small>", signed(d));
                }
                o.push_str("</td>");
            }
        }
    }
    for c in &cols.costs {
        match c.total(run) {
            Some(v) => {
                let _ = write!(o, "<td class=\"n\" data-v=\"{v}\">{}</td>", num(v));
            }
            None => o.push_str("<td class=\"n\">-</td>"),
        }
    }
    o.push_str("</tr>\n");
}

/// The gate, check and command failures of a run, with their messages.
fn verdict(r: &Report, run: &Run) -> String {
    let mut o = String::new();
    o.push_str("<td class=\"verdict\">");
    let mut any = false;
    for s in run.verdicts().chain(run.failures()) {
        any = true;
        let reason = s.reason.as_deref().unwrap_or("failed");
        // A check's or gate's own message says it in a line; the expression with the
        // values it saw unfolds under it.
        let message = r
            .assertions
            .iter()
            .filter(|a| a.stage == s.name)
            .filter_map(|a| a.message.as_deref())
            .find(|m| reason.ends_with(&format!(": {m}")));
        match message {
            Some(m) => {
                let _ = write!(
                    &mut o,
                    "<details class=\"fail\"><summary>✗ {} {}: {}</summary><small>{}</small></details>",
                    esc(&s.name),
                    esc(s.kind.as_deref().unwrap_or("")),
                    esc(m),
                    esc(reason)
                );
            }
            None => {
                let _ = write!(
                    &mut o,
                    "<div class=\"fail\">✗ {}: <span>{}</span></div>",
                    esc(&s.name),
                    esc(reason)
                );
            }
        }
    }
    if !any {
        if run.ok && !r.assertions.is_empty() {
            o.push_str("✓ no check or gate failed");
        } else if run.interrupted {
            o.push_str("interrupted");
        }
    }
    o.push_str("</td>");
    o
}
