//! Completion, from the text before the cursor (it works while the file does not parse):
//! keywords for where the cursor stands (top level or a stage), stage names, a stage's
//! outputs after `stage.`, params keys, `${...}` names, and file paths in a string input.

use std::path::Path;

use lsp_types::{
    CompletionItem, CompletionItemKind, CompletionParams, CompletionResponse, CompletionTextEdit,
    Range, TextEdit,
};
use mlp_syntax::ast::{SOFT_KEYWORDS, STAGE_KEYWORDS, TOP_KEYWORDS};

use crate::locate::{Index, Sym};
use crate::nav::{Cursor, mlp_files};
use crate::text::LineIndex;
use crate::world::World;

pub fn completion(w: &World, p: CompletionParams) -> Option<CompletionResponse> {
    let c = Cursor::new(w, &p.text_document_position)?;
    let text = c.text.as_str();
    let line_start = text[..c.offset].rfind('\n').map_or(0, |i| i + 1);
    let before = &text[line_start..c.offset];
    let blocks = blocks(&text[..c.offset]);
    let stage_line = blocks.iter().rev().find(|b| first_word(b) == "stage");
    let me = stage_line
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or_default();
    let me = me.trim_matches('"');
    let names = Names { w, c: &c };

    let (from, items): (usize, Vec<CompletionItem>) = if let Some(at) = open_interp(before) {
        let inner = &before[at..];
        match inner.rsplit_once('.') {
            _ if inner.starts_with("params.") => (
                line_start + at + 7,
                names.params(CompletionItemKind::VARIABLE),
            ),
            Some((head, _)) => {
                let stage = if head == "out" || head == "metrics" {
                    me
                } else {
                    head
                };
                (line_start + at + head.len() + 1, names.outputs(stage))
            }
            None => {
                let mut v: Vec<CompletionItem> = ["in", "out", "metrics", "params"]
                    .iter()
                    .map(|k| item(k, CompletionItemKind::KEYWORD, None))
                    .collect();
                v.extend(names.stages());
                (line_start + at, v)
            }
        }
    } else if let Some(q) = open_string(before) {
        // A path in a string: the entries of the directory typed so far.
        let typed = &before[q..];
        let (dir, _) = typed.rsplit_once('/').unwrap_or(("", typed));
        let base = w.root_of(&c.path).map_or_else(
            || c.path.parent().unwrap_or(Path::new("/")).to_path_buf(),
            |r| r.dir().to_path_buf(),
        );
        let from = line_start + q + if dir.is_empty() { 0 } else { dir.len() + 1 };
        (from, paths(&base.join(dir)))
    } else {
        let word_start = before
            .rfind(|ch: char| !(ch.is_alphanumeric() || ch == '_' || ch == '-' || ch == '.'))
            .map_or(0, |i| i + 1);
        let word = &before[word_start..];
        let first = first_word(before);
        let at_start = before[..word_start].trim().is_empty();
        let from = line_start + word_start;
        if at_start {
            let kws: &[&str] = match blocks.last().map(|b| first_word(b)) {
                Some("stage") => STAGE_KEYWORDS,
                None | Some("for") => TOP_KEYWORDS,
                _ => &[],
            };
            let soft: &[&str] = if kws.is_empty() { &[] } else { SOFT_KEYWORDS };
            let v = kws
                .iter()
                .chain(soft)
                .map(|k| item(k, CompletionItemKind::KEYWORD, None))
                .collect();
            (from, v)
        } else if first == "params" && stage_line.is_some() {
            (from, names.params(CompletionItemKind::VARIABLE))
        } else if first == "after" {
            (from, names.stages())
        } else if first == "in" || (stage_line.is_some() && continues_in(text, line_start)) {
            match word.split_once('.') {
                Some((stage, _)) => (from + stage.len() + 1, names.outputs(stage)),
                None => (from, names.stages()),
            }
        } else {
            return None;
        }
    };
    let ix = LineIndex::new(text);
    let range = Range::new(ix.position(from), ix.position(c.offset));
    let items = items
        .into_iter()
        .map(|mut i| {
            let new_text = i.insert_text.take().unwrap_or_else(|| i.label.clone());
            i.text_edit = Some(CompletionTextEdit::Edit(TextEdit::new(range, new_text)));
            i
        })
        .collect();
    Some(CompletionResponse::Array(items))
}

fn item(label: &str, kind: CompletionItemKind, detail: Option<String>) -> CompletionItem {
    CompletionItem {
        label: label.to_string(),
        kind: Some(kind),
        detail,
        ..Default::default()
    }
}

struct Names<'a> {
    w: &'a World,
    c: &'a Cursor,
}

