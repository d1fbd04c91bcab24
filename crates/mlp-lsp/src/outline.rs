//! Formatting (`mlp fmt`), the outline (document symbols), folding and semantic tokens.

use lsp_types::{
    DocumentFormattingParams, DocumentSymbol, DocumentSymbolParams, DocumentSymbolResponse,
    FoldingRange, FoldingRangeKind, FoldingRangeParams, Range, SemanticToken, SemanticTokenType,
    SemanticTokens, SemanticTokensLegend, SemanticTokensParams, SymbolKind, TextEdit,
};
use mlp_syntax::ast::{Item, ItemKind, Span, StageItemKind};

use crate::locate::stage_name;
use crate::text::LineIndex;
use crate::uri;
use crate::world::{World, canonical};

fn doc(w: &World, u: &lsp_types::Uri) -> Option<(std::path::PathBuf, std::sync::Arc<String>)> {
    let p = canonical(&uri::to_path(u)?);
    let t = w.text(&p)?;
    Some((p, t))
}

/// The whole text as `mlp fmt` writes it (nothing when it does not parse, or is formatted).
pub fn format(w: &World, p: DocumentFormattingParams) -> Option<Vec<TextEdit>> {
    let (_, text) = doc(w, &p.text_document.uri)?;
    let new = mlp_syntax::format(&text).ok()?;
    if new == *text {
        return Some(Vec::new());
    }
    let ix = LineIndex::new(&text);
    let all = Range::new(ix.position(0), ix.position(text.len()));
    Some(vec![TextEdit::new(all, new)])
}

#[allow(deprecated)] // `DocumentSymbol::deprecated` must be written out
fn symbol(
    name: String,
    detail: Option<String>,
    kind: SymbolKind,
    range: Range,
    sel: Range,
    children: Vec<DocumentSymbol>,
) -> DocumentSymbol {
    DocumentSymbol {
        name,
        detail,
        kind,
        tags: None,
        deprecated: None,
        range,
        selection_range: sel,
        children: (!children.is_empty()).then_some(children),
    }
}

pub fn symbols(w: &World, p: DocumentSymbolParams) -> Option<DocumentSymbolResponse> {
    let (path, text) = doc(w, &p.text_document.uri)?;
    let ast = w.ast(&path)?;
    let ix = LineIndex::new(&text);
    Some(DocumentSymbolResponse::Nested(items(
        &ast.items, &ix, &text,
    )))
}

