//! `mlp fmt`: the canonical layout of a `.mlp` file, rebuilt from its syntax tree, with
//! every comment kept.
//!
//! The layout:
//! - top-level items in source order; a blank line around every block (`stage`, `for`,
//!   `env`), one-line items (`pipeline`, `params`, `param`, `include`) grouped, keeping one
//!   blank line where the user left one (also between comments and the item they precede);
//! - inside a stage, 2-space indent, items in source order, every keyword padded to the
//!   longest keyword of the stage plus one space; `always`, `frozen`, `promote`, `env {`
//!   and `executor NAME {` stand alone (`executor NAME` without a block is padded like
//!   the others); no blank lines;
//! - `for` bodies indent their stages and follow the top-level blank-line rules;
//! - `env` blocks and `executor` settings: one `NAME = value` per line, `=` aligned (an
//!   empty block stays `{}`);
//! - lists joined with `, `, binary operators between single spaces, parentheses exactly
//!   where the source has them, numbers, durations and sizes as written;
//! - strings re-escaped from their decoded text: `\"`, `\\`, `\${` for a literal `${`,
//!   newlines and tabs literal (a space or tab just before a newline is escaped so that no
//!   line ends in whitespace), other control and invisible characters as `\u{..}`.
//!
//! Comments: the source is cut into "units" (a one-line item, a block header up to its
//! `{`, a closing `}`, an `env` pair), disjoint and in source order. A trailing comment
//! stays at the end of the unit holding the last code before it (two spaces before `#`);
//! when several trailing comments fall on one unit, all but the last move above it. A
//! comment on its own line goes above the unit that contains or follows it, at its
//! indentation; above the closing `}` when nothing follows inside a block; or at the end.

use std::fmt::Write as _;

use crate::ast::*;
use crate::error::SyntaxError;
use crate::parser::parse;

/// Format a whole `.mlp` source text. A text that does not parse gives the parser's errors.
pub fn format(src: &str) -> Result<String, Vec<SyntaxError>> {
    let file = parse(src)?;
    let mut b = Builder {
        src,
        comments: &file.comments,
        units: Vec::new(),
    };
    let nodes: Vec<Node> = file.items.iter().map(|i| b.item(i)).collect();
    let att = attach(&b.units, &file.comments);
    let mut p = Printer {
        src,
        units: &b.units,
        comments: &file.comments,
        att: &att,
        out: String::new(),
    };
    let mut state = ListState::default();
    p.list(&nodes, 0, true, &mut state);
    p.comment_lines(&att.eof, 0, true, &mut state);
    Ok(p.out)
}

/// A stretch of source that prints as one piece; comments attach to units.
#[derive(Clone, Copy)]
struct Unit {
    start: usize,
    end: usize,
}

enum Node {
    /// One unit printed on one line (strings may still hold newlines).
    Line {
        unit: usize,
        text: String,
    },
    Block(Block),
}

/// `head {` body `}`.
struct Block {
    header: usize,
    head: String,
    body: Vec<Node>,
    /// Whether the body follows the top-level blank-line rules (`for`) or has none.
    spaced: bool,
    close: usize,
}

impl Node {
    fn first_unit(&self) -> usize {
        match self {
            Node::Line { unit, .. } => *unit,
            Node::Block(b) => b.header,
        }
    }
    fn last_unit(&self) -> usize {
        match self {
            Node::Line { unit, .. } => *unit,
            Node::Block(b) => b.close,
        }
    }
    fn is_block(&self) -> bool {
        matches!(self, Node::Block(_))
    }
}

// ------------------------------------------------------------------ layout --

struct Builder<'a> {
    src: &'a str,
    comments: &'a [Comment],
    units: Vec<Unit>,
}

