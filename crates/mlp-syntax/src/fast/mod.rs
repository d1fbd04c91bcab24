//! A hand-written parser for well-formed files, about ten times faster than the pest one
//! and without its token queue. It builds exactly the tree that the grammar
//! (`grammar/mlp.pest`) and `parser::build::Builder` build, and gives up at the first
//! thing it does not expect, saying what it was reading and where ([`GiveUp`]): then
//! `parse` runs the pest parser, which finds the error and explains it. Unknown keywords,
//! out-of-range numbers and bad escapes are left to pest too.
//!
//! Every rule names the grammar rule it follows. Implicit whitespace (`skip`) stands where
//! pest inserts it: between the parts of non-atomic rules, never inside atomic ones.
//! Differential tests (`tests/fast.rs`, the fuzz target) check that both parsers agree, and
//! `tests/fast_coverage.rs` that every example and valid fixture takes this parser.
//!
//! The parts, each built on the ones before it: `cursor` (the position, whitespace and
//! comments, atomic tokens), `values` (values, strings), `expr` (expressions), `items`.

mod cursor;
mod expr;
mod items;
mod values;

pub use self::cursor::GiveUp;
use self::cursor::P;
use crate::ast::File;

/// The items and comments of `src`, or why the file is left to the pest parser.
pub(crate) fn parse(src: &str) -> Result<File, GiveUp> {
    let mut p = P::new(src);
    let mut items = Vec::new();
    p.skip();
    while p.i < p.b.len() {
        items.push(p.top_item()?);
        p.skip();
    }
    Ok(File {
        items,
        comments: p.comments,
    })
}
