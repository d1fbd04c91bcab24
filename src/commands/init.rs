//! `mlp init [DIR]`: a new pipeline from a template. Writes nothing if any file it would
//! write exists already.

use std::path::Path;

use crate::cli::{InitArgs, Template};
use crate::exit::{self, ExitStatus};

const MINIMAL_PIPELINE: &str = include_str!("../../templates/minimal/pipeline.mlp");
const MINIMAL_PARAMS: &str = include_str!("../../templates/minimal/params.yaml");
const QUICKSTART_PIPELINE: &str = include_str!("../../examples/quickstart/pipeline.mlp");
const QUICKSTART_PARAMS: &str = include_str!("../../examples/quickstart/params.yaml");
const QUICKSTART_MAKE_DATA: &str = include_str!("../../examples/quickstart/src/make_data.py");
const QUICKSTART_SPLIT: &str = include_str!("../../examples/quickstart/src/split.py");
const QUICKSTART_COMMON: &str = include_str!("../../examples/quickstart/src/common.py");
const QUICKSTART_TRAIN: &str = include_str!("../../examples/quickstart/src/train.py");
const QUICKSTART_EVALUATE: &str = include_str!("../../examples/quickstart/src/evaluate.py");
const GITIGNORE: &str = "# mlp's state and cache (see `mlp gc`)\n.mlp/\n";

pub fn init(args: &InitArgs) -> ExitStatus {
    let files: Vec<(&str, &str)> = match args.template {
        Template::Minimal => vec![
            ("pipeline.mlp", MINIMAL_PIPELINE),
            ("params.yaml", MINIMAL_PARAMS),
            (".gitignore", GITIGNORE),
        ],
        Template::Quickstart => vec![
            ("pipeline.mlp", QUICKSTART_PIPELINE),
            ("params.yaml", QUICKSTART_PARAMS),
            ("src/make_data.py", QUICKSTART_MAKE_DATA),
            ("src/split.py", QUICKSTART_SPLIT),
            ("src/common.py", QUICKSTART_COMMON),
            ("src/train.py", QUICKSTART_TRAIN),
            ("src/evaluate.py", QUICKSTART_EVALUATE),
            (".gitignore", GITIGNORE),
        ],
    };
    let dir = &args.dir;
    let taken: Vec<String> = files
        .iter()
        .filter(|(rel, _)| dir.join(rel).symlink_metadata().is_ok())
        .map(|(rel, _)| format!("`{}`", dir.join(rel).display()))
        .collect();
    if !taken.is_empty() {
        return ExitStatus::Failure.error(format!(
            "init: {} already exist{}; nothing was written (init another directory: `mlp init DIR`)",
            taken.join(", "),
            if taken.len() == 1 { "s" } else { "" }
        ));
    }
    for (rel, text) in &files {
        if let Err(e) = write_new(&dir.join(rel), text) {
            exit::command_error(
                "init",
                format!("cannot write `{}`: {e}", dir.join(rel).display()),
            );
            return ExitStatus::Failure;
        }
    }
    let shown = if dir == Path::new(".") {
        String::new()
    } else {
        format!(" in `{}`", dir.display())
    };
    note!(
        "created a pipeline{shown}: {}",
        files.iter().map(|(r, _)| *r).collect::<Vec<_>>().join(", ")
    );
    note!("next: `mlp check`, then `mlp run`");
    ExitStatus::Success
}

/// Create `path` (and its directory), failing if it exists.
fn write_new(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d)?;
    }
    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    f.write_all(text.as_bytes())
}
