//! The entry points: the hand-written parser (`crate::fast`) for well-formed files, the pest
//! grammar (`grammar`) for the rest; `build` turns pest's pairs into the AST and `errors`
//! explains what does not parse.

mod build;
mod errors;
mod grammar;

use pest::Parser as _;

use self::build::Builder;
use self::errors::{convert_error, detailed_error, found_at, next_token_end};
use self::grammar::{MlpParser, Rule};
use crate::Code;
use crate::ast::*;
use crate::error::SyntaxError;
use crate::fast::GiveUp;

/// Parse one `.mlp` source text. Unknown keywords are kept as `Unknown` items (the checker
/// reports them); anything else that does not parse is an error.
///
/// A well-formed file is read by the hand-written parser in `fast.rs`; any other by the
/// pest grammar, which also explains what is wrong. Both build the same tree.
pub fn parse(src: &str) -> Result<File, Vec<SyntaxError>> {
    if let Ok(file) = crate::fast::parse(src) {
        return Ok(file);
    }
    parse_with_pest(src)
}

/// The hand-written parser alone: `None` where it leaves the file to pest. For the tests
/// and the fuzzer that check both parsers agree.
#[doc(hidden)]
pub fn parse_fast(src: &str) -> Option<File> {
    crate::fast::parse(src).ok()
}

/// The hand-written parser alone, saying why it leaves a file to pest: the construct it
/// does not handle (or that is malformed) and the byte offset. For the test that every
/// example takes the fast parser.
#[doc(hidden)]
pub fn parse_fast_or_why(src: &str) -> Result<File, GiveUp> {
    crate::fast::parse(src)
}

/// The pest parser alone (see `parse_fast`).
#[doc(hidden)]
pub fn parse_with_pest(src: &str) -> Result<File, Vec<SyntaxError>> {
    let mut pairs = match MlpParser::parse(Rule::file, src) {
        Ok(p) => p,
        Err(e) => {
            let e = detailed_error(Rule::file, src).unwrap_or(e);
            return Err(vec![convert_error(src, e)]);
        }
    };
    let file = pairs.next().expect("the file rule always yields one pair");
    let mut b = Builder { errors: Vec::new() };
    let items: Vec<Item> = file
        .into_inner()
        .filter(|p| p.as_rule() != Rule::EOI)
        .map(|p| b.item(p))
        .collect();
    if !b.errors.is_empty() {
        return Err(b.errors);
    }
    let comments = crate::comments::collect(src, &crate::comments::unknown_spans(&items));
    Ok(File { items, comments })
}

/// Parse a single expression (used by tests and tools).
pub fn parse_expr(src: &str) -> Result<Expr, Vec<SyntaxError>> {
    let mut pairs = MlpParser::parse(Rule::expr, src).map_err(|e| {
        let e = detailed_error(Rule::expr, src).unwrap_or(e);
        vec![convert_error(src, e)]
    })?;
    let p = pairs.next().expect("expr yields one pair");
    if p.as_span().end() < src.trim_end().len() {
        let at = p.as_span().end();
        return Err(vec![SyntaxError::new(
            Code::Syntax,
            format!("unexpected {}", found_at(src, at)),
            Span::new(at, next_token_end(src, at)),
            "expected the end of the expression",
        )]);
    }
    let mut b = Builder { errors: Vec::new() };
    let e = b.expr(p);
    if b.errors.is_empty() {
        Ok(e)
    } else {
        Err(b.errors)
    }
}
