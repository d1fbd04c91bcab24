//! `mlp report`: the runs as one self-contained HTML page, or as Markdown with the charts
//! as SVG files beside it.

use std::path::{Path, PathBuf};

use crate::cli::{Cli, ReportArgs, ReportFormat};
use crate::exit::ExitStatus;
use crate::history_view;
use crate::pipeline_file::history_store;

pub fn report(cli: &Cli, args: &ReportArgs) -> ExitStatus {
    let store = match history_store(cli) {
        Ok(s) => s,
        Err(status) => return status,
    };
    if args.last == 0 {
        return ExitStatus::Usage.error("`--last 0` reports nothing: give 1 or more");
    }
    let report = match history_view::load(cli, &*store, args.last, &args.metrics, true) {
        Ok(r) => r,
        Err(status) => return status,
    };
    drop(store);
    let out = args.output.clone().unwrap_or_else(|| {
        PathBuf::from(match args.format {
            ReportFormat::Html => "mlp-report.html",
            ReportFormat::Md => "mlp-report.md",
        })
    });
    let stdout = out.as_os_str() == "-";
    let (text, files) = match args.format {
        ReportFormat::Html => (mlp_report::html(&report), Vec::new()),
        ReportFormat::Md => {
            let dir = if stdout {
                "mlp-report_files".to_string()
            } else {
                format!(
                    "{}_files",
                    out.file_stem()
                        .map_or("mlp-report".into(), |s| s.to_string_lossy())
                )
            };
            let md = mlp_report::markdown(&report, &dir);
            (md.text, md.files)
        }
    };
    let base = if stdout {
        Path::new(".")
    } else {
        out.parent().unwrap_or(Path::new(""))
    };
    for (rel, svg) in &files {
        let path = base.join(rel);
        if let Some(d) = path.parent()
            && let Err(e) = std::fs::create_dir_all(d)
        {
            return ExitStatus::Failure.error(format!("cannot create `{}`: {e}", d.display()));
        }
        if let Err(e) = std::fs::write(&path, svg) {
            return ExitStatus::Failure.error(format!("cannot write `{}`: {e}", path.display()));
        }
    }
    if stdout {
        out!("{text}");
        return ExitStatus::Success;
    }
    if let Err(e) = std::fs::write(&out, &text) {
        return ExitStatus::Failure.error(format!("cannot write `{}`: {e}", out.display()));
    }
    let charts = if files.is_empty() {
        String::new()
    } else {
        format!(", {} charts beside it", files.len())
    };
    note!(
        "wrote `{}` ({} runs, {} KB{charts})",
        out.display(),
        report.runs.len(),
        text.len().div_ceil(1024)
    );
    ExitStatus::Success
}