impl Builder<'_> {
    fn unit(&mut self, start: usize, end: usize) -> usize {
        let end = self.code_end(start, end);
        debug_assert!(self.units.last().is_none_or(|u| u.end <= start));
        self.units.push(Unit { start, end });
        self.units.len() - 1
    }

    /// Where the code of `start..end` ends: a span that ends in a repetition or an option
    /// (`in a, b`, `check x "m"`) also takes in the whitespace and comments after it.
    fn code_end(&self, start: usize, mut end: usize) -> usize {
        loop {
            while end > start && self.src.as_bytes()[end - 1].is_ascii_whitespace() {
                end -= 1;
            }
            // The last comment that starts before `end`: does `end` fall inside it?
            let i = self.comments.partition_point(|c| c.span.start < end);
            match i.checked_sub(1).map(|i| &self.comments[i]) {
                Some(c) if c.span.start >= start && end <= c.span.end => end = c.span.start,
                _ => return end,
            }
        }
    }

    fn line(&mut self, span: Span, text: String) -> Node {
        let unit = self.unit(span.start, span.end);
        Node::Line { unit, text }
    }

    /// The position of the `{` that opens a block, searched from `from`: only whitespace
    /// and comments stand between.
    fn brace_after(&self, from: usize) -> usize {
        let bytes = self.src.as_bytes();
        let mut i = from;
        while i < bytes.len() {
            match bytes[i] {
                b'{' => return i,
                b'#' => {
                    i = self.src[i..].find('\n').map_or(bytes.len(), |n| i + n);
                }
                _ => i += 1,
            }
        }
        from
    }

    /// A block's header unit: from `start` through its `{`.
    fn header(&mut self, start: usize, brace_from: usize) -> usize {
        let brace = self.brace_after(brace_from);
        self.unit(start, brace + 1)
    }

    /// The closing `}` of a block that spans `span`.
    fn close(&mut self, span: Span) -> usize {
        self.unit(span.end.saturating_sub(1).max(span.start), span.end)
    }

    /// An unknown item, as written, without the comment the grammar lets it swallow and
    /// without whitespace at the ends of its lines (a string in it may span lines: the
    /// item is an error the checker reports, and only its first word is in the tree).
    fn unknown_text(&self, span: Span) -> String {
        let i = self.comments.partition_point(|c| c.span.start < span.start);
        let end = match self.comments.get(i) {
            Some(c) if c.span.start < span.end => c.span.start,
            _ => span.end,
        };
        let lines: Vec<&str> = self.src[span.start..end]
            .lines()
            .map(str::trim_end)
            .collect();
        lines.join("\n").trim_end().to_string()
    }

    fn item(&mut self, item: &Item) -> Node {
        let text = match &item.kind {
            ItemKind::Pipeline(s) => format!("pipeline {}", string(s)),
            ItemKind::ParamsFiles(files) => format!("params {}", join(files.iter().map(string))),
            ItemKind::Param { key, value: v } => format!("param {} = {}", key.node, value(v)),
            ItemKind::Include(s) => format!("include {}", string(s)),
            ItemKind::Cache(m) => format!("cache {}", m.node),
            ItemKind::Unknown(_) => self.unknown_text(item.span),
            ItemKind::Env(pairs) => return self.env_block(item.span, pairs),
            ItemKind::Executor(e) => {
                match self.settings_block(item.span, "executor", &e.name, &e.settings) {
                    Some(block) => return block,
                    None => format!("executor {}", e.name.node),
                }
            }
            ItemKind::Tracking(t) => {
                match self.settings_block(item.span, "tracking", &t.name, &t.settings) {
                    Some(block) => return block,
                    None => format!("tracking {}", t.name.node),
                }
            }
            ItemKind::Remote(r) => {
                let head = Spanned {
                    node: string(&r.url),
                    span: r.url.span,
                };
                match self.settings_block(item.span, "remote", &head, &r.settings) {
                    Some(block) => return block,
                    None => format!("remote {}", head.node),
                }
            }
            ItemKind::Stage(stage) => {
                let header = self.header(item.span.start, stage.name.span().end);
                let width = stage
                    .items
                    .iter()
                    .map(|i| i.kind.keyword().len())
                    .max()
                    .unwrap_or(0)
                    + 1;
                let body = stage
                    .items
                    .iter()
                    .map(|i| self.stage_item(i, width))
                    .collect();
                let close = self.close(item.span);
                return Node::Block(Block {
                    header,
                    head: format!("stage {}", stage_name(&stage.name)),
                    body,
                    spaced: false,
                    close,
                });
            }
            ItemKind::For(f) => {
                let (over, over_end) = match &f.over {
                    ForSource::List(v) => (value(v), v.span.end),
                    ForSource::Param(k) => (k.node.clone(), k.span.end),
                };
                let header = self.header(item.span.start, over_end);
                let body = f.items.iter().map(|i| self.item(i)).collect();
                let close = self.close(item.span);
                return Node::Block(Block {
                    header,
                    head: format!("for {} in {over}", f.var.node),
                    body,
                    spaced: true,
                    close,
                });
            }
        };
        self.line(item.span, text)
    }

    fn env_block(&mut self, span: Span, pairs: &[EnvPair]) -> Node {
        let header = self.header(span.start, span.start + "env".len());
        let width = pairs.iter().map(|p| p.name.node.len()).max().unwrap_or(0);
        let body = pairs
            .iter()
            .map(|p| {
                let text = format!("{:<width$} = {}", p.name.node, value(&p.value));
                self.line(p.name.span.to(p.value.span), text)
            })
            .collect();
        let close = self.close(span);
        Node::Block(Block {
            header,
            head: "env".to_string(),
            body,
            spaced: false,
            close,
        })
    }

    /// `executor NAME { settings }` (or `tracking NAME { ... }`: `keyword`) as a block, or
    /// `None` when it has no block (a line).
    fn settings_block(
        &mut self,
        span: Span,
        keyword: &str,
        name: &Spanned<String>,
        settings: &Option<Vec<Setting>>,
    ) -> Option<Node> {
        let settings = settings.as_ref()?;
        let header = self.header(span.start, name.span.end);
        let width = settings
            .iter()
            .map(|s| s.name.node.len())
            .max()
            .unwrap_or(0);
        let body = settings
            .iter()
            .map(|s| {
                let v = match &s.value {
                    SettingValue::Duration(d) => d.node.text.clone(),
                    SettingValue::Value(v) => value(v),
                };
                let text = format!("{:<width$} = {v}", s.name.node);
                self.line(s.name.span.to(s.value.span()), text)
            })
            .collect();
        let close = self.close(span);
        Some(Node::Block(Block {
            header,
            head: format!("{keyword} {}", name.node),
            body,
            spaced: false,
            close,
        }))
    }

    fn stage_item(&mut self, item: &StageItem, width: usize) -> Node {
        use StageItemKind as K;
        let kw = item.kind.keyword();
        let args = match &item.kind {
            K::In(inputs) => join(inputs.iter().map(input)),
            K::Out(paths) | K::Metrics(paths) => join(paths.iter().map(named_path)),
            K::After(names) => join(names.iter().map(stage_name)),
            K::Params(keys) => join(keys.iter().map(|k| k.node.clone())),
            K::Run(s) | K::Fallback(s) => string(s),
            K::Check { expr: e, message } | K::Gate { expr: e, message } => {
                let mut out = expr(e);
                if let Some(m) = message {
                    out.push(' ');
                    out.push_str(&string(m));
                }
                out
            }
            K::When(e) => expr(e),
            K::Every(d) | K::Timeout(d) => d.node.text.clone(),
            K::Retry(n) => n.node.to_string(),
            K::Cache(m) => m.node.clone(),
            K::Resources(rs) => join(rs.iter().map(|r| {
                let amount = &self.src[r.amount.span.start..r.amount.span.end];
                format!("{} = {amount}", r.name.node)
            })),
            K::Always | K::Frozen | K::Promote => return self.line(item.span, kw.to_string()),
            K::Env(pairs) => return self.env_block(item.span, pairs),
            K::Executor(e) => {
                match self.settings_block(item.span, "executor", &e.name, &e.settings) {
                    Some(block) => return block,
                    None => e.name.node.clone(),
                }
            }
            K::Unknown(_) => {
                let text = self.unknown_text(item.span);
                return self.line(item.span, text);
            }
        };
        self.line(item.span, format!("{kw:<width$}{args}"))
    }
}

