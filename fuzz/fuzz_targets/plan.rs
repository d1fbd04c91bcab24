//! The planner over several files: the input is split at NUL bytes into a pipeline, an
//! included file and a params file (YAML, then TOML and JSON by the pipeline's choice),
//! laid over a root that does not exist (`Options::overlay`, as the language server lays
//! an editor's buffers), and planned with `mlp_plan::load`. Nothing may panic; a plan
//! renders as a graph, diagnostics as text and JSON.

#![no_main]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use mlp_plan::{Options, Style};

const ROOT: &str = "/nonexistent-mlp-fuzz-root";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Paths outside the root could name real files; the overlay covers only these.
    if text.contains("..") || text.contains("\"/") {
        return;
    }
    let mut parts = text.splitn(3, '\0');
    let pipeline = parts.next().unwrap_or_default();
    let include = parts.next().unwrap_or_default();
    let params = parts.next().unwrap_or_default();
    let root = Path::new(ROOT);
    let mut opts = Options::default();
    let mut lay = |name: &str, text: &str| {
        opts.overlay
            .insert(PathBuf::from(ROOT).join(name), Arc::new(text.to_string()));
    };
    lay("pipeline.mlp", pipeline);
    lay("inc.mlp", include);
    lay("sub/inc.mlp", include);
    for name in ["params.yaml", "params.toml", "params.json"] {
        lay(name, params);
    }
    // `--set` of the first key the params text names, when there is one.
    if let Some(key) = params
        .lines()
        .next()
        .and_then(|l| l.split([':', '=']).next())
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() < 32)
    {
        opts.overrides.push((key.to_string(), "1".to_string()));
    }
    match mlp_plan::load(&root.join("pipeline.mlp"), &opts) {
        Ok(plan) => {
            let _ = mlp_plan::graph::ascii(&plan.pipeline);
        }
        Err(diags) => {
            let _ = diags.render(Style::Plain);
            let _ = diags.to_json();
        }
    }
});
