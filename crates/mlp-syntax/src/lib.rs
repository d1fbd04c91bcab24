//! The `.mlp` language front end: the pest grammar (`grammar/mlp.pest`) to a typed syntax
//! tree with byte spans. Pure: no I/O, no panics on any input.

pub mod ast;
pub mod codes;
mod comments;
mod error;
mod fast;
pub mod fmt;
mod parser;

pub use codes::Code;
pub use error::SyntaxError;
pub use fast::GiveUp;
pub use fmt::format;
pub use parser::{parse, parse_expr, parse_fast, parse_fast_or_why, parse_with_pest};

/// Every reserved word of the language: the item keywords (`ast::TOP_KEYWORDS`,
/// `ast::STAGE_KEYWORDS`) and the two boolean literals.
pub fn is_keyword(word: &str) -> bool {
    ast::TOP_KEYWORDS.contains(&word)
        || ast::STAGE_KEYWORDS.contains(&word)
        || matches!(word, "true" | "false")
}
