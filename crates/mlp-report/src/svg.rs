//! SVG by hand: escaping, a linear scale with round ticks, and the style every chart
//! shares (classes, so that the page's dark theme applies; a standalone file carries the
//! same rules in its own `<style>`).

use std::fmt::Write as _;

use crate::table::num;

/// Text for HTML or SVG, attribute-safe: `& < > " '` escaped.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// Colours (Okabe–Ito, safe for colour-blind readers; lighter ones in the dark theme) and
/// the look of the charts.
pub const STYLE: &str = "\
:root{--fg:#1b1b1b;--muted:#5f5f5f;--grid:#e3e3e3;--bg:#fff;--panel:#f6f6f6;\
--value:#0072B2;--base:#009E73;--gate:#D55E00;--fail:#D55E00;--ran:#0072B2;\
--restored:#56B4E9;--fresh:#009E73;--skipped:#BBBBBB;--interrupted:#E69F00;--crit:#000}\
@media (prefers-color-scheme:dark){:root{--fg:#e8e8e8;--muted:#a8a8a8;--grid:#3a3a3a;\
--bg:#16181c;--panel:#1f2227;--value:#56B4E9;--base:#3CCB9E;--gate:#FF8A3D;--fail:#FF8A3D;\
--ran:#3D9BE0;--restored:#9AD3F5;--fresh:#3CCB9E;--skipped:#666;--interrupted:#F0C419;\
--crit:#fff}}\
svg.chart{font-family:'DejaVu Sans',Verdana,sans-serif;font-size:12px;background:var(--bg)}\
svg.chart text{fill:var(--fg)}svg.chart .muted{fill:var(--muted)}\
svg.chart .title{font-size:13px;font-weight:bold}\
.grid{stroke:var(--grid);stroke-width:1}.axis{stroke:var(--muted);stroke-width:1}\
.series{fill:none;stroke:var(--value);stroke-width:2}.pt{fill:var(--value)}\
.pt.fail{fill:none;stroke:var(--fail);stroke-width:2.5}.pt.other{fill:var(--bg);stroke:var(--value);stroke-width:2}\
.base{stroke:var(--base);stroke-width:2;stroke-dasharray:7 4;fill:none}\
.gate{stroke:var(--gate);stroke-width:2;stroke-dasharray:2 3;fill:none}\
text.base{fill:var(--base)!important;stroke:none}text.gate{fill:var(--gate)!important;stroke:none}\
.st-ran{fill:var(--ran)}.st-restored{fill:var(--restored)}.st-fresh{fill:var(--fresh)}\
.st-failed{fill:var(--fail)}.st-skipped,.st-not_run,.st-not_selected{fill:var(--skipped)}\
.st-interrupted{fill:var(--interrupted)}.crit{stroke:var(--crit);stroke-width:2.5}\
.edge{stroke:var(--muted);stroke-width:1.4;fill:none}.edge.crit{stroke-width:2.5}\
svg.chart text.on{fill:#fff}";

/// An `<svg>` element of the given size; `standalone` adds the namespace and the style
/// (a file beside the Markdown), the page's own style applies otherwise.
pub fn open(out: &mut String, w: f64, h: f64, attrs: &str, label: &str, standalone: bool) {
    let _ = write!(
        out,
        "<svg class=\"chart\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" role=\"img\" aria-label=\"{}\" {attrs}",
        esc(label)
    );
    if standalone {
        let _ = write!(
            out,
            " xmlns=\"http://www.w3.org/2000/svg\"><style>{STYLE}</style>"
        );
    } else {
        out.push('>');
    }
    let _ = write!(out, "<title>{}</title>", esc(label));
}

/// A linear map from data to pixels.
#[derive(Clone, Copy, Debug)]
pub struct Scale {
    pub lo: f64,
    pub hi: f64,
    pub from: f64,
    pub to: f64,
}

impl Scale {
    pub fn at(&self, x: f64) -> f64 {
        let span = self.hi - self.lo;
        let t = if span == 0.0 {
            0.5
        } else {
            (x - self.lo) / span
        };
        round(self.from + t * (self.to - self.from))
    }
}

