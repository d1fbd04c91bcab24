//! The `.mlp` language front end: the pest grammar (`grammar/mlp.pest`) to a typed syntax
//! tree with byte spans. Pure: no I/O, no panics on any input.

pub mod ast;
mod comments;
mod error;
mod fast;
pub mod fmt;
mod parser;

pub use error::SyntaxError;
pub use fmt::format;
pub use parser::{parse, parse_expr, parse_fast, parse_with_pest};

/// Every reserved word of the language.
pub const KEYWORDS: &[&str] = &[
    "pipeline",
    "params",
    "param",
    "env",
    "stage",
    "for",
    "include",
    "in",
    "out",
    "metrics",
    "after",
    "run",
    "check",
    "gate",
    "when",
    "every",
    "timeout",
    "retry",
    "fallback",
    "resources",
    "executor",
    "always",
    "frozen",
    "promote",
    "true",
    "false",
];

/// Whether `word` is reserved.
pub fn is_keyword(word: &str) -> bool {
    KEYWORDS.contains(&word)
}
