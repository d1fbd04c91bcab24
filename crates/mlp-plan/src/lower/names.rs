//! Pass 4, names: every stage name valid and unique; and how a reference to a stage by
//! name is resolved.

use std::collections::HashMap;

use mlp_syntax::ast::Span;

use super::{Lowerer, RawStage};
use crate::codes::Code;
use crate::diag::{Diagnostic, did_you_mean};

impl Lowerer {
    /// Fill `by_name` (the first stage of each name) and `stage_names`.
    pub(super) fn names(&mut self, raw: &[RawStage]) {
        let mut by_name: HashMap<String, usize> = HashMap::new();
        for (i, r) in raw.iter().enumerate() {
            if r.bad_name {
                continue;
            }
            if !valid_name(&r.name) {
                self.err(
                    Diagnostic::new(Code::InvalidStageName, format!("`{}` is not a valid stage name", r.name))
                        .at(r.file, r.name_span, "this name")
                        .help("stage names use letters, digits, `_` and `-`, and start with a letter or `_`"),
                );
            }
            if let Some(&j) = by_name.get(&r.name) {
                self.duplicate(r, &raw[j]);
            } else {
                by_name.insert(r.name.clone(), i);
            }
        }
        self.by_name = by_name;
        self.stage_names = raw.iter().map(|r| r.name.clone()).collect();
    }

    /// `r` has the name of `first`, an earlier stage.
    fn duplicate(&self, r: &RawStage, first: &RawStage) {
        // The same stage written once in a `for` loop, made again for another value.
        let same_place =
            first.file == r.file && first.name_span == r.name_span && !r.vars.is_empty();
        let mut d = Diagnostic::new(
            Code::DuplicateStage,
            format!("stage `{}` is defined twice", r.name),
        );
        if same_place {
            d = d.at(
                r.file,
                r.name_span,
                format!(
                    "the same name for every value of `{}`",
                    r.vars[r.vars.len() - 1].0
                ),
            );
        } else {
            d = d.at(r.file, r.name_span, "defined again here");
            if first.file == r.file {
                d = d.also(first.name_span, "first defined here");
            }
        }
        d = d.help(if r.vars.is_empty() {
            "rename one of the stages".to_string()
        } else {
            let text = &self.sources.files[r.file].text[r.name_span.start..r.name_span.end];
            let stem = text.strip_suffix('"').unwrap_or(text).trim_start_matches('"');
            format!(
                "a `for` loop makes one stage per value: use the loop variable in the name (`\"{stem}_${{{}}}\"`)",
                r.vars[r.vars.len() - 1].0
            )
        });
        self.err(d);
    }

    /// The stage named `name` (`None`: no such stage, reported at `span`).
    pub(super) fn stage_ref(&self, f: usize, name: &str, span: Span) -> Option<usize> {
        if let Some(&j) = self.by_name.get(name) {
            return Some(j);
        }
        let names = &self.stage_names;
        let help = did_you_mean(name, names.iter().map(String::as_str)).unwrap_or_else(|| {
            if names.is_empty() {
                "the pipeline has no stages yet".into()
            } else {
                let mut shown: Vec<&str> = Vec::new();
                for n in names {
                    if shown.len() == 12 {
                        break;
                    }
                    if !shown.contains(&n.as_str()) {
                        shown.push(n);
                    }
                }
                format!("the stages are: {}", backticked(&shown))
            }
        });
        self.err(
            Diagnostic::new(Code::UnknownStage, format!("unknown stage `{name}`"))
                .at(f, span, "no stage has this name")
                .help(help),
        );
        None
    }
}

fn valid_name(n: &str) -> bool {
    let mut chars = n.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// `` `a`, `b`, `c` `` for a help line.
pub(super) fn backticked<S: AsRef<str>>(names: &[S]) -> String {
    names
        .iter()
        .map(|n| format!("`{}`", n.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}
