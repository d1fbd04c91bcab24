//! Go to definition, find references, rename.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use lsp_types::{
    GotoDefinitionParams, GotoDefinitionResponse, Location, PrepareRenameResponse, Range,
    ReferenceParams, RenameParams, TextDocumentPositionParams, TextEdit, Uri, WorkspaceEdit,
};
use mlp_syntax::ast::{self, Span};

use crate::locate::{Index, Sym};
use crate::text::LineIndex;
use crate::uri;
use crate::world::{World, canonical, is_mlp};

/// The document and offset a request points at.
pub struct Cursor {
    pub path: PathBuf,
    pub text: Arc<String>,
    pub ast: Option<Arc<ast::File>>,
    pub offset: usize,
}

impl Cursor {
    pub fn new(w: &World, p: &TextDocumentPositionParams) -> Option<Cursor> {
        let path = canonical(&uri::to_path(&p.text_document.uri)?);
        let text = w.text(&path)?;
        let offset = LineIndex::new(&text).offset(p.position);
        Some(Cursor {
            ast: w.ast(&path),
            path,
            text,
            offset,
        })
    }

    pub fn range(&self, span: Span) -> Range {
        LineIndex::new(&self.text).range(span)
    }
}

/// Every `.mlp` file of the pipeline `path` belongs to (`path` itself first), with its text
/// and syntax tree.
pub fn mlp_files(w: &World, path: &Path) -> Vec<(PathBuf, Arc<String>, Arc<ast::File>)> {
    let mut paths = vec![path.to_path_buf()];
    if let Some(r) = w.root_of(path) {
        for s in &r.sources {
            if is_mlp(&s.path) && !paths.contains(&s.path) {
                paths.push(s.path.clone());
            }
        }
    }
    paths
        .into_iter()
        .filter_map(|p| Some((p.clone(), w.text(&p)?, w.ast(&p)?)))
        .collect()
}

fn location(path: &Path, text: &str, span: Span) -> Location {
    Location::new(uri::from_path(path), LineIndex::new(text).range(span))
}

pub fn definition(w: &World, p: GotoDefinitionParams) -> Option<GotoDefinitionResponse> {
    let c = Cursor::new(w, &p.text_document_position_params)?;
    let ast = c.ast.as_ref()?;
    let ix = Index::new(ast, &c.text);
    let sym = ix.at(c.offset)?.sym.clone();
    let locs = definitions(w, &c.path, &sym);
    (!locs.is_empty()).then_some(GotoDefinitionResponse::Array(locs))
}

/// Where `sym`, seen in `path`, is defined.
pub fn definitions(w: &World, path: &Path, sym: &Sym) -> Vec<Location> {
    let root = w.root_of(path);
    match sym {
        Sym::Include(rel) => {
            let base = path.parent().unwrap_or(Path::new("/"));
            file_location(&base.join(rel))
        }
        Sym::ParamsFile(rel) => {
            let base = root.map_or(path.parent().unwrap_or(Path::new("/")), |r| r.dir());
            file_location(&base.join(rel))
        }
        Sym::Param(key) => {
            let mut out = Vec::new();
            for s in root.iter().flat_map(|r| &r.sources) {
                if is_mlp(&s.path) {
                    continue;
                }
                let toml = s.path.extension().is_some_and(|e| e == "toml");
                if let Some(sp) = find_key(&s.text, key, toml) {
                    out.push(location(&s.path, &s.text, sp));
                }
            }
            out.extend(defs_in_files(w, path, sym));
            out
        }
        Sym::Stage(name) => {
            // The plan knows every stage, those a `for` loop makes too.
            if let Some(r) = root
                && let Some(plan) = &r.plan
                && let Some(i) = plan.pipeline.stage(name)
            {
                let o = plan.pipeline.stages[i].origin;
                if let Some(rel) = plan.pipeline.sources.get(o.file) {
                    let f = canonical(&r.dir().join(rel));
                    if let Some(t) = w.text(&f) {
                        return vec![location(&f, &t, o.span)];
                    }
                }
            }
            defs_in_files(w, path, sym)
        }
        Sym::Output { .. } => defs_in_files(w, path, sym),
    }
}

fn file_location(p: &Path) -> Vec<Location> {
    let p = canonical(p);
    if p.exists() {
        vec![Location::new(uri::from_path(&p), Range::default())]
    } else {
        Vec::new()
    }
}

fn defs_in_files(w: &World, path: &Path, sym: &Sym) -> Vec<Location> {
    let mut out = Vec::new();
    for (p, text, ast) in mlp_files(w, path) {
        for o in Index::new(&ast, &text).of(sym).filter(|o| o.def) {
            out.push(location(&p, &text, o.span));
        }
    }
    out
}

