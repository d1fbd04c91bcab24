//! Any bytes through the whole front end: both parsers (which must agree), format, plan,
//! render the diagnostics. Nothing may panic.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use mlp_plan::{Options, Style};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Absolute include or params paths could name a device that never ends (`/dev/zero`).
    if text.contains("/dev") || text.contains("/proc") || text.contains("/sys") {
        return;
    }
    // The hand-written parser reads a file only as the pest grammar does.
    if let Some(fast) = mlp_syntax::parse_fast(text) {
        assert_eq!(mlp_syntax::parse_with_pest(text), Ok(fast), "the parsers differ");
    }
    let _ = mlp_syntax::format(text);
    // A root that does not exist: includes and params files fail to read, as they should.
    let root = Path::new("/nonexistent-mlp-fuzz-root");
    match mlp_plan::load_str("fuzz.mlp", text, root, &Options::default()) {
        Ok(plan) => {
            let _ = mlp_plan::graph::ascii(&plan.pipeline);
        }
        Err(diags) => {
            let _ = diags.render(Style::Plain);
            let _ = diags.to_json();
        }
    }
});