fn items(list: &[Item], ix: &LineIndex, text: &str) -> Vec<DocumentSymbol> {
    let src = |sp: Span| text.get(sp.start..sp.end).unwrap_or_default().to_string();
    let mut out = Vec::new();
    for it in list {
        let r = ix.range(it.span);
        match &it.kind {
            ItemKind::Pipeline(s) => {
                out.push(symbol(
                    s.as_plain().unwrap_or_else(|| src(s.span)),
                    Some("pipeline".into()),
                    SymbolKind::MODULE,
                    r,
                    ix.range(s.span),
                    Vec::new(),
                ));
            }
            ItemKind::Stage(s) => {
                let (name, sel) =
                    stage_name(&s.name).unwrap_or_else(|| (src(s.name.span()), s.name.span()));
                let mut children = Vec::new();
                for si in &s.items {
                    if let StageItemKind::Out(v) | StageItemKind::Metrics(v) = &si.kind {
                        for np in v {
                            let n = np
                                .name
                                .as_ref()
                                .map_or_else(|| src(np.path.span), |n| n.node.clone());
                            let sel = np.name.as_ref().map_or(np.path.span, |n| n.span);
                            children.push(symbol(
                                n,
                                np.path.as_plain(),
                                SymbolKind::FIELD,
                                ix.range(np.span),
                                ix.range(sel),
                                Vec::new(),
                            ));
                        }
                    }
                }
                out.push(symbol(
                    name,
                    Some("stage".into()),
                    SymbolKind::FUNCTION,
                    r,
                    ix.range(sel),
                    children,
                ));
            }
            ItemKind::For(f) => {
                let children = items(&f.items, ix, text);
                out.push(symbol(
                    format!("for {}", f.var.node),
                    None,
                    SymbolKind::NAMESPACE,
                    r,
                    ix.range(f.var.span),
                    children,
                ));
            }
            ItemKind::Param { key, .. } => {
                out.push(symbol(
                    key.node.clone(),
                    Some("param".into()),
                    SymbolKind::CONSTANT,
                    r,
                    ix.range(key.span),
                    Vec::new(),
                ));
            }
            ItemKind::Include(s) => {
                out.push(symbol(
                    s.as_plain().unwrap_or_else(|| src(s.span)),
                    Some("include".into()),
                    SymbolKind::FILE,
                    r,
                    ix.range(s.span),
                    Vec::new(),
                ));
            }
            ItemKind::Env(pairs) => {
                let children = pairs
                    .iter()
                    .map(|p| {
                        symbol(
                            p.name.node.clone(),
                            None,
                            SymbolKind::VARIABLE,
                            ix.range(p.name.span.to(p.value.span)),
                            ix.range(p.name.span),
                            Vec::new(),
                        )
                    })
                    .collect();
                out.push(symbol(
                    "env".into(),
                    None,
                    SymbolKind::OBJECT,
                    r,
                    r,
                    children,
                ));
            }
            ItemKind::Executor(e) => {
                out.push(symbol(
                    format!("executor {}", e.name.node),
                    None,
                    SymbolKind::OBJECT,
                    r,
                    ix.range(e.name.span),
                    Vec::new(),
                ));
            }
            ItemKind::Tracking(t) => {
                out.push(symbol(
                    format!("tracking {}", t.name.node),
                    None,
                    SymbolKind::OBJECT,
                    r,
                    ix.range(t.name.span),
                    Vec::new(),
                ));
            }
            ItemKind::Cache(m) => {
                out.push(symbol(
                    format!("cache {}", m.node),
                    None,
                    SymbolKind::OBJECT,
                    r,
                    ix.range(m.span),
                    Vec::new(),
                ));
            }
            ItemKind::Remote(rm) => {
                out.push(symbol(
                    format!("remote {}", rm.url.as_plain().unwrap_or_default()),
                    None,
                    SymbolKind::OBJECT,
                    r,
                    ix.range(rm.url.span),
                    Vec::new(),
                ));
            }
            ItemKind::ParamsFiles(_) | ItemKind::Unknown(_) => {}
        }
    }
    out
}