/// The line of `key` (dotted) in a YAML or TOML params file: the span of its last part.
pub fn find_key(text: &str, key: &str, toml: bool) -> Option<Span> {
    let parts: Vec<&str> = key.split('.').collect();
    let mut offset = 0;
    // YAML: the keys open at each indentation; TOML: the current table.
    let mut stack: Vec<(usize, String)> = Vec::new();
    let mut table: Vec<String> = Vec::new();
    for line in text.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        let body = line.trim_end();
        let trimmed = body.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let indent = body.len() - trimmed.len();
        if toml && trimmed.starts_with('[') {
            let name = trimmed.trim_matches(|c| c == '[' || c == ']').trim();
            table = name
                .split('.')
                .map(|s| s.trim().trim_matches('"').to_string())
                .collect();
            continue;
        }
        let sep = if toml { '=' } else { ':' };
        let Some(at) = trimmed.find(sep) else {
            continue;
        };
        let name = trimmed[..at].trim().trim_matches(['"', '\'']);
        if name.is_empty() || name.contains(' ') && !toml {
            continue;
        }
        let mut full: Vec<String> = if toml {
            table.clone()
        } else {
            while stack.last().is_some_and(|(i, _)| *i >= indent) {
                stack.pop();
            }
            stack.iter().map(|(_, k)| k.clone()).collect()
        };
        full.extend(name.split('.').map(|s| s.trim().to_string()));
        if !toml {
            stack.push((indent, name.to_string()));
        }
        if full == parts {
            let col = start + indent + trimmed.find(name).unwrap_or(0);
            return Some(Span::new(col, col + name.len()));
        }
    }
    None
}

pub fn references(w: &World, p: ReferenceParams) -> Option<Vec<Location>> {
    let c = Cursor::new(w, &p.text_document_position)?;
    let ast = c.ast.as_ref()?;
    let sym = Index::new(ast, &c.text).at(c.offset)?.sym.clone();
    let mut out = Vec::new();
    for (path, text, ast) in mlp_files(w, &c.path) {
        for o in Index::new(&ast, &text).of(&sym) {
            if p.context.include_declaration || !o.def {
                out.push(location(&path, &text, o.span));
            }
        }
    }
    Some(out)
}

pub fn prepare_rename(w: &World, p: TextDocumentPositionParams) -> Option<PrepareRenameResponse> {
    let c = Cursor::new(w, &p)?;
    let ast = c.ast.as_ref()?;
    let o = Index::new(ast, &c.text).at(c.offset)?.clone();
    matches!(o.sym, Sym::Stage(_) | Sym::Output { .. })
        .then(|| PrepareRenameResponse::Range(c.range(o.span)))
}

// `WorkspaceEdit::changes` is keyed by `Uri`, which clippy takes for a mutable key.
#[allow(clippy::mutable_key_type)]
pub fn rename(w: &World, p: RenameParams) -> Result<Option<WorkspaceEdit>, String> {
    let Some(c) = Cursor::new(w, &p.text_document_position) else {
        return Ok(None);
    };
    let Some(ast) = c.ast.as_ref() else {
        return Ok(None);
    };
    let Some(o) = Index::new(ast, &c.text).at(c.offset).cloned() else {
        return Ok(None);
    };
    let new = p.new_name.trim();
    let ident = new
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && new
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !ident || mlp_syntax::is_keyword(new) {
        return Err(format!(
            "`{new}` is not a valid name: a letter or `_`, then letters, digits, `_` or `-`, and no keyword"
        ));
    }
    if !matches!(o.sym, Sym::Stage(_) | Sym::Output { .. }) {
        return Err("only a stage or an output can be renamed".into());
    }
    let mut changes: HashMap<Uri, Vec<TextEdit>> = HashMap::new();
    for (path, text, ast) in mlp_files(w, &c.path) {
        let ix = LineIndex::new(&text);
        for occ in Index::new(&ast, &text).of(&o.sym) {
            changes
                .entry(uri::from_path(&path))
                .or_default()
                .push(TextEdit::new(ix.range(occ.span), new.to_string()));
        }
    }
    Ok(Some(WorkspaceEdit {
        changes: Some(changes),
        ..Default::default()
    }))
}

#[cfg(test)]
mod tests {
    use super::find_key;

    #[test]
    fn keys_in_yaml_and_toml() {
        let y = "data:\n  rows: 10\ntrain:\n  lr: 0.1\n  deep:\n    x: 1\n";
        let sp = find_key(y, "train.lr", false).unwrap();
        assert_eq!(&y[sp.start..sp.end], "lr");
        assert_eq!(y[..sp.start].matches('\n').count(), 3);
        assert!(find_key(y, "data.lr", false).is_none());
        let sp = find_key(y, "train.deep.x", false).unwrap();
        assert_eq!(y[..sp.start].matches('\n').count(), 5);
        let t = "[train]\nlr = 0.1\n[data]\nrows = 3\n";
        let sp = find_key(t, "data.rows", true).unwrap();
        assert_eq!(&t[sp.start..sp.end], "rows");
    }
}
