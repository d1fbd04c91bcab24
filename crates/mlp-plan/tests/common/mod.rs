//! What the plan's integration tests share.

use std::path::Path;

use mlp_plan::{Options, Pipeline};

/// Plans `src` as `p.mlp` in a root that does not exist: the pipeline, or the codes of
/// its diagnostics.
pub fn load(src: &str) -> Result<Pipeline, Vec<&'static str>> {
    mlp_plan::load_str(
        "p.mlp",
        src,
        Path::new("/nonexistent-mlp-root"),
        &Options::default(),
    )
    .map(|p| p.pipeline)
    .map_err(|d| d.items.iter().map(|i| i.code).collect())
}
