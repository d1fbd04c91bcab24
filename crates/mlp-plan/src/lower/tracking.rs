//! `tracking mlflow { uri = "http://127.0.0.1:5000"  experiment = "churn" }`: where runs
//! are exported when they end (one item at most, at the top of a file).

use std::collections::HashMap;

use mlp_syntax::ast::{self, Span};

use super::Lowerer;
use crate::codes::Code;
use crate::diag::{Diagnostic, did_you_mean};
use crate::model::Tracking;

impl Lowerer {
    /// The pipeline's `tracking` item, checked (`None` without one, or when it is wrong:
    /// every mistake is reported).
    pub(super) fn tracking(&self, items: &[(usize, &ast::Tracking)]) -> Option<Tracking> {
        let (fid, t) = *items.first()?;
        for (other_fid, other) in &items[1..] {
            let mut d = Diagnostic::new(
                Code::DuplicateTracking,
                "the pipeline has two `tracking` items",
            )
            .at(*other_fid, other.name.span, "again here");
            if *other_fid == fid {
                d = d.also(t.name.span, "first here");
            }
            self.err(d.help("keep one `tracking` item; runs go to one tracking server"));
        }
        if !Tracking::NAMES.contains(&t.name.node.as_str()) {
            let help = did_you_mean(&t.name.node, Tracking::NAMES)
                .unwrap_or_else(|| "the tracker is `mlflow`".into());
            self.err(
                Diagnostic::new(
                    Code::UnknownTracker,
                    format!("unknown tracker `{}`", t.name.node),
                )
                .at(fid, t.name.span, "not a tracker")
                .help(help),
            );
            return None;
        }
        let mut out = Tracking::default();
        let mut seen: HashMap<&str, Span> = HashMap::new();
        for set in t.settings.iter().flatten() {
            let n = set.name.node.as_str();
            let bad = |msg: String, label: &str, span: Span, help: String| {
                self.err(
                    Diagnostic::new(Code::TrackingSetting, msg)
                        .at(fid, span, label.to_string())
                        .help(help),
                );
            };
            if !Tracking::SETTINGS.contains(&n) {
                let help = did_you_mean(n, Tracking::SETTINGS)
                    .unwrap_or_else(|| "`tracking mlflow` takes `uri` and `experiment`".into());
                bad(
                    format!("unknown MLflow setting `{n}`"),
                    "not a setting",
                    set.name.span,
                    help,
                );
                continue;
            }
            if let Some(prev) = seen.insert(n, set.name.span) {
                self.err(
                    Diagnostic::new(Code::TrackingSetting, format!("`{n}` is set twice"))
                        .at(fid, set.name.span, "again here")
                        .also(prev, "first here")
                        .help("set each setting once"),
                );
                continue;
            }
            let ast::SettingValue::Value(ast::Value {
                kind: ast::ValueKind::Str(s),
                ..
            }) = &set.value
            else {
                bad(
                    format!("`{n}` is a string"),
                    "not a string",
                    set.value.span(),
                    format!("write `{n} = \"...\"`"),
                );
                continue;
            };
            let v = self.plain_str(fid, s, self.scope(&[]));
            if n == "uri" {
                let authority = v.split_once("://").map_or("", |(_, rest)| rest);
                if authority.split('/').next().is_some_and(|h| h.contains('@')) {
                    bad(
                        "`uri` holds a user name or password".into(),
                        "credentials in the pipeline",
                        set.value.span(),
                        "keep secrets out of the pipeline: set MLFLOW_TRACKING_TOKEN, or MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD".into(),
                    );
                    continue;
                }
                if !v.starts_with("http://") {
                    bad(
                        "`uri` is not an `http://` URI: mlp reaches MLflow over plain HTTP".to_string(),
                        "not an `http://` URI",
                        set.value.span(),
                        "give the tracking server's address: `uri = \"http://127.0.0.1:5000\"` (no credentials here: set MLFLOW_TRACKING_TOKEN, or MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD)".into(),
                    );
                    continue;
                }
                out.uri = Some(v);
            } else {
                out.experiment = Some(v);
            }
        }
        Some(out)
    }
}
