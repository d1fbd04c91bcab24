//! Comments are not part of the grammar's tree: they are collected here by a small scanner
//! that knows where strings are, so that `mlp fmt` can put them back.
//!
//! Unknown items (a line that starts with no keyword) are skipped: what counts as a string
//! in them is the grammar's business (a `"` never closed is a plain character there), and
//! the grammar ends them before a comment. Elsewhere a parsed file's strings are the
//! grammar's strings, which this scanner reads alike.

use crate::ast::{Comment, Item, ItemKind, Span, StageItemKind};

/// Every `# ...` comment outside strings and outside the unknown items `skip` (their spans,
/// in order), in order.
pub fn collect(src: &str, skip: &[Span]) -> Vec<Comment> {
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut in_string = false;
    let mut line_has_code = false;
    let mut skip = skip.iter().peekable();
    while i < bytes.len() {
        if !in_string && let Some(sp) = skip.next_if(|sp| sp.start <= i) {
            if sp.end > i {
                line_has_code = true;
                i = sp.end;
            }
            continue;
        }
        let b = bytes[i];
        if in_string {
            match b {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        match b {
            b'"' => {
                in_string = true;
                line_has_code = true;
            }
            b'\n' => line_has_code = false,
            b'#' => {
                let end = src[i..].find('\n').map_or(src.len(), |n| i + n);
                out.push(Comment {
                    text: src[i + 1..end].trim_end().to_string(),
                    span: Span::new(i, end),
                    trailing: line_has_code,
                });
                i = end;
                continue;
            }
            b' ' | b'\t' | b'\r' => {}
            _ => line_has_code = true,
        }
        i += 1;
    }
    out
}

/// The spans of the unknown items among `items`, at any depth, in order.
pub fn unknown_spans(items: &[Item]) -> Vec<Span> {
    fn walk(items: &[Item], out: &mut Vec<Span>) {
        for item in items {
            match &item.kind {
                ItemKind::Unknown(_) => out.push(item.span),
                ItemKind::For(f) => walk(&f.items, out),
                ItemKind::Stage(s) => out.extend(
                    s.items
                        .iter()
                        .filter(|i| matches!(i.kind, StageItemKind::Unknown(_)))
                        .map(|i| i.span),
                ),
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    walk(items, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_comments_outside_strings() {
        let c = collect("# a\nrun \"x # not\" # b\n  # c", &[]);
        let t: Vec<_> = c.iter().map(|c| (c.text.as_str(), c.trailing)).collect();
        assert_eq!(t, vec![(" a", false), (" b", true), (" c", false)]);
    }
}
