//! `mlp import dvc`: translate a DVC project (`dvc.yaml` files, their params and vars
//! files) into one `pipeline.mlp` that plans the same DAG.
//!
//! Pure: reads the project's files and returns the generated source, what was mapped to
//! what, and warnings with their `dvc.yaml` line. It prints nothing and writes nothing.
//!
//! DVC's templating is resolved as DVC resolves it (`template`, `stages`); what stays
//! live in mlp (`${params.KEY}`, `for` loops) is chosen where mlp renders the same text
//! (`emit`).

mod emit;
mod project;
mod stages;
mod template;
mod value;

use std::path::Path;

/// Something the importer could not map exactly, at a `dvc.yaml` line.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Warning {
    /// The `dvc.yaml` it is about, from the project root.
    pub file: String,
    /// 1-based.
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

/// The result of an import.
#[derive(Clone, Debug)]
pub struct Import {
    /// The mlp source (not yet formatted by `mlp fmt`).
    pub source: String,
    /// Each DVC stage (as `dvc dag` names it) and the mlp stage it became.
    pub stages: Vec<(String, String)>,
    /// Other mappings, one line each (params files, loops, tracked data).
    pub notes: Vec<String>,
    pub warnings: Vec<Warning>,
}

/// Import the DVC project at `root`; `name` becomes the pipeline's name.
pub fn dvc(root: &Path, name: &str) -> Result<Import, String> {
    let files = project::dvc_files(root)?;
    if files.is_empty() {
        return Err(format!("no dvc.yaml in {}", root.display()));
    }
    let mut resolved = stages::resolve(root, &files);
    let mut top_metrics = Vec::new();
    for f in &files {
        for (key, what) in [
            ("metrics", "top-level metrics"),
            ("plots", "top-level plots"),
            ("params", "top-level params"),
            ("artifacts", "artifacts"),
            ("datasets", "datasets"),
        ] {
            let Some(v) = f.doc.get(key) else { continue };
            match key {
                "metrics" => {
                    for m in v
                        .as_sequence()
                        .into_iter()
                        .flatten()
                        .filter_map(|m| m.as_str())
                    {
                        top_metrics.push(project::join(&f.dir, m));
                    }
                }
                "params" => {
                    for p in v
                        .as_sequence()
                        .into_iter()
                        .flatten()
                        .filter_map(|p| p.as_str())
                    {
                        let p = project::join(&f.dir, p);
                        if !resolved.param_files.contains(&p) {
                            resolved.param_files.push(p);
                        }
                    }
                }
                _ => resolved.notes.push(Warning {
                    file: f.rel.clone(),
                    line: project::line_of(&f.text, &[key]),
                    message: format!("{what} have no mlp equivalent: ignored"),
                }),
            }
        }
        for key in f.doc.keys().filter_map(|k| k.as_str()) {
            if ![
                "stages",
                "vars",
                "metrics",
                "plots",
                "params",
                "artifacts",
                "datasets",
            ]
            .contains(&key)
            {
                resolved.notes.push(Warning {
                    file: f.rel.clone(),
                    line: project::line_of(&f.text, &[key]),
                    message: format!("`{key}` is not a dvc.yaml section mlp knows: ignored"),
                });
            }
        }
    }
    let names: Vec<String> = files.iter().map(|f| f.rel.clone()).collect();
    let mut e = emit::emit(root, name, &names, resolved, &top_metrics);
    // By place, each once (a generated stage repeats its template's warnings).
    let mut seen = std::collections::BTreeSet::new();
    e.warnings.retain(|w| seen.insert(w.clone()));
    e.warnings
        .sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
    Ok(Import {
        source: e.source,
        stages: e.mapping,
        notes: e.notes,
        warnings: e.warnings,
    })
}

#[cfg(test)]
mod tests;
