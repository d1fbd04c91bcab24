//! `remote "s3://bucket/cache" { pull = true }`: the team remote that `mlp push`,
//! `mlp pull` and `mlp run --pull` use (one item at most, at the top of a file).

use std::collections::HashMap;

use mlp_syntax::ast::{self, Span};

use super::Lowerer;
use crate::codes::Code;
use crate::diag::{Diagnostic, did_you_mean};
use crate::model::RemoteItem;

impl Lowerer {
    /// The pipeline's `remote` item, checked (`None` without one, or when it is wrong:
    /// every mistake is reported).
    pub(super) fn remote(&self, items: &[(usize, &ast::Remote)]) -> Option<RemoteItem> {
        let (fid, r) = *items.first()?;
        for (other_fid, other) in &items[1..] {
            let mut d = Diagnostic::new(
                Code::DuplicateRemote,
                "the pipeline has two `remote` items",
            )
            .at(*other_fid, other.url.span, "again here");
            if *other_fid == fid {
                d = d.also(r.url.span, "first here");
            }
            self.err(
                d.help("keep one `remote` item; `--remote URL` picks another for one command"),
            );
        }
        let url = self.plain_str(fid, &r.url, self.scope(&[]));
        if let Err(e) = crate::remote_url::parse(&url) {
            self.err(
                Diagnostic::new(Code::RemoteUrl, format!("bad remote URL: {e}"))
                    .at(fid, r.url.span, "this URL")
                    .help("a directory (`/shared/mlp-cache`), `file:///shared/mlp-cache` or `s3://bucket/prefix`; credentials come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"),
            );
            return None;
        }
        let mut out = RemoteItem { url, pull: false };
        let mut seen: HashMap<&str, Span> = HashMap::new();
        for set in r.settings.iter().flatten() {
            let n = set.name.node.as_str();
            if !RemoteItem::SETTINGS.contains(&n) {
                let help = did_you_mean(n, RemoteItem::SETTINGS)
                    .unwrap_or_else(|| "`remote` takes `pull = true` or `pull = false`".into());
                self.err(
                    Diagnostic::new(Code::RemoteSetting, format!("unknown remote setting `{n}`"))
                        .at(fid, set.name.span, "not a setting")
                        .help(help),
                );
                continue;
            }
            if let Some(prev) = seen.insert(n, set.name.span) {
                self.err(
                    Diagnostic::new(Code::RemoteSetting, format!("`{n}` is set twice"))
                        .at(fid, set.name.span, "again here")
                        .also(prev, "first here")
                        .help("set each setting once"),
                );
                continue;
            }
            match &set.value {
                ast::SettingValue::Value(ast::Value {
                    kind: ast::ValueKind::Bool(b),
                    ..
                }) => out.pull = *b,
                v => self.err(
                    Diagnostic::new(Code::RemoteSetting, format!("`{n}` is `true` or `false`"))
                        .at(fid, v.span(), "not a boolean")
                        .help(format!("write `{n} = true`")),
                ),
            }
        }
        Some(out)
    }
}