/// Pixel values written with at most one decimal: smaller files, the same picture.
pub fn round(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Round tick values covering `[lo, hi]` (about `n` of them), and the widened range.
pub fn ticks(lo: f64, hi: f64, n: usize) -> (Vec<f64>, f64, f64) {
    let (lo, hi) = if lo == hi {
        let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        (lo - pad, hi + pad)
    } else {
        (lo, hi)
    };
    let raw = (hi - lo) / n.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let first = (lo / step).floor() * step;
    let last = (hi / step).ceil() * step;
    let mut out = Vec::new();
    let mut i = 0.0;
    while first + i * step <= last + step * 1e-9 {
        // Snap to the step's precision so that 0.30000000000000004 prints as 0.3.
        out.push(((first + i * step) / step).round() * step);
        i += 1.0;
    }
    (out, first, last)
}

/// A tick label.
pub fn tick(x: f64) -> String {
    if x.abs() < 1e-12 { "0".into() } else { num(x) }
}

/// A horizontal axis with its ticks, gridlines up to `top`, and its label.
pub struct Axis<'a> {
    pub label: &'a str,
    pub ticks: &'a [(f64, String)],
}

/// Draw the y axis (gridlines across the plot) and the x axis.
pub fn axes(out: &mut String, x: &Scale, y: &Scale, xa: &Axis<'_>, ya: &Axis<'_>) {
    for (v, t) in ya.ticks {
        let py = y.at(*v);
        let _ = write!(
            out,
            "<line class=\"grid\" x1=\"{}\" x2=\"{}\" y1=\"{py}\" y2=\"{py}\"/><text x=\"{}\" y=\"{}\" text-anchor=\"end\" class=\"muted\">{}</text>",
            x.from,
            x.to,
            x.from - 6.0,
            py + 4.0,
            esc(t)
        );
    }
    let base = y.from;
    let _ = write!(
        out,
        "<line class=\"axis\" x1=\"{}\" x2=\"{}\" y1=\"{base}\" y2=\"{base}\"/><line class=\"axis\" x1=\"{}\" x2=\"{}\" y1=\"{}\" y2=\"{base}\"/>",
        x.from, x.to, x.from, x.from, y.to
    );
    for (v, t) in xa.ticks {
        let px = x.at(*v);
        let _ = write!(
            out,
            "<line class=\"axis\" x1=\"{px}\" x2=\"{px}\" y1=\"{base}\" y2=\"{}\"/><text x=\"{px}\" y=\"{}\" text-anchor=\"middle\" class=\"muted\">{}</text>",
            base + 4.0,
            base + 17.0,
            esc(t)
        );
    }
    let _ = write!(
        out,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
        round((x.from + x.to) / 2.0),
        base + 34.0,
        esc(xa.label)
    );
    let cy = round((y.from + y.to) / 2.0);
    let _ = write!(
        out,
        "<text transform=\"translate(14 {cy}) rotate(-90)\" text-anchor=\"middle\">{}</text>",
        esc(ya.label)
    );
}

/// The unit a metric's name implies (`latency_ms` → ms), for the axis label.
pub fn unit_of(key: &str) -> Option<&'static str> {
    let last = key.rsplit('.').next().unwrap_or(key).to_ascii_lowercase();
    let words: Vec<&str> = last.split(['_', '-']).collect();
    let has = |w: &str| words.contains(&w);
    if has("ms") {
        Some("ms")
    } else if has("s") || has("seconds") || has("secs") {
        Some("s")
    } else if has("usd") || has("cost") || has("dollars") {
        Some("USD")
    } else if has("tokens") {
        Some("tokens")
    } else if has("mb") || has("mib") {
        Some("MiB")
    } else if has("bytes") {
        Some("bytes")
    } else if has("pct") || has("percent") {
        Some("%")
    } else {
        None
    }
}

/// An axis label with its unit: `eval.p95_latency_ms (ms)`.
pub fn with_unit(label: &str, key: &str) -> String {
    match unit_of(key) {
        Some(u) => format!("{label} ({u})"),
        None => label.to_string(),
    }
}
