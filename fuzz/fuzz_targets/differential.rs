//! The two parsers against each other, and `mlp fmt` against the parser: wherever the
//! hand-written parser reads a text, pest builds the same tree; a text that parses formats
//! to a text that parses to the same tree (spans aside) with the same comments, and
//! formatting that again changes nothing. The invariants are the ones the syntax tests
//! check (`crates/mlp-syntax/tests/support/invariants.rs`).

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../crates/mlp-syntax/tests/support/invariants.rs"]
mod invariants;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        invariants::check_text(text);
    }
});
