//! `mlp watch`: run, then rerun exactly what each edit invalidates.

use mlp_engine::run::{self, RunOptions};

use crate::cli::{Cli, ExecutorArg, WatchArgs};
use crate::commands::run::default_jobs;
use crate::diagnostics;
use crate::exit::{self, ExitStatus};
use crate::human::plural;
use crate::pipeline_file::{sets_and_file, workspace_of};
use crate::progress;

pub fn watch(cli: &Cli, args: &WatchArgs) -> ExitStatus {
    let (sets, file) = match sets_and_file(cli, &args.set) {
        Ok(x) => x,
        Err(status) => return status,
    };
    let (_, name) = workspace_of(&file);
    let jobs = args.jobs.unwrap_or_else(default_jobs);
    let opts = mlp_watch::WatchOptions {
        file,
        run: RunOptions {
            targets: args.stages.clone(),
            jobs: jobs.max(1),
            verbose: args.verbose,
            overrides: sets,
            pipeline_file: name,
            executor: args.executor.map(ExecutorArg::kind),
            ..Default::default()
        },
        debounce: std::time::Duration::from_millis(args.debounce),
        timeout: args.timeout,
    };
    let ui = WatchUi {
        json: args.json,
        verbose: args.verbose,
    };
    // The watcher says its own errors (as events, below) and returns its exit code.
    ExitStatus::from_code(mlp_watch::watch(opts, &ui))
}

/// What the watcher shows: the run's progress as `mlp run` shows it, and its own events.
struct WatchUi {
    json: bool,
    verbose: bool,
}

impl mlp_watch::Ui for WatchUi {
    fn reporter(&self) -> Box<dyn run::Reporter> {
        progress::reporter(self.json, self.verbose)
    }

    fn diagnostics(&self, d: &mlp_plan::Diagnostics) {
        diagnostics::report(d, self.json);
    }

    fn event(&self, e: &mlp_watch::WatchEvent) {
        use mlp_watch::WatchEvent as W;
        if self.json {
            outln!("{}", mlp_watch::event_json(e));
            return;
        }
        match e {
            W::Watching { dirs, stages } => {
                note!(
                    "watching {} ({}); Ctrl-C to stop",
                    plural(*stages, "stage"),
                    plural(*dirs, "directory").replace("directorys", "directories")
                )
            }
            W::Changed { paths } => {
                let shown: Vec<&str> = paths.iter().take(5).map(String::as_str).collect();
                let more = if paths.len() > 5 {
                    format!(" and {} more", paths.len() - 5)
                } else {
                    String::new()
                };
                note!("── changed: {}{more}", shown.join(", "));
            }
            W::Restart { stage } => {
                note!("  ↻ {stage}: its inputs changed while it ran; stopped, it runs again")
            }
            W::Timer { stages } => note!("── `every` expired: {}", stages.join(", ")),
            W::PlanError { errors } => eprintln!(
                "the pipeline has {errors} error{}; watching until it is fixed",
                if *errors == 1 { "" } else { "s" }
            ),
            W::RunError { message } => exit::command_error("watch", message),
            W::Stopped => note!("stopped"),
            W::TimedOut => note!("stopped: --timeout reached"),
        }
    }
}
