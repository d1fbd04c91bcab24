//! `cache copy` / `cache link`: how a stage's outputs go into the object cache and come
//! back. One item at most at the top of the pipeline (every stage's default) and one in
//! a stage (that stage's).

use mlp_syntax::ast;

use super::{Building, Lowerer};
use crate::codes::Code;
use crate::diag::{Diagnostic, did_you_mean};
use crate::model::CacheMode;

impl Lowerer {
    /// The pipeline's `cache` items: the first sets the default mode, any other is E0146.
    pub(super) fn pipeline_cache(&mut self, items: &[(usize, &ast::Spanned<String>)]) {
        let Some(&(fid, first)) = items.first() else {
            return;
        };
        for (other_fid, other) in &items[1..] {
            let mut d = Diagnostic::new(Code::DuplicateCache, "the pipeline has two `cache` items")
                .at(*other_fid, other.span, "again here");
            if *other_fid == fid {
                d = d.also(first.span, "first here");
            }
            self.err(d.help("keep one `cache` item at the top; a stage may name its own"));
        }
        if let Some(m) = self.cache_mode(fid, first) {
            self.cache = m;
        }
    }

    /// A stage's own `cache` item.
    pub(super) fn stage_cache(&self, b: &mut Building<'_>, m: &ast::Spanned<String>) {
        if let Some(mode) = self.cache_mode(b.r.file, m) {
            b.stage.cache = mode;
        }
    }

    /// The mode a `cache` item names (`None`: unknown, reported as E0145).
    fn cache_mode(&self, fid: usize, m: &ast::Spanned<String>) -> Option<CacheMode> {
        let mode = CacheMode::parse(&m.node);
        if mode.is_none() {
            let help = did_you_mean(&m.node, CacheMode::NAMES).unwrap_or_else(|| {
                "the modes are `copy` (the default: a reflink where the filesystem has one, \
                 else a copy) and `link` (read-only hard links)"
                    .into()
            });
            self.err(
                Diagnostic::new(
                    Code::UnknownCacheMode,
                    format!("unknown cache mode `{}`", m.node),
                )
                .at(fid, m.span, "not a cache mode")
                .help(help),
            );
        }
        mode
    }
}
