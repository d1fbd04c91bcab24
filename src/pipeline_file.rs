//! Finding the pipeline file and its workspace, reading `--set`, and loading the plan:
//! what most commands do first.

use std::path::{Path, PathBuf};

use std::time::Duration;

use mlp_engine::history::{self, History};
use mlp_engine::lock::{self, Patience};
use mlp_engine::workspace::Workspace;
use mlp_plan::{Options, Plan};

use crate::cli::Cli;
use crate::diagnostics;
use crate::exit::{self, ExitStatus};

/// The pipeline file: `-f FILE`, else `pipeline.mlp` here or in a parent directory.
pub fn find(cli: &Cli) -> Result<PathBuf, String> {
    if let Some(f) = &cli.file {
        return Ok(f.clone());
    }
    let cwd =
        std::env::current_dir().map_err(|e| format!("cannot read the current directory: {e}"))?;
    let mut dir: Option<&Path> = Some(&cwd);
    while let Some(d) = dir {
        let p = d.join("pipeline.mlp");
        if p.is_file() {
            return Ok(relative_to(&p, &cwd));
        }
        dir = d.parent();
    }
    Err(format!(
        "no `pipeline.mlp` in `{}` or any parent directory; pass the pipeline file with `-f FILE`",
        cwd.display()
    ))
}

/// [`find`], saying why not and giving the exit status when there is none.
pub fn find_or_fail(cli: &Cli) -> Result<PathBuf, ExitStatus> {
    find(cli).map_err(|m| ExitStatus::Failure.error(m))
}

fn relative_to(p: &Path, base: &Path) -> PathBuf {
    p.strip_prefix(base)
        .map(Path::to_path_buf)
        .unwrap_or_else(|_| p.to_path_buf())
}

/// The `--set KEY=VALUE` overrides.
pub fn parse_sets(set: &[String]) -> Result<Vec<(String, String)>, String> {
    set.iter()
        .map(|s| match s.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
            _ => Err(format!(
                "`--set {s}`: write `--set KEY=VALUE`, e.g. `--set train.lr=0.05`"
            )),
        })
        .collect()
}

/// The `--set` overrides and the pipeline file; on a problem, the exit status after saying it.
pub fn sets_and_file(
    cli: &Cli,
    set: &[String],
) -> Result<(Vec<(String, String)>, PathBuf), ExitStatus> {
    let sets = parse_sets(set).map_err(|m| ExitStatus::Usage.error(m))?;
    let file = find_or_fail(cli)?;
    Ok((sets, file))
}

/// Load and validate, printing diagnostics on failure.
pub fn load(cli: &Cli, overrides: Vec<(String, String)>, json: bool) -> Result<Plan, ExitStatus> {
    let file = find_or_fail(cli)?;
    mlp_plan::load(
        &file,
        &Options {
            overrides,
            ..Options::default()
        },
    )
    .map_err(|d| {
        diagnostics::report(&d, json);
        diagnostics::exit_status(&d)
    })
}

/// The workspace of a pipeline file (the directory that holds it), and the file's name.
pub fn workspace_of(file: &Path) -> (Workspace, String) {
    let root = file.parent().unwrap_or(Path::new(""));
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    (Workspace::new(root), name)
}

/// The workspace of the pipeline file, or the exit status after saying why there is none.
pub fn workspace(cli: &Cli) -> Result<Workspace, ExitStatus> {
    Ok(workspace_of(&find_or_fail(cli)?).0)
}

/// The workspace's run history, opened for reading; or the exit status after saying why
/// it cannot be (nothing ran yet, a run holds the store past the wait).
pub fn history_store(cli: &Cli) -> Result<History, ExitStatus> {
    let ws = workspace(cli)?;
    patiently(|p| history::open(&ws, p)).map_err(exit::engine_error)
}

/// How long a read-only command waits for a command holding the workspace:
/// `MLP_LOCK_WAIT` seconds, else 30.
pub fn read_wait() -> Duration {
    std::env::var("MLP_LOCK_WAIT")
        .ok()
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map_or(lock::READ_WAIT, Duration::from_secs_f64)
}

/// Calls `f` with the patience of a read-only command: it waits [`read_wait`] for the
/// workspace, saying once who it waits for.
pub fn patiently<T>(f: impl FnOnce(&mut Patience<'_>) -> T) -> T {
    let wait = read_wait();
    let mut say = |holder: &str| {
        note!(
            "waiting for {holder} (up to {} s)",
            wait.as_secs_f64().round()
        )
    };
    f(&mut Patience {
        limit: Some(wait),
        cancel: None,
        waiting: Some(&mut say),
    })
}
