//! Params files: YAML, TOML or JSON, chosen by extension, read into nested values.

use std::collections::BTreeMap;

use mlp_syntax::ast::Span;

use crate::codes::Code;
use crate::diag::Diagnostic;
use crate::value::Value;

/// Parse the text of a params file. `file` is its index in the source map, so that a
/// syntax error points into the params file itself.
pub fn parse(name: &str, text: &str, file: usize) -> Result<BTreeMap<String, Value>, Diagnostic> {
    let ext = name.rsplit('.').next().unwrap_or("").to_ascii_lowercase();
    let value = match ext.as_str() {
        "yaml" | "yml" => serde_yaml_ng::from_str::<serde_json::Value>(text).map_err(|e| {
            let at = e.location().map_or(0, |l| l.index());
            (at, e.to_string())
        }),
        "json" => serde_json::from_str::<serde_json::Value>(text).map_err(|e| {
            let at = offset_of(text, e.line(), e.column());
            (at, e.to_string())
        }),
        "toml" => toml::from_str::<serde_json::Value>(text).map_err(|e| {
            let at = e.span().map_or(0, |s| s.start);
            (at, e.message().to_string())
        }),
        _ => {
            return Err(Diagnostic::new(
                Code::ParamsFormat,
                format!("`{name}`: params files must be YAML, TOML or JSON"),
            )
            .help("name the file with a .yaml, .yml, .toml or .json extension"));
        }
    };
    match value {
        Ok(serde_json::Value::Object(m)) => Ok(m
            .into_iter()
            .map(|(k, v)| (k, Value::from_json(v)))
            .collect()),
        Ok(serde_json::Value::Null) => Ok(BTreeMap::new()),
        Ok(other) => Err(Diagnostic::new(
            Code::ParamsSyntax,
            format!("`{name}` must hold a map of params at its top level"),
        )
        .at(
            file,
            Span::new(0, text.len().min(1)),
            format!("found a {}", Value::from_json(other).type_name()),
        )
        .help("write `key: value` pairs (YAML), `key = value` (TOML) or an object (JSON)")),
        Err((at, msg)) => {
            let at = at.min(text.len());
            let end = text[at..]
                .char_indices()
                .nth(1)
                .map_or(text.len(), |(i, _)| at + i);
            // The label stands at the place: drop the parser's own "at line L column C".
            let first = without_position(msg.lines().next().unwrap_or(""));
            Err(Diagnostic::new(
                Code::ParamsSyntax,
                format!("cannot read params file `{name}`"),
            )
            .at(file, Span::new(at, end), first)
            .help(format!("fix the {} syntax of `{name}`", ext.to_uppercase())))
        }
    }
}

/// `trailing comma at line 3 column 23` → `trailing comma`; `did not find expected key at
/// line 4 column 2, while parsing a block mapping` → `did not find expected key, while ...`.
fn without_position(msg: &str) -> String {
    let Some(at) = msg.find(" at line ") else {
        return msg.to_string();
    };
    let rest = &msg[at + " at line ".len()..];
    let digits = |s: &str| s.len() - s.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let n = digits(rest);
    let Some(after) = rest[n..].strip_prefix(" column ") else {
        return msg.to_string();
    };
    let m = digits(after);
    if n == 0 || m == 0 {
        return msg.to_string();
    }
    format!("{}{}", &msg[..at], &after[m..])
}

fn offset_of(text: &str, line: usize, column: usize) -> usize {
    let mut off = 0;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            return off + column.saturating_sub(1).min(l.len());
        }
        off += l.len();
    }
    text.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_all_three_formats() {
        let y = parse("p.yaml", "train:\n  lr: 0.1\nseed: 3\n", 0).unwrap();
        let t = parse("p.toml", "seed = 3\n[train]\nlr = 0.1\n", 0).unwrap();
        let j = parse("p.json", r#"{"train": {"lr": 0.1}, "seed": 3}"#, 0).unwrap();
        assert_eq!(y, t);
        assert_eq!(t, j);
        assert_eq!(Value::lookup(&y, "train.lr"), Some(&Value::Float(0.1)));
    }

    #[test]
    fn labels_do_not_repeat_the_position() {
        assert_eq!(
            without_position("trailing comma at line 3 column 23"),
            "trailing comma"
        );
        assert_eq!(
            without_position("did not find expected key at line 4 column 2, while parsing"),
            "did not find expected key, while parsing"
        );
        assert_eq!(without_position("at line x"), "at line x");
        let d = parse("p.json", "{\"a\": 1,}", 0).unwrap_err();
        assert_eq!(d.labels[0].text, "trailing comma");
    }

    #[test]
    fn points_at_the_error() {
        let d = parse("p.json", "{\n  \"a\": 1,\n  oops\n}", 3).unwrap_err();
        assert_eq!(d.code, "E0119");
        assert_eq!(d.labels[0].span.start, 14);
    }
}