// ---------------------------------------------------------------- comments --

struct Attached {
    /// Per unit: the comments printed on their own lines above it, in source order.
    leading: Vec<Vec<usize>>,
    /// Per unit: the comment printed at the end of its (last) line.
    trailing: Vec<Option<usize>>,
    /// Comments after the last unit.
    eof: Vec<usize>,
}

fn attach(units: &[Unit], comments: &[Comment]) -> Attached {
    let mut leading = vec![Vec::new(); units.len()];
    let mut trailing: Vec<Vec<usize>> = vec![Vec::new(); units.len()];
    let mut eof = Vec::new();
    for (ci, c) in comments.iter().enumerate() {
        let at = c.span.start;
        // Units before `k` start before the comment.
        let k = units.partition_point(|u| u.start < at);
        if c.trailing && k > 0 {
            trailing[k - 1].push(ci);
        } else if k > 0 && at < units[k - 1].end {
            leading[k - 1].push(ci);
        } else if k < units.len() {
            leading[k].push(ci);
        } else {
            eof.push(ci);
        }
    }
    let trailing = trailing
        .into_iter()
        .zip(leading.iter_mut())
        .map(|(mut t, lead)| {
            let last = t.pop();
            if !t.is_empty() {
                lead.extend(t);
                lead.sort_by_key(|&ci| comments[ci].span.start);
            }
            last
        })
        .collect();
    Attached {
        leading,
        trailing,
        eof,
    }
}

