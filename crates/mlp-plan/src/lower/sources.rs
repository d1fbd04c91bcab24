//! Pass 1, the sources: the root file and its includes, depth first, read and parsed; the
//! params files the top-level items name; and what a syntax error looks like.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mlp_syntax::ast::{self, Span};

use super::{Lowerer, Scope};
use crate::codes::Code;
use crate::diag::Diagnostic;
use crate::paths::normalize;
use crate::value::Value;

impl Lowerer {
    /// The root file and every file it includes, depth first, in order.
    pub(super) fn collect_sources(
        &mut self,
        root_file: (usize, ast::File),
    ) -> Vec<(usize, ast::File)> {
        let mut files: Vec<(usize, ast::File)> = Vec::new();
        let mut stack = vec![self.canonical(&self.root.join(&self.rel_names[root_file.0]))];
        self.collect_includes(root_file, &mut files, &mut stack);
        files
    }

    pub(super) fn syntax_errors(&mut self, file: usize, errs: Vec<mlp_syntax::SyntaxError>) {
        for e in errs {
            let mut d = Diagnostic::new(e.code, e.message.clone()).at(file, e.span, label_for(&e));
            for (sp, text) in &e.also {
                d = d.also(*sp, text.clone());
            }
            self.err(d.help(e.help));
        }
    }

