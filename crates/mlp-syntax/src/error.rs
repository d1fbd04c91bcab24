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
}

impl SyntaxError {
    pub fn new(code: &'static str, message: String, span: Span, help: &str) -> Self {
        SyntaxError {
            code,
            message,
            span,
            help: help.to_string(),
        }
    }
}

impl std::fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at byte {}", self.message, self.span.start)
    }
}

impl std::error::Error for SyntaxError {}
