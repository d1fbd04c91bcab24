//! Diagnostics: many at once, each with a stable code, labelled spans into the whole source
//! file, and a help line. Rendered by miette (graphical on a terminal, plain otherwise) or
//! as JSON for tools.

use std::fmt;
use std::sync::Arc;

use miette::{
    LabeledSpan, MietteError, MietteSpanContents, NamedSource, SourceCode, SourceSpan, SpanContents,
};
use mlp_syntax::ast::Span;
use serde::Serialize;

/// One source file that diagnostics point into.
#[derive(Clone, Debug)]
pub struct Source {
    /// The path as shown to the user (relative to where mlp was started when possible).
    pub name: String,
    pub text: Arc<String>,
}

/// Every source read while planning, by index.
#[derive(Clone, Debug, Default)]
pub struct SourceMap {
    pub files: Vec<Source>,
}

impl SourceMap {
    pub fn add(&mut self, name: String, text: String) -> usize {
        self.files.push(Source {
            name,
            text: Arc::new(text),
        });
        self.files.len() - 1
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Label {
    pub span: Span,
    pub text: String,
    /// The label is the main one (miette shows it first).
    pub primary: bool,
}

/// An error stops the plan; a warning is shown and the plan goes on (`mlp check` exits 0).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    #[default]
    Error,
    Warning,
}

/// A problem found in the pipeline's sources.
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    pub code: &'static str,
    pub severity: Severity,
    pub message: String,
    /// Index into the `SourceMap`; `None` for problems with no place in a file.
    pub file: Option<usize>,
    pub labels: Vec<Label>,
    pub help: Option<String>,
}

impl Diagnostic {
    /// A diagnostic with `code` (a `Code`, or the code string of a syntax error).
    pub fn new(code: impl Into<&'static str>, message: impl Into<String>) -> Self {
        Diagnostic {
            code: code.into(),
            severity: Severity::Error,
            message: message.into(),
            file: None,
            labels: Vec::new(),
            help: None,
        }
    }
    /// Point at `span` in `file`, with the main label.
    pub fn at(mut self, file: usize, span: Span, text: impl Into<String>) -> Self {
        self.file = Some(file);
        self.labels.push(Label {
            span,
            text: text.into(),
            primary: true,
        });
        self
    }
    /// Another label in the same file.
    pub fn also(mut self, span: Span, text: impl Into<String>) -> Self {
        self.labels.push(Label {
            span,
            text: text.into(),
            primary: false,
        });
        self
    }
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
    /// Make it a warning.
    pub fn warning(mut self) -> Self {
        self.severity = Severity::Warning;
        self
    }
    pub fn is_warning(&self) -> bool {
        self.severity == Severity::Warning
    }
}

/// All the diagnostics of one `check`, with the sources they point into.
#[derive(Clone, Debug, Default)]
pub struct Diagnostics {
    pub sources: SourceMap,
    pub items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Render every diagnostic: graphical with colour, graphical without, or narratable
    /// plain text.
    pub fn render(&self, style: Style) -> String {
        let handler: Box<dyn miette::ReportHandler> = match style {
            Style::Color => Box::new(
                miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode())
                    .with_context_lines(1),
            ),
            Style::Plain => Box::new(
                miette::GraphicalReportHandler::new_themed(
                    miette::GraphicalTheme::unicode_nocolor(),
                )
                .with_context_lines(1),
            ),
        };
        let mut out = String::new();
        for d in &self.items {
            let r = Rendered::new(d, &self.sources);
            let _ = fmt::Write::write_fmt(&mut out, format_args!("{}", Display(&*handler, &r)));
        }
        let warnings = self.items.iter().filter(|d| d.is_warning()).count();
        let errors = self.items.len() - warnings;
        if errors > 1 {
            out.push_str(&format!("{errors} errors\n"));
        }
        if warnings > 1 {
            out.push_str(&format!("{warnings} warnings\n"));
        }
        out
    }

    /// JSON for tools: `{"errors": [...]}`, and `"warnings": [...]` when there are any; one
    /// object per diagnostic, with line and column (1-based) of each label.
    pub fn to_json(&self) -> serde_json::Value {
        let (warnings, errors): (Vec<_>, Vec<_>) = self
            .json_items()
            .into_iter()
            .partition(|d| d["severity"] == "warning");
        if warnings.is_empty() {
            serde_json::json!({ "errors": errors })
        } else {
            serde_json::json!({ "errors": errors, "warnings": warnings })
        }
    }

    /// Each diagnostic as a JSON object (what `to_json` lists).
    pub fn json_items(&self) -> Vec<serde_json::Value> {
        self.items
            .iter()
            .map(|d| {
                let src = d.file.and_then(|f| self.sources.files.get(f));
                let labels: Vec<serde_json::Value> = d
                    .labels
                    .iter()
                    .map(|l| {
                        let (line, col) = src.map_or((0, 0), |s| line_col(&s.text, l.span.start));
                        serde_json::json!({
                            "text": l.text, "primary": l.primary,
                            "start": l.span.start, "end": l.span.end,
                            "line": line, "column": col,
                        })
                    })
                    .collect();
                serde_json::json!({
                    "code": d.code,
                    "severity": d.severity,
                    "message": d.message,
                    "file": src.map(|s| s.name.clone()),
                    "labels": labels,
                    "help": d.help,
                })
            })
            .collect()
    }
}

