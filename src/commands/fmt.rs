//! `mlp fmt`: rewrite `.mlp` files in canonical layout; with `--check`, only report.

use std::path::{Path, PathBuf};

use crate::cli::{Cli, FmtArgs};
use crate::diagnostics;
use crate::exit::{self, ExitStatus};
use crate::pipeline_file;

pub fn fmt(cli: &Cli, args: &FmtArgs) -> ExitStatus {
    let files: Vec<PathBuf> = if args.files.is_empty() {
        match pipeline_file::find_or_fail(cli) {
            Ok(f) => sources_of(&f),
            Err(status) => return status,
        }
    } else {
        args.files.clone()
    };
    let mut unformatted = 0;
    let mut errors = 0;
    for f in &files {
        let bytes = match mlp_plan::read_source_file(f) {
            Ok(b) => b,
            Err(e) => {
                errors += 1;
                exit::command_error("fmt", format!("cannot read {}: {e}", f.display()));
                continue;
            }
        };
        let Ok(text) = String::from_utf8(bytes) else {
            errors += 1;
            exit::command_error(
                "fmt",
                format!("{} is not UTF-8 text; save it as UTF-8", f.display()),
            );
            continue;
        };
        let out = match mlp_syntax::format(&text) {
            Ok(o) => o,
            Err(errs) => {
                errors += 1;
                let d = mlp_plan::syntax_diagnostics(&f.display().to_string(), &text, errs);
                eprint!("{}", d.render(diagnostics::style()));
                continue;
            }
        };
        if out == text {
            continue;
        }
        unformatted += 1;
        if args.check {
            outln!("{}", f.display());
        } else if let Err(e) = write_atomic(f, &out) {
            errors += 1;
            exit::command_error("fmt", format!("cannot write {}: {e}", f.display()));
        }
    }
    if errors > 0 {
        ExitStatus::Failure
    } else if args.check && unformatted > 0 {
        eprintln!(
            "{unformatted} file{} not formatted; run `mlp fmt`",
            if unformatted == 1 { "" } else { "s" }
        );
        ExitStatus::Unformatted
    } else {
        ExitStatus::Success
    }
}

/// The pipeline file and every `.mlp` file it includes (when they parse).
fn sources_of(file: &Path) -> Vec<PathBuf> {
    match mlp_plan::load(file, &mlp_plan::Options::default()) {
        Ok(plan) => {
            let root = file.parent().unwrap_or(Path::new(""));
            plan.pipeline
                .sources
                .iter()
                .filter(|s| s.ends_with(".mlp"))
                .map(|s| root.join(s))
                .collect()
        }
        Err(_) => vec![file.to_path_buf()],
    }
}

fn write_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("mlp.fmt{}", std::process::id()));
    std::fs::write(&tmp, text)?;
    if let Ok(meta) = std::fs::metadata(path) {
        let _ = std::fs::set_permissions(&tmp, meta.permissions());
    }
    std::fs::rename(&tmp, path)
}
