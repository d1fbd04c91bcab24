//! Comments are not part of the grammar's tree: they are collected here by a small scanner
//! that knows where strings are, so that `mlp fmt` can put them back.

use crate::ast::{Comment, Span};

/// Every `# ...` comment outside strings, in order.
pub fn collect(src: &str) -> Vec<Comment> {
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut in_string = false;
    let mut line_has_code = false;
    while i < bytes.len() {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_comments_outside_strings() {
        let c = collect("# a\nrun \"x # not\" # b\n  # c");
        let t: Vec<_> = c.iter().map(|c| (c.text.as_str(), c.trailing)).collect();
        assert_eq!(t, vec![(" a", false), (" b", true), (" c", false)]);
    }
}