/// How to draw diagnostics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    Color,
    Plain,
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, at: usize) -> (usize, usize) {
    let at = at.min(text.len());
    let before = &text[..floor_char_boundary(text, at)];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

struct Display<'a>(&'a dyn miette::ReportHandler, &'a Rendered);

impl fmt::Display for Display<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.debug(self.1, f)?;
        writeln!(f)
    }
}

/// A diagnostic bound to its source, as miette wants it.
#[derive(Debug)]
struct Rendered {
    code: &'static str,
    severity: Severity,
    message: String,
    help: Option<String>,
    labels: Vec<LabeledSpan>,
    source: Option<CharColumns>,
}

impl Rendered {
    fn new(d: &Diagnostic, sources: &SourceMap) -> Self {
        let src = d.file.and_then(|f| sources.files.get(f));
        let len = src.map_or(0, |s| s.text.len());
        let labels = d
            .labels
            .iter()
            .map(|l| {
                let start = l.span.start.min(len);
                let end = l.span.end.clamp(start, len);
                let span = SourceSpan::new(start.into(), end - start);
                let text = (!l.text.is_empty()).then(|| l.text.clone());
                if l.primary {
                    LabeledSpan::new_primary_with_span(text, span)
                } else {
                    LabeledSpan::new_with_span(text, span)
                }
            })
            .collect();
        Rendered {
            code: d.code,
            severity: d.severity,
            message: d.message.clone(),
            help: d.help.clone(),
            labels,
            source: src.map(|s| CharColumns(NamedSource::new(s.name.clone(), s.text.clone()))),
        }
    }
}

/// A source whose `file:line:column` headers count the column in characters, as `to_json`
/// does (miette counts bytes).
#[derive(Debug)]
struct CharColumns(NamedSource<Arc<String>>);

impl SourceCode for CharColumns {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let c = self
            .0
            .read_span(span, context_lines_before, context_lines_after)?;
        if context_lines_before != 0 {
            return Ok(c); // miette reports no column for a span read with context
        }
        let (_, col) = line_col(self.0.inner(), span.offset());
        let contents = match c.name() {
            Some(name) => MietteSpanContents::new_named(
                name.to_string(),
                c.data(),
                *c.span(),
                c.line(),
                col - 1,
                c.line_count(),
            ),
            None => MietteSpanContents::new(c.data(), *c.span(), c.line(), col - 1, c.line_count()),
        };
        Ok(Box::new(contents))
    }
}

impl fmt::Display for Rendered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Rendered {}

impl miette::Diagnostic for Rendered {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.code))
    }
    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.source.as_ref().map(|s| s as &dyn miette::SourceCode)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        if self.labels.is_empty() {
            None
        } else {
            Some(Box::new(self.labels.iter().cloned()))
        }
    }
}

/// "did you mean `x`?" for the closest candidate, if one is close enough.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    let mut best: Option<(f64, &str)> = None;
    for c in candidates {
        let score = strsim::jaro_winkler(word, c);
        if score > 0.8 && best.is_none_or(|(b, _)| score > b) {
            best = Some((score, c));
        }
    }
    best.map(|(_, c)| format!("did you mean `{c}`?"))
}
