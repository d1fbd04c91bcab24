//! What the engine's unit tests share: a pipeline planned from text.

use std::path::Path;

use mlp_plan::Pipeline;

/// Plan `text` as `pipeline.mlp` in `dir`; a diagnostic fails the test.
pub fn plan_in(dir: &Path, text: &str) -> Pipeline {
    mlp_plan::load_str("pipeline.mlp", text, dir, &mlp_plan::Options::default())
        .unwrap_or_else(|d| panic!("{d:?}"))
        .pipeline
}
