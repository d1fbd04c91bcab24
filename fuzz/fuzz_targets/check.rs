//! Any bytes through the whole front end, one file: both parsers (which must agree),
//! format, plan with `mlp_plan::load_str`, render the diagnostics. Nothing may panic. The
//! slow, broad target; `parse`, `differential` and `plan` each go deeper into one part.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use mlp_plan::{Options, Style};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Absolute include or params paths name real files; sources are read as regular files
    // only (a device is refused), but /proc and /sys are large and slow.
    if text.contains("/dev") || text.contains("/proc") || text.contains("/sys") {
        return;
    }
    // The hand-written parser reads a file only as the pest grammar does.
    if let Some(fast) = mlp_syntax::parse_fast(text) {
        assert_eq!(
            mlp_syntax::parse_with_pest(text),
            Ok(fast),
            "the parsers differ"
        );
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