    /// Read and parse one file; `from` is where it was included (for the error's place).
    pub(super) fn read_source(
        &mut self,
        path: &Path,
        display: String,
        rel: String,
        from: Option<(usize, Span)>,
    ) -> Option<(usize, ast::File)> {
        let bytes = match self.read_file(path) {
            Ok(b) => b,
            Err(e) => {
                let d = match from {
                    Some((f, sp)) => Diagnostic::new(Code::CannotRead, format!("cannot read `{display}`: {e}"))
                        .at(f, sp, "included here")
                        .help("check the path: it is relative to the file that includes it"),
                    None => Diagnostic::new(Code::CannotRead, format!("cannot read `{display}`: {e}"))
                        .help("pass the pipeline file with `-f FILE`, or run mlp in a directory that has `pipeline.mlp`"),
                };
                self.err(d);
                return None;
            }
        };
        let text = match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => {
                let at = e.utf8_error().valid_up_to();
                let bytes = e.as_bytes();
                let valid = std::str::from_utf8(&bytes[..at]).unwrap_or_default();
                let (line, col) = crate::diag::line_col(valid, at);
                let mut d = Diagnostic::new(
                    Code::NotUtf8,
                    format!(
                        "`{display}` is not UTF-8 text: byte 0x{:02X} at line {line}, column {col}",
                        bytes[at]
                    ),
                )
                .help("save the file as UTF-8");
                if let Some((f, sp)) = from {
                    d = d.at(f, sp, "included here");
                }
                self.err(d);
                return None;
            }
        };
        let id = self.sources.add(display, text);
        self.rel_names.push(rel);
        let text = self.sources.files[id].text.clone();
        match mlp_syntax::parse(&text) {
            Ok(f) => Some((id, f)),
            Err(errs) => {
                self.syntax_errors(id, errs);
                None
            }
        }
    }

    fn canonical(&self, p: &Path) -> PathBuf {
        std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
    }

    fn collect_includes(
        &mut self,
        file: (usize, ast::File),
        out: &mut Vec<(usize, ast::File)>,
        stack: &mut Vec<PathBuf>,
    ) {
        let (fid, f) = file;
        let includes: Vec<ast::Str> = f
            .items
            .iter()
            .filter_map(|i| match &i.kind {
                ast::ItemKind::Include(s) => Some(s.clone()),
                _ => None,
            })
            .collect();
        let base_rel = Path::new(&self.rel_names[fid])
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        out.push((fid, f));
        for s in includes {
            let text = self.plain_str(fid, &s, Scope::empty());
            let rel = normalize(&base_rel.join(&text).to_string_lossy());
            let full = self.root.join(&rel);
            let canon = self.canonical(&full);
            if let Some(pos) = stack.iter().position(|p| *p == canon) {
                let chain: Vec<String> = stack[pos..]
                    .iter()
                    .map(|p| {
                        p.file_name()
                            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
                    })
                    .collect();
                self.err(
                    Diagnostic::new(
                        Code::IncludeCycle,
                        format!("include cycle: `{}` includes itself", rel),
                    )
                    .at(fid, s.span, "this include closes the cycle")
                    .help(format!(
                        "the cycle: {} → {}",
                        chain.join(" → "),
                        chain.first().cloned().unwrap_or_default()
                    )),
                );
                continue;
            }
            if out
                .iter()
                .any(|(i, _)| self.canonical(&self.root.join(&self.rel_names[*i])) == canon)
            {
                continue; // included twice (not a cycle): once is enough
            }
            let display = self.display_of(&full);
            if let Some(parsed) = self.read_source(&full, display, rel, Some((fid, s.span))) {
                stack.push(canon);
                self.collect_includes(parsed, out, stack);
                stack.pop();
            }
        }
    }

    fn display_of(&self, full: &Path) -> String {
        full.strip_prefix("./")
            .unwrap_or(full)
            .display()
            .to_string()
    }

    pub(super) fn read_params(
        &mut self,
        fid: usize,
        span: Span,
        rel: &str,
    ) -> Option<BTreeMap<String, Value>> {
        // Whatever goes wrong below, params keys will be missing because of it.
        let failed_before = std::mem::replace(&mut self.params_failed, true);
        let full = self.root.join(rel);
        let display = self.display_of(&full);
        let text = match self.read_file(&full).map(String::from_utf8) {
            Ok(Ok(t)) => t,
            Ok(Err(_)) => {
                self.err(
                    Diagnostic::new(
                        Code::NotUtf8,
                        format!("params file `{display}` is not UTF-8 text"),
                    )
                    .at(fid, span, "read here")
                    .help("save the file as UTF-8"),
                );
                return None;
            }
            Err(e) => {
                self.err(
                    Diagnostic::new(
                        Code::ParamsUnreadable,
                        format!("cannot read params file `{display}`: {e}"),
                    )
                    .at(fid, span, "named here")
                    .help("params files are relative to the pipeline's directory"),
                );
                return None;
            }
        };
        let id = self.sources.add(display.clone(), text);
        self.rel_names.push(rel.to_string());
        let text = self.sources.files[id].text.clone();
        match crate::params::parse(&display, &text, id) {
            Ok(m) => {
                self.params_failed = failed_before;
                Some(m)
            }
            Err(mut d) => {
                if d.file.is_none() {
                    d = d.at(fid, span, "named here");
                }
                self.err(d);
                None
            }
        }
    }

    /// An unknown word right after a string that spans lines: most likely the string before
    /// it lacks its closing `"`, and the next string's opening `"` closed it. Says so (and
    /// returns true) instead of "unknown keyword".
    pub(super) fn string_ran_on(&self, fid: usize, w: &ast::Spanned<String>) -> bool {
        let text: &str = &self.sources.files[fid].text;
        let Some(quote) = w.span.start.checked_sub(1) else {
            return false;
        };
        if text.as_bytes().get(quote) != Some(&b'"') {
            return false;
        }
        let Some(start) = string_closed_at(text, quote) else {
            return false;
        };
        if !text[start..quote].contains('\n') {
            return false;
        }
        let (line, _) = crate::diag::line_col(text, start);
        let (end_line, _) = crate::diag::line_col(text, quote);
        self.err(
            Diagnostic::new(
                Code::UnterminatedString,
                format!("unterminated string: the string on line {line} runs on to line {end_line}"),
            )
            .at(fid, Span::new(start, start + 1), "this string is not closed on its line")
            .also(
                Span::new(quote, quote + 1),
                format!("so this `\"` closes it, and `{}` is read as a keyword", w.node),
            )
            .help(format!(
                "add the missing `\"` on line {line} (a string may span lines, so one missing `\"` shifts every string after it)"
            )),
        );
        true
    }
}

fn label_for(e: &mlp_syntax::SyntaxError) -> String {
    if let Some(l) = &e.label {
        return l.clone();
    }
    match Code::parse(e.code) {
        Some(Code::UnterminatedString) => "this string is never closed".into(),
        Some(Code::UnknownEscape) => "unknown escape".into(),
        Some(Code::TooLarge) => "out of range".into(),
        _ => "unexpected here".into(),
    }
}

/// Where the string literal whose closing `"` is at byte `quote` starts (strings, escapes
/// and comments are followed from the start of the file).
fn string_closed_at(text: &str, quote: usize) -> Option<usize> {
    let b = text.as_bytes();
    let mut open: Option<usize> = None;
    let mut i = 0;
    while i <= quote && i < b.len() {
        match (open, b[i]) {
            (Some(_), b'\\') => i += 1,
            (Some(s), b'"') => {
                if i == quote {
                    return Some(s);
                }
                open = None;
            }
            (Some(_), _) => {}
            (None, b'"') => open = Some(i),
            (None, b'#') => {
                i = text[i..].find('\n').map_or(b.len(), |n| i + n);
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    None
}