impl Names<'_> {
    fn stages(&self) -> Vec<CompletionItem> {
        let mut names: Vec<String> = match self.w.plan_of(&self.c.path) {
            Some((_, plan)) => plan
                .pipeline
                .stages
                .iter()
                .map(|s| s.name.clone())
                .collect(),
            None => Vec::new(),
        };
        for (_, text, ast) in mlp_files(self.w, &self.c.path) {
            for o in Index::new(&ast, &text).occs.into_iter().filter(|o| o.def) {
                if let Sym::Stage(n) = o.sym
                    && !names.contains(&n)
                {
                    names.push(n);
                }
            }
        }
        names
            .iter()
            .map(|n| item(n, CompletionItemKind::FUNCTION, Some("stage".into())))
            .collect()
    }

    fn outputs(&self, stage: &str) -> Vec<CompletionItem> {
        let mut out: Vec<(String, String)> = Vec::new();
        if let Some((_, plan)) = self.w.plan_of(&self.c.path)
            && let Some(i) = plan.pipeline.stage(stage)
        {
            for o in &plan.pipeline.stages[i].outputs {
                if let Some(n) = &o.name {
                    out.push((n.clone(), o.path.clone()));
                }
            }
        }
        for (_, text, ast) in mlp_files(self.w, &self.c.path) {
            for o in Index::new(&ast, &text).occs.into_iter().filter(|o| o.def) {
                if let Sym::Output { stage: s, name } = o.sym
                    && s == stage
                    && !out.iter().any(|(n, _)| *n == name)
                {
                    out.push((name, String::new()));
                }
            }
        }
        out.into_iter()
            .map(|(n, p)| item(&n, CompletionItemKind::FIELD, (!p.is_empty()).then_some(p)))
            .collect()
    }

    fn params(&self, kind: CompletionItemKind) -> Vec<CompletionItem> {
        let Some((_, plan)) = self.w.plan_of(&self.c.path) else {
            return Vec::new();
        };
        mlp_plan::Value::keys(&plan.pipeline.params)
            .iter()
            .map(|k| {
                let v = mlp_plan::Value::lookup(&plan.pipeline.params, k);
                let detail = v.map(|v| v.to_json().to_string());
                item(k, kind, detail)
            })
            .collect()
    }
}

/// The files and directories in `dir` (directories end in `/`), hidden ones left out.
fn paths(dir: &Path) -> Vec<CompletionItem> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<CompletionItem> = rd
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                return None;
            }
            let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
            Some(if is_dir {
                item(&format!("{name}/"), CompletionItemKind::FOLDER, None)
            } else {
                item(&name, CompletionItemKind::FILE, None)
            })
        })
        .collect();
    v.sort_by(|a, b| a.label.cmp(&b.label));
    v
}

fn first_word(s: &str) -> &str {
    s.split_whitespace().next().unwrap_or_default()
}

/// The byte offset just after an unclosed `${` in a line prefix.
fn open_interp(before: &str) -> Option<usize> {
    let at = before.rfind("${")?;
    (!before[at..].contains('}')).then_some(at + 2)
}

/// The byte offset just after the opening quote of an unclosed string in a line prefix.
fn open_string(before: &str) -> Option<usize> {
    let mut open = None;
    let mut esc = false;
    for (i, ch) in before.char_indices() {
        match ch {
            _ if esc => esc = false,
            '\\' if open.is_some() => esc = true,
            '"' => open = if open.is_some() { None } else { Some(i + 1) },
            '#' if open.is_none() => return None,
            _ => {}
        }
    }
    open
}

/// The line at `line_start` continues an `in` list (the previous line ends with a comma).
fn continues_in(text: &str, line_start: usize) -> bool {
    let prev: Vec<&str> = text[..line_start]
        .lines()
        .rev()
        .take_while(|l| l.trim_end().ends_with(','))
        .collect();
    prev.last().is_some_and(|l| first_word(l) == "in")
}

/// The lines that open the blocks the end of `text` stands in, outermost first (braces in
/// strings and comments do not count).
fn blocks(text: &str) -> Vec<String> {
    let mut stack: Vec<String> = Vec::new();
    let mut line_start = 0;
    let (mut in_str, mut esc, mut comment) = (false, false, false);
    for (i, ch) in text.char_indices() {
        if ch == '\n' {
            line_start = i + 1;
            comment = false;
            continue;
        }
        if comment {
            continue;
        }
        if in_str {
            match ch {
                _ if esc => esc = false,
                '\\' => esc = true,
                '"' => in_str = false,
                _ => {}
            }
            continue;
        }
        match ch {
            '"' => in_str = true,
            '#' => comment = true,
            '{' => stack.push(text[line_start..i].trim().to_string()),
            '}' => {
                stack.pop();
            }
            _ => {}
        }
    }
    stack
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contexts() {
        assert_eq!(open_interp("run \"x ${params.a"), Some(9));
        assert_eq!(open_interp("run \"x ${a} y"), None);
        assert_eq!(open_string("in \"data/"), Some(4));
        assert_eq!(open_string("in \"a\", "), None);
        let b = blocks("stage a {\n  env {\n    X = \"{\"\n  }\n  run \"");
        assert_eq!(b, vec!["stage a".to_string()]);
        assert!(continues_in("  in a,\n     b,\n  ", 16));
    }
}