/// Blocks (`{ ... }` over several lines), runs of comment lines, and multi-line items.
pub fn folding(w: &World, p: FoldingRangeParams) -> Option<Vec<FoldingRange>> {
    let (_, text) = doc(w, &p.text_document.uri)?;
    let mut out = Vec::new();
    let mut open: Vec<u32> = Vec::new();
    let mut comment_run: Option<(u32, u32)> = None;
    for (n, line) in text.lines().enumerate() {
        let n = n as u32;
        let toks = lex(line);
        let only_comment = toks.len() == 1 && toks[0].2 == Tok::Comment;
        if only_comment {
            comment_run = Some(comment_run.map_or((n, n), |(s, _)| (s, n)));
        } else if let Some((s, e)) = comment_run.take()
            && e > s
        {
            out.push(fold(s, e, Some(FoldingRangeKind::Comment)));
        }
        for (start, _, t) in &toks {
            if *t == Tok::Punct {
                match line.as_bytes()[*start] {
                    b'{' => open.push(n),
                    b'}' => {
                        if let Some(s) = open.pop()
                            && n > s
                        {
                            out.push(fold(s, n, None));
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    if let Some((s, e)) = comment_run
        && e > s
    {
        out.push(fold(s, e, Some(FoldingRangeKind::Comment)));
    }
    Some(out)
}

fn fold(start: u32, end: u32, kind: Option<FoldingRangeKind>) -> FoldingRange {
    FoldingRange {
        start_line: start,
        end_line: end,
        kind,
        ..Default::default()
    }
}

/// The token types, in the order of their indexes in the legend.
const TYPES: &[SemanticTokenType] = &[
    SemanticTokenType::KEYWORD,
    SemanticTokenType::STRING,
    SemanticTokenType::NUMBER,
    SemanticTokenType::COMMENT,
    SemanticTokenType::FUNCTION,
    SemanticTokenType::VARIABLE,
    SemanticTokenType::OPERATOR,
    SemanticTokenType::PROPERTY,
];

pub fn legend() -> SemanticTokensLegend {
    SemanticTokensLegend {
        token_types: TYPES.to_vec(),
        token_modifiers: Vec::new(),
    }
}

/// What a piece of a line is, to the lexer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tok {
    Word,
    Str,
    Interp,
    Number,
    Comment,
    Punct,
    Op,
}

/// A line cut into tokens: (byte start, byte end, kind). Strings are cut around their
/// `${...}`; a string left open runs to the end of the line.
pub fn lex(line: &str) -> Vec<(usize, usize, Tok)> {
    let b = line.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        match c {
            b'#' => {
                out.push((i, b.len(), Tok::Comment));
                break;
            }
            b'"' => {
                i += 1;
                let mut seg = start;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' {
                        i += 2;
                    } else if b[i] == b'$' && b.get(i + 1) == Some(&b'{') {
                        out.push((seg, i, Tok::Str));
                        let end = line[i..].find('}').map_or(b.len(), |e| i + e + 1);
                        out.push((i, end, Tok::Interp));
                        i = end;
                        seg = i;
                    } else {
                        i += 1;
                    }
                }
                i = (i + 1).min(b.len());
                out.push((seg, i, Tok::Str));
            }
            b'0'..=b'9' => {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.' || b[i] == b'_')
                {
                    i += 1;
                }
                out.push((start, i, Tok::Number));
            }
            _ if c.is_ascii_alphabetic() || c == b'_' => {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b"_-".contains(&b[i])) {
                    i += 1;
                }
                out.push((start, i, Tok::Word));
            }
            b'{' | b'}' | b'[' | b']' | b'(' | b')' | b',' => {
                i += 1;
                out.push((start, i, Tok::Punct));
            }
            b'=' | b'<' | b'>' | b'!' | b'&' | b'|' | b'+' | b'-' | b'*' | b'/' | b'%' => {
                while i < b.len() && b"=<>!&|".contains(&b[i]) && i - start < 2 {
                    i += 1;
                }
                i = i.max(start + 1);
                out.push((start, i, Tok::Op));
            }
            _ => i += line[i..].chars().next().map_or(1, char::len_utf8),
        }
    }
    out.retain(|(s, e, _)| e > s);
    out
}

pub fn tokens(w: &World, p: SemanticTokensParams) -> Option<SemanticTokens> {
    let (_, text) = doc(w, &p.text_document.uri)?;
    let mut data = Vec::new();
    let (mut prev_line, mut prev_col) = (0u32, 0u32);
    for (n, line) in text.lines().enumerate() {
        let toks = lex(line);
        let first_word = toks.iter().position(|t| t.2 != Tok::Comment);
        for (k, &(s, e, t)) in toks.iter().enumerate() {
            let word = &line[s..e];
            let ty = match t {
                Tok::Word if Some(k) == first_word && mlp_syntax::is_keyword(word) => 0,
                Tok::Word if matches!(word, "true" | "false" | "in") => 0,
                Tok::Word if k > 0 && line[toks[k - 1].0..toks[k - 1].1] == *"stage" => 4,
                Tok::Word if toks.get(k + 1).is_some_and(|n| &line[n.0..n.1] == "=") => 7,
                Tok::Word => continue,
                Tok::Str => 1,
                Tok::Number => 2,
                Tok::Comment => 3,
                Tok::Interp => 5,
                Tok::Op => 6,
                Tok::Punct => continue,
            };
            let col: u32 = line[..s].chars().map(|c| c.len_utf16() as u32).sum();
            let len: u32 = line[s..e].chars().map(|c| c.len_utf16() as u32).sum();
            let n = n as u32;
            let delta_start = if n == prev_line { col - prev_col } else { col };
            data.push(SemanticToken {
                delta_line: n - prev_line,
                delta_start,
                length: len,
                token_type: ty,
                token_modifiers_bitset: 0,
            });
            (prev_line, prev_col) = (n, col);
        }
    }
    Some(SemanticTokens {
        result_id: None,
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexes_strings_around_interpolations() {
        let l = r#"  run "a ${x} b" # c"#;
        let kinds: Vec<(&str, Tok)> = lex(l).iter().map(|&(s, e, t)| (&l[s..e], t)).collect();
        assert_eq!(
            kinds,
            vec![
                ("run", Tok::Word),
                ("\"a ", Tok::Str),
                ("${x}", Tok::Interp),
                (" b\"", Tok::Str),
                ("# c", Tok::Comment)
            ]
        );
    }
}