// ---------------------------------------------------------------- printing --

struct Printer<'a> {
    src: &'a str,
    units: &'a [Unit],
    comments: &'a [Comment],
    att: &'a Attached,
    out: String,
}

/// Where a list of lines stands: the end (in the source) of what was printed last, and
/// whether a blank line is owed before the next thing.
#[derive(Default)]
struct ListState {
    prev_end: Option<usize>,
    owed_blank: bool,
}

impl Printer<'_> {
    /// The items of one level: top level or a `for` body (`spaced`), or a stage body.
    fn list(&mut self, nodes: &[Node], indent: usize, spaced: bool, st: &mut ListState) {
        let mut prev_block: Option<bool> = None;
        for node in nodes {
            st.owed_blank = spaced && prev_block.is_some_and(|prev| prev || node.is_block());
            let first = node.first_unit();
            self.comment_lines(&self.att.leading[first], indent, spaced, st);
            self.blank_before(self.unit_start(first), spaced, st);
            self.node(node, indent);
            st.prev_end = Some(self.unit_end(node.last_unit()));
            prev_block = Some(node.is_block());
        }
    }

    fn unit_start(&self, unit: usize) -> usize {
        self.units[unit].start
    }

    fn unit_end(&self, unit: usize) -> usize {
        self.units[unit].end
    }

    /// Comments on their own lines.
    fn comment_lines(&mut self, list: &[usize], indent: usize, spaced: bool, st: &mut ListState) {
        for &ci in list {
            let c = &self.comments[ci];
            self.blank_before(c.span.start, spaced, st);
            self.push_line(indent, &format!("#{}", c.text));
            st.prev_end = Some(c.span.end);
        }
    }

    /// A blank line before the thing at `start` when one is owed, or when the user left one
    /// there (only where blank lines are kept).
    fn blank_before(&mut self, start: usize, spaced: bool, st: &mut ListState) {
        let user = spaced
            && st
                .prev_end
                .is_some_and(|end| has_blank_line(self.src, end, start));
        if st.owed_blank || user {
            self.out.push('\n');
        }
        st.owed_blank = false;
    }

    fn node(&mut self, node: &Node, indent: usize) {
        match node {
            Node::Line { unit, text } => {
                let line = format!("{text}{}", self.trailing(*unit));
                self.push_line(indent, &line);
            }
            Node::Block(b) => {
                let collapse = b.body.is_empty()
                    && self.att.leading[b.close].is_empty()
                    && self.att.trailing[b.header].is_none();
                if collapse {
                    let line = format!("{} {{}}{}", b.head, self.trailing(b.close));
                    self.push_line(indent, &line);
                    return;
                }
                let line = format!("{} {{{}", b.head, self.trailing(b.header));
                self.push_line(indent, &line);
                let mut st = ListState::default();
                self.list(&b.body, indent + 2, b.spaced, &mut st);
                self.comment_lines(&self.att.leading[b.close], indent + 2, b.spaced, &mut st);
                let line = format!("}}{}", self.trailing(b.close));
                self.push_line(indent, &line);
            }
        }
    }

    fn trailing(&self, unit: usize) -> String {
        match self.att.trailing[unit] {
            Some(ci) => format!("  #{}", self.comments[ci].text),
            None => String::new(),
        }
    }

    fn push_line(&mut self, indent: usize, text: &str) {
        for _ in 0..indent {
            self.out.push(' ');
        }
        self.out.push_str(text);
        self.out.push('\n');
    }
}

