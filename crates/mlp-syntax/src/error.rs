//! Syntax errors: a message, a labelled span, a help line and a stable code.

use crate::ast::Span;

/// One error found while parsing. The checker turns it into a miette diagnostic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    /// Stable code, `E0001`..: documented in the book.
    pub code: &'static str,
    pub message: String,
    pub span: Span,
    pub help: String,
    /// The text under the main span, when the error has a more telling one than its
    /// code's default ("unexpected here").
    pub label: Option<String>,
    /// More places to point at, each with its own text (the `{` a missing `}` would close).
    pub also: Vec<(Span, String)>,
}

impl SyntaxError {
    pub fn new(code: crate::Code, message: String, span: Span, help: &str) -> Self {
        SyntaxError {
            code: code.as_str(),
            message,
            span,
            help: help.to_string(),
            label: None,
            also: Vec::new(),
        }
    }

    /// Set the text under the main span.
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Point at another place too.
    pub fn with_also(mut self, span: Span, text: impl Into<String>) -> Self {
        self.also.push((span, text.into()));
        self
    }
}

impl std::fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at byte {}", self.message, self.span.start)
    }
}

impl std::error::Error for SyntaxError {}
