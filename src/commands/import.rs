//! `mlp import dvc`: write a `pipeline.mlp` from a DVC project, and say what became what.

use std::path::{Path, PathBuf};

use crate::cli::ImportDvcArgs;
use crate::exit::ExitStatus;

pub fn dvc(args: &ImportDvcArgs) -> ExitStatus {
    let dir = &args.dir;
    if !dir.is_dir() {
        return ExitStatus::Usage.error(format!("{} is not a directory", dir.display()));
    }
    let to_stdout = args.output.as_deref() == Some(Path::new("-"));
    let target: PathBuf = match &args.output {
        Some(o) if !to_stdout => o.clone(),
        _ => dir.join("pipeline.mlp"),
    };
    if !to_stdout {
        // The pipeline's paths are relative to its own directory: it must sit in the
        // project's.
        let parent = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let same = match (parent.canonicalize(), dir.canonicalize()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        };
        if !same {
            return ExitStatus::Usage.error(format!(
                "{} is not in {}: the pipeline's paths are relative to its directory, so it must be written in the DVC project's directory (or use `-o -` to print it)",
                target.display(),
                dir.display()
            ));
        }
        if target.exists() && !args.force {
            return ExitStatus::Failure.error(format!(
                "{} exists; pass --force to overwrite it",
                target.display()
            ));
        }
    }
    let name = dir
        .canonicalize()
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "pipeline".into());
    let import = match mlp_import::dvc(dir, &name) {
        Ok(i) => i,
        Err(e) => return ExitStatus::Failure.error(e),
    };
    let source = match mlp_syntax::format(&import.source) {
        Ok(s) => s,
        Err(errs) => {
            let d = mlp_plan::syntax_diagnostics("(generated)", &import.source, errs);
            eprint!("{}", d.render(crate::diagnostics::style()));
            return ExitStatus::Failure
                .error("the generated pipeline does not parse (a bug in `mlp import dvc`)");
        }
    };
    if to_stdout {
        out!("{source}");
    } else if let Err(e) = std::fs::write(&target, &source) {
        return ExitStatus::Failure.error(format!("cannot write {}: {e}", target.display()));
    }
    let n = import.stages.len();
    note!(
        "imported {n} DVC stage{} into {}",
        if n == 1 { "" } else { "s" },
        if to_stdout {
            "standard output".to_string()
        } else {
            target.display().to_string()
        }
    );
    for (dvc, mlp) in &import.stages {
        note!("  stage {dvc} -> {mlp}");
    }
    for note in &import.notes {
        note!("  {note}");
    }
    for w in &import.warnings {
        eprintln!("warning: {w}");
    }
    ExitStatus::Success
}