/// Whether `src[from..to]` holds a whole line of nothing but whitespace.
fn has_blank_line(src: &str, from: usize, to: usize) -> bool {
    if from >= to {
        return false;
    }
    let gap = &src[from..to];
    let mut lines = gap.split('\n');
    lines.next(); // the rest of the line `from` stands on
    let mut inner: Vec<&str> = lines.collect();
    inner.pop(); // the start of the line `to` stands on
    inner
        .iter()
        .any(|l| l.chars().all(|c| matches!(c, ' ' | '\t' | '\r')))
}

// ------------------------------------------------------------------ pieces --

fn join(items: impl Iterator<Item = String>) -> String {
    items.collect::<Vec<_>>().join(", ")
}

fn stage_name(n: &StageName) -> String {
    match n {
        StageName::Ident(i) => i.node.clone(),
        StageName::Str(s) => string(s),
    }
}

fn input(i: &Input) -> String {
    match i {
        Input::Path(s) => string(s),
        Input::Ref { stage, output, .. } => match output {
            Some(o) => format!("{}.{}", stage.node, o.node),
            None => stage.node.clone(),
        },
    }
}

fn named_path(p: &NamedPath) -> String {
    match &p.name {
        Some(n) => format!("{} = {}", n.node, string(&p.path)),
        None => string(&p.path),
    }
}

fn value(v: &Value) -> String {
    match &v.kind {
        ValueKind::Str(s) => string(s),
        ValueKind::Number(_, text) => text.clone(),
        ValueKind::Bool(b) => b.to_string(),
        ValueKind::List(items) => format!("[{}]", join(items.iter().map(value))),
    }
}

/// A string literal, re-escaped from its decoded parts.
fn string(s: &Str) -> String {
    let mut out = String::from("\"");
    for part in &s.parts {
        match part {
            StrPart::Text(t) => escape_text(t, &mut out),
            StrPart::Interp(p) => {
                let _ = write!(out, "${{{}}}", p.node);
            }
        }
    }
    out.push('"');
    out
}

fn escape_text(text: &str, out: &mut String) {
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let next = chars.peek().copied();
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            // A literal `${` is not an interpolation.
            '$' if next == Some('{') => out.push_str("\\$"),
            // No line ends in whitespace, even inside a string.
            ' ' if next == Some('\n') => out.push_str("\\u{20}"),
            '\t' if next == Some('\n') => out.push_str("\\t"),
            '\n' | '\t' => out.push(c),
            c if c.is_control() || is_invisible(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
}

/// Format characters that change how a line reads without showing (zero-width, bidi
/// overrides, line separators): written as escapes so the source shows what runs.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}'
    )
}

/// An expression: single spaces around binary operators, parentheses as written.
fn expr(e: &Expr) -> String {
    let mut out = String::new();
    write_expr(e, &mut out);
    out
}

fn write_expr(e: &Expr, out: &mut String) {
    match &e.kind {
        ExprKind::Number(_, text) => out.push_str(text),
        ExprKind::Str(s) => out.push_str(&string(s)),
        ExprKind::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        ExprKind::Duration(d) => out.push_str(&d.text),
        ExprKind::Path(p) => {
            let _ = write!(out, "{p}");
        }
        ExprKind::Call { name, args } => {
            out.push_str(&name.node);
            out.push('(');
            for (i, a) in args.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_expr(a, out);
            }
            out.push(')');
        }
        ExprKind::Unary { op, expr } => {
            out.push(match op {
                UnaryOp::Not => '!',
                UnaryOp::Neg => '-',
            });
            write_expr(expr, out);
        }
        ExprKind::Binary { op, lhs, rhs } => {
            write_expr(lhs, out);
            out.push(' ');
            out.push_str(op.symbol());
            out.push(' ');
            write_expr(rhs, out);
        }
        ExprKind::Paren(inner) => {
            out.push('(');
            write_expr(inner, out);
            out.push(')');
        }
    }
}
