//! Which team remote a command uses, and opening it: `--remote URL`, else `MLP_REMOTE`,
//! else the pipeline's `remote` item. Only the commands that use a remote call this, so
//! the no-op path and a plain `mlp run` never load `mlp-remote`.

use std::path::Path;
use std::sync::Arc;

use mlp_plan::model::Pipeline;
use mlp_remote::Remote;

use crate::exit::ExitStatus;

/// `-j` for transfers by default: requests are mostly waiting on the network.
pub const DEFAULT_JOBS: usize = 8;

/// The remote's URL by precedence (`None`: none is configured).
pub fn url(flag: Option<&str>, p: Option<&Pipeline>) -> Option<String> {
    if let Some(f) = flag.filter(|f| !f.is_empty()) {
        return Some(f.to_string());
    }
    if let Ok(e) = std::env::var("MLP_REMOTE")
        && !e.trim().is_empty()
    {
        return Some(e);
    }
    p.and_then(|p| p.remote.as_ref()).map(|r| r.url.clone())
}

/// Whether the pipeline asks `mlp run` to pull by default.
pub fn pull_by_default(p: &Pipeline) -> bool {
    p.remote.as_ref().is_some_and(|r| r.pull)
}

/// Opens the remote a command asked for; the error says how to name one.
pub fn open(
    flag: Option<&str>,
    p: Option<&Pipeline>,
    root: &Path,
    jobs: usize,
) -> Result<Arc<dyn Remote>, ExitStatus> {
    let Some(url) = url(flag, p) else {
        return Err(ExitStatus::Usage.error(
            "no remote: pass `--remote URL`, set MLP_REMOTE, or add `remote \"URL\"` to the pipeline",
        ));
    };
    mlp_remote::open(&url, root, jobs).map_err(|e| ExitStatus::Failure.error(e))
}

/// `-j` of a transfer command.
pub fn jobs(j: Option<usize>) -> Result<usize, ExitStatus> {
    match j {
        Some(0) => Err(ExitStatus::Usage.error("`-j 0`: give at least one job slot")),
        Some(n) => Ok(n),
        None => Ok(DEFAULT_JOBS),
    }
}

/// A stage name that is not in the pipeline: one line, with the closest name.
pub fn check_stages(p: &Pipeline, names: &[String]) -> Result<(), ExitStatus> {
    for n in names {
        if p.stage(n).is_none() {
            let hint = mlp_plan::diag::did_you_mean(n, p.stages.iter().map(|s| s.name.as_str()))
                .map(|m| format!("; {m}"))
                .unwrap_or_default();
            return Err(
                ExitStatus::Failure.error(format!("no stage `{n}` in pipeline `{}`{hint}", p.name))
            );
        }
    }
    Ok(())
}
