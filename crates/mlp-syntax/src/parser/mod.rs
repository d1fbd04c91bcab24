//! pest pairs → the typed AST.

use pest::Parser as _;
use pest::error::InputLocation;
use pest::iterators::{Pair, Pairs};
use pest::pratt_parser::{Assoc, Op, PrattParser};

use crate::ast::*;
use crate::error::SyntaxError;

#[derive(pest_derive::Parser)]
#[grammar = "../../grammar/mlp.pest"]
struct MlpParser;

/// Parse one `.mlp` source text. Unknown keywords are kept as `Unknown` items (the checker
/// reports them); anything else that does not parse is an error.
///
/// A well-formed file is read by the hand-written parser in `fast.rs`; any other by the
/// pest grammar, which also explains what is wrong. Both build the same tree.
pub fn parse(src: &str) -> Result<File, Vec<SyntaxError>> {
    if let Some(file) = crate::fast::parse(src) {
        return Ok(file);
    }
    parse_with_pest(src)
}

/// The hand-written parser alone: `None` where it leaves the file to pest. For the tests
/// and the fuzzer that check both parsers agree.
#[doc(hidden)]
pub fn parse_fast(src: &str) -> Option<File> {
    crate::fast::parse(src)
}

/// The pest parser alone (see `parse_fast`).
#[doc(hidden)]
pub fn parse_with_pest(src: &str) -> Result<File, Vec<SyntaxError>> {
    let mut pairs = match MlpParser::parse(Rule::file, src) {
        Ok(p) => p,
        Err(e) => {
            let e = detailed_error(Rule::file, src).unwrap_or(e);
            return Err(vec![convert_error(src, e)]);
        }
    };
    let file = pairs.next().expect("the file rule always yields one pair");
    let mut b = Builder { errors: Vec::new() };
    let items = file
        .into_inner()
        .filter(|p| p.as_rule() != Rule::EOI)
        .map(|p| b.item(p))
        .collect();
    if !b.errors.is_empty() {
        return Err(b.errors);
    }
    Ok(File {
        items,
        comments: crate::comments::collect(src),
    })
}

/// Parse a single expression (used by tests and tools).
pub fn parse_expr(src: &str) -> Result<Expr, Vec<SyntaxError>> {
    let mut pairs = MlpParser::parse(Rule::expr, src).map_err(|e| {
        let e = detailed_error(Rule::expr, src).unwrap_or(e);
        vec![convert_error(src, e)]
    })?;
    let p = pairs.next().expect("expr yields one pair");
    if p.as_span().end() < src.trim_end().len() {
        let at = p.as_span().end();
        return Err(vec![SyntaxError::new(
            "E0001",
            format!("unexpected {}", found_at(src, at)),
            Span::new(at, next_token_end(src, at)),
            "expected the end of the expression",
        )]);
    }
    let mut b = Builder { errors: Vec::new() };
    let e = b.expr(p);
    if b.errors.is_empty() {
        Ok(e)
    } else {
        Err(b.errors)
    }
}

fn span(p: &Pair<'_, Rule>) -> Span {
    Span::new(p.as_span().start(), p.as_span().end())
}

fn spanned_str(p: &Pair<'_, Rule>) -> Spanned<String> {
    Spanned::new(p.as_str().to_string(), span(p))
}

struct Builder {
    errors: Vec<SyntaxError>,
}

impl Builder {
    fn item(&mut self, p: Pair<'_, Rule>) -> Item {
        let sp = span(&p);
        let rule = p.as_rule();
        let mut inner = p.into_inner();
        let kind = match rule {
            Rule::pipeline_decl => {
                inner.next(); // keyword
                ItemKind::Pipeline(self.string(inner.next().expect("name")))
            }
            Rule::params_files => {
                inner.next();
                ItemKind::ParamsFiles(inner.map(|s| self.string(s)).collect())
            }
            Rule::param_decl => {
                inner.next();
                let key = spanned_str(&inner.next().expect("key"));
                let value = self.value(inner.next().expect("value"));
                ItemKind::Param { key, value }
            }
            Rule::env_block => ItemKind::Env(self.env_pairs(inner)),
            Rule::stage => ItemKind::Stage(self.stage(inner)),
            Rule::for_loop => {
                inner.next();
                let var = spanned_str(&inner.next().expect("var"));
                inner.next(); // `in`
                let over = inner.next().expect("source");
                let over = match over.as_rule() {
                    Rule::list => ForSource::List(self.value(over)),
                    _ => ForSource::Param(spanned_str(&over)),
                };
                let items = inner.map(|i| self.item(i)).collect();
                ItemKind::For(ForLoop { var, over, items })
            }
            Rule::include => {
                inner.next();
                ItemKind::Include(self.string(inner.next().expect("path")))
            }
            Rule::executor_decl => ItemKind::Executor(self.executor(inner)),
            Rule::unknown_item => ItemKind::Unknown(spanned_str(&inner.next().expect("word"))),
            r => unreachable!("not an item: {r:?}"),
        };
        Item { kind, span: sp }
    }

    fn env_pairs(&mut self, inner: Pairs<'_, Rule>) -> Vec<EnvPair> {
        inner
            .filter(|p| p.as_rule() == Rule::env_pair)
            .map(|p| {
                let mut i = p.into_inner();
                let name = spanned_str(&i.next().expect("name"));
                let value = self.value(i.next().expect("value"));
                EnvPair { name, value }
            })
            .collect()
    }

    /// `executor_decl = { kw_executor ~ name ~ ("{" ~ setting* ~ "}")? }`: the block is
    /// there when its braces are (pest keeps no pair for them, so look at the text).
    fn executor(&mut self, mut inner: Pairs<'_, Rule>) -> Executor {
        inner.next(); // keyword
        let name_pair = inner.next().expect("executor name");
        let name = spanned_str(&name_pair);
        let has_block = next_code(name_pair.get_input(), name_pair.as_span().end()) == Some('{');
        let settings: Vec<Setting> = inner
            .map(|p| {
                let mut i = p.into_inner();
                let name = spanned_str(&i.next().expect("setting name"));
                let v = i.next().expect("setting value");
                let value = match v.as_rule() {
                    Rule::duration => SettingValue::Duration(self.duration(v)),
                    _ => SettingValue::Value(self.value(v)),
                };
                Setting { name, value }
            })
            .collect();
        Executor {
            name,
            settings: has_block.then_some(settings),
        }
    }

    fn stage_name(&mut self, p: Pair<'_, Rule>) -> StageName {
        let p = p.into_inner().next().expect("name");
        match p.as_rule() {
            Rule::ident => StageName::Ident(spanned_str(&p)),
            _ => StageName::Str(self.string(p)),
        }
    }

    fn stage(&mut self, mut inner: Pairs<'_, Rule>) -> Stage {
        inner.next(); // keyword
        let name = self.stage_name(inner.next().expect("stage name"));
        let items = inner.map(|p| self.stage_item(p)).collect();
        Stage { name, items }
    }

    fn stage_item(&mut self, p: Pair<'_, Rule>) -> StageItem {
        let sp = span(&p);
        let rule = p.as_rule();
        if rule == Rule::flag {
            let kind = match p.as_str() {
                "always" => StageItemKind::Always,
                "frozen" => StageItemKind::Frozen,
                _ => StageItemKind::Promote,
            };
            return StageItem { kind, span: sp };
        }
        let mut inner = p.into_inner();
        if rule == Rule::unknown_item {
            let word = spanned_str(&inner.next().expect("word"));
            return StageItem {
                kind: StageItemKind::Unknown(word),
                span: sp,
            };
        }
        if rule == Rule::env_block {
            return StageItem {
                kind: StageItemKind::Env(self.env_pairs(inner)),
                span: sp,
            };
        }
        if rule == Rule::executor_decl {
            return StageItem {
                kind: StageItemKind::Executor(self.executor(inner)),
                span: sp,
            };
        }
        inner.next(); // the keyword
        let kind = match rule {
            Rule::in_decl => StageItemKind::In(inner.map(|p| self.input(p)).collect()),
            Rule::out_decl => StageItemKind::Out(inner.map(|p| self.named_path(p)).collect()),
            Rule::metrics_decl => {
                StageItemKind::Metrics(inner.map(|p| self.named_path(p)).collect())
            }
            Rule::after_decl => StageItemKind::After(inner.map(|p| self.stage_name(p)).collect()),
            Rule::params_keys => StageItemKind::Params(inner.map(|p| spanned_str(&p)).collect()),
            Rule::run_decl => StageItemKind::Run(self.string(inner.next().expect("command"))),
            Rule::check_decl | Rule::gate_decl => {
                let expr = self.expr(inner.next().expect("expr"));
                let message = inner.next().map(|m| self.string(m));
                if rule == Rule::check_decl {
                    StageItemKind::Check { expr, message }
                } else {
                    StageItemKind::Gate { expr, message }
                }
            }
            Rule::when_decl => StageItemKind::When(self.expr(inner.next().expect("expr"))),
            Rule::every_decl => StageItemKind::Every(self.duration(inner.next().expect("d"))),
            Rule::timeout_decl => StageItemKind::Timeout(self.duration(inner.next().expect("d"))),
            Rule::retry_decl => {
                let n = inner.next().expect("count");
                StageItemKind::Retry(Spanned::new(self.integer(&n), span(&n)))
            }
            Rule::fallback_decl => {
                StageItemKind::Fallback(self.string(inner.next().expect("command")))
            }
            Rule::resources_decl => StageItemKind::Resources(
                inner
                    .map(|r| {
                        let mut i = r.into_inner();
                        let name = spanned_str(&i.next().expect("name"));
                        let a = i.next().expect("amount");
                        let amount = match a.as_rule() {
                            Rule::size => self.size(&a),
                            _ => Amount::Count(u64::from(self.integer(&a))),
                        };
                        Resource {
                            name,
                            amount: Spanned::new(amount, span(&a)),
                        }
                    })
                    .collect(),
            ),
            r => unreachable!("not a stage item: {r:?}"),
        };
        StageItem { kind, span: sp }
    }

    fn input(&mut self, p: Pair<'_, Rule>) -> Input {
        match p.as_rule() {
            Rule::string => Input::Path(self.string(p)),
            _ => {
                let sp = span(&p);
                let mut i = p.into_inner();
                let stage = spanned_str(&i.next().expect("stage"));
                let output = i.next().map(|o| spanned_str(&o));
                Input::Ref {
                    stage,
                    output,
                    span: sp,
                }
            }
        }
    }

    fn named_path(&mut self, p: Pair<'_, Rule>) -> NamedPath {
        let sp = span(&p);
        let mut name = None;
        let mut path = None;
        for c in p.into_inner() {
            match c.as_rule() {
                Rule::ident => name = Some(spanned_str(&c)),
                _ => path = Some(self.string(c)),
            }
        }
        NamedPath {
            name,
            path: path.expect("a named path has a path"),
            span: sp,
        }
    }

    fn integer(&mut self, p: &Pair<'_, Rule>) -> u32 {
        match p.as_str().parse::<u32>() {
            Ok(n) => n,
            Err(_) => {
                self.errors.push(SyntaxError::new(
                    "E0002",
                    format!("number `{}` is too large", p.as_str()),
                    span(p),
                    "use a whole number below 4294967296",
                ));
                0
            }
        }
    }

    fn size(&mut self, p: &Pair<'_, Rule>) -> Amount {
        let s = p.as_str();
        let unit_at = s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len());
        let n: f64 = s[..unit_at].parse().unwrap_or(0.0);
        let mult = match &s[unit_at..unit_at + 1] {
            "K" => 1u64 << 10,
            "M" => 1 << 20,
            "G" => 1 << 30,
            _ => 1 << 40,
        };
        let bytes = n * mult as f64;
        if !bytes.is_finite() || bytes > u64::MAX as f64 {
            self.errors.push(SyntaxError::new(
                "E0002",
                format!("size `{s}` is too large"),
                span(p),
                "use a size below 16E",
            ));
            return Amount::Bytes(0);
        }
        Amount::Bytes(bytes as u64)
    }

    fn duration(&mut self, p: Pair<'_, Rule>) -> Spanned<Duration> {
        let text = p.as_str().to_string();
        let mut millis: u64 = 0;
        let mut num = String::new();
        let mut chars = text.chars().peekable();
        let mut overflow = false;
        while let Some(c) = chars.next() {
            if c.is_ascii_digit() {
                num.push(c);
                continue;
            }
            let unit: u64 = match c {
                'm' if chars.peek() == Some(&'s') => {
                    chars.next();
                    1
                }
                's' => 1_000,
                'm' => 60_000,
                'h' => 3_600_000,
                'd' => 86_400_000,
                _ => 604_800_000, // w
            };
            let n: u64 = num.parse().unwrap_or(u64::MAX);
            num.clear();
            match n.checked_mul(unit).and_then(|v| millis.checked_add(v)) {
                Some(v) => millis = v,
                None => overflow = true,
            }
        }
        if overflow {
            self.errors.push(SyntaxError::new(
                "E0002",
                format!("duration `{text}` is too long"),
                span(&p),
                "use a shorter duration",
            ));
        }
        Spanned::new(Duration { millis, text }, span(&p))
    }

    fn value(&mut self, p: Pair<'_, Rule>) -> Value {
        let sp = span(&p);
        let kind = match p.as_rule() {
            Rule::string => ValueKind::Str(self.string(p)),
            Rule::signed | Rule::number => ValueKind::Number(self.number(&p), p.as_str().into()),
            Rule::boolean => ValueKind::Bool(p.as_str() == "true"),
            Rule::list => ValueKind::List(p.into_inner().map(|v| self.value(v)).collect()),
            r => unreachable!("not a value: {r:?}"),
        };
        Value { kind, span: sp }
    }

    fn number(&mut self, p: &Pair<'_, Rule>) -> f64 {
        match p.as_str().parse::<f64>() {
            Ok(n) if n.is_finite() => n,
            _ => {
                self.errors.push(SyntaxError::new(
                    "E0002",
                    format!("number `{}` is out of range", p.as_str()),
                    span(p),
                    "use a smaller number",
                ));
                0.0
            }
        }
    }

    fn string(&mut self, p: Pair<'_, Rule>) -> Str {
        let sp = span(&p);
        let mut parts: Vec<StrPart> = Vec::new();
        let push_text = |parts: &mut Vec<StrPart>, t: &str| {
            if let Some(StrPart::Text(last)) = parts.last_mut() {
                last.push_str(t);
            } else {
                parts.push(StrPart::Text(t.to_string()));
            }
        };
        for c in p.into_inner() {
            match c.as_rule() {
                Rule::text => push_text(&mut parts, c.as_str()),
                Rule::escape => {
                    if let Some(ch) = self.escape(&c) {
                        push_text(&mut parts, ch.encode_utf8(&mut [0; 4]));
                    }
                }
                Rule::interp => {
                    let path = c.into_inner().next().expect("interp path");
                    parts.push(StrPart::Interp(Spanned::new(self.path(&path), span(&path))));
                }
                r => unreachable!("not a string part: {r:?}"),
            }
        }
        Str { parts, span: sp }
    }

    fn escape(&mut self, p: &Pair<'_, Rule>) -> Option<char> {
        let s = &p.as_str()[1..];
        let c = match s {
            "\"" => '"',
            "\\" => '\\',
            "n" => '\n',
            "t" => '\t',
            "r" => '\r',
            "0" => '\0',
            "$" => '$',
            _ if s.starts_with("u{") => {
                let hex = &s[2..s.len() - 1];
                match u32::from_str_radix(hex, 16).ok().and_then(char::from_u32) {
                    Some(c) => c,
                    None => {
                        self.errors.push(
                            SyntaxError::new(
                                "E0003",
                                format!("`\\u{{{hex}}}` is not a unicode character"),
                                span(p),
                                "write a code point between 0 and 10FFFF that is not a surrogate",
                            )
                            .with_label("not a unicode character"),
                        );
                        return None;
                    }
                }
            }
            _ => {
                let shown = if s.is_empty() {
                    "\\".to_string()
                } else {
                    format!("\\{s}")
                };
                self.errors.push(SyntaxError::new(
                    "E0003",
                    format!("unknown escape `{shown}` in a string"),
                    span(p),
                    "the escapes are \\\" \\\\ \\n \\t \\r \\0 \\$ and \\u{...}; write \\\\ for a backslash",
                ));
                return None;
            }
        };
        Some(c)
    }

    fn path(&mut self, p: &Pair<'_, Rule>) -> Path {
        let text = p.as_str();
        // path = name ~ segment*: rebuild from the text (segments are `.name` or `[n]`).
        let head_end = text.find(['.', '[']).unwrap_or(text.len());
        let head = text[..head_end].to_string();
        let mut segments = Vec::new();
        for seg in p
            .clone()
            .into_inner()
            .filter(|s| s.as_rule() == Rule::segment)
        {
            let st = seg.as_str();
            if let Some(name) = st.strip_prefix('.') {
                segments.push(Segment::Field(name.to_string()));
            } else {
                let n = &st[1..st.len() - 1];
                match n.parse::<usize>() {
                    Ok(i) => segments.push(Segment::Index(i)),
                    Err(_) => self.errors.push(SyntaxError::new(
                        "E0002",
                        format!("index `{n}` is too large"),
                        span(&seg),
                        "use a smaller index",
                    )),
                }
            }
        }
        Path { head, segments }
    }

    fn expr(&mut self, p: Pair<'_, Rule>) -> Expr {
        let pratt = PrattParser::new()
            .op(Op::infix(Rule::or, Assoc::Left))
            .op(Op::infix(Rule::and, Assoc::Left))
            .op(Op::infix(Rule::eq, Assoc::Left) | Op::infix(Rule::ne, Assoc::Left))
            .op(Op::infix(Rule::lt, Assoc::Left)
                | Op::infix(Rule::le, Assoc::Left)
                | Op::infix(Rule::gt, Assoc::Left)
                | Op::infix(Rule::ge, Assoc::Left))
            .op(Op::infix(Rule::add, Assoc::Left) | Op::infix(Rule::sub, Assoc::Left))
            .op(Op::infix(Rule::mul, Assoc::Left)
                | Op::infix(Rule::div, Assoc::Left)
                | Op::infix(Rule::rem, Assoc::Left))
            .op(Op::prefix(Rule::not) | Op::prefix(Rule::neg));
        pratt
            .map_primary(|p| self.primary(p))
            .map_prefix(|op, rhs| Expr {
                span: span(&op).to(rhs.span),
                kind: ExprKind::Unary {
                    op: if op.as_rule() == Rule::not {
                        UnaryOp::Not
                    } else {
                        UnaryOp::Neg
                    },
                    expr: Box::new(rhs),
                },
            })
            .map_infix(|lhs, op, rhs| Expr {
                span: lhs.span.to(rhs.span),
                kind: ExprKind::Binary {
                    op: binop(op.as_rule()),
                    lhs: Box::new(lhs),
                    rhs: Box::new(rhs),
                },
            })
            .parse(p.into_inner())
    }

    fn primary(&mut self, p: Pair<'_, Rule>) -> Expr {
        let sp = span(&p);
        let kind = match p.as_rule() {
            Rule::number => ExprKind::Number(self.number(&p), p.as_str().into()),
            Rule::string => ExprKind::Str(self.string(p)),
            Rule::boolean => ExprKind::Bool(p.as_str() == "true"),
            Rule::duration => ExprKind::Duration(self.duration(p).node),
            Rule::path => ExprKind::Path(self.path(&p)),
            Rule::paren => {
                ExprKind::Paren(Box::new(self.expr(p.into_inner().next().expect("inner"))))
            }
            Rule::call => {
                let mut i = p.into_inner();
                let name = spanned_str(&i.next().expect("fn name"));
                let args = i.map(|a| self.expr(a)).collect();
                ExprKind::Call { name, args }
            }
            r => unreachable!("not a primary: {r:?}"),
        };
        Expr { kind, span: sp }
    }
}

fn binop(r: Rule) -> BinOp {
    match r {
        Rule::or => BinOp::Or,
        Rule::and => BinOp::And,
        Rule::eq => BinOp::Eq,
        Rule::ne => BinOp::Ne,
        Rule::lt => BinOp::Lt,
        Rule::le => BinOp::Le,
        Rule::gt => BinOp::Gt,
        Rule::ge => BinOp::Ge,
        Rule::add => BinOp::Add,
        Rule::sub => BinOp::Sub,
        Rule::mul => BinOp::Mul,
        Rule::div => BinOp::Div,
        _ => BinOp::Rem,
    }
}

/// The first character at or after `at` that is not whitespace or in a comment.
fn next_code(src: &str, mut at: usize) -> Option<char> {
    loop {
        let c = src[at..].chars().next()?;
        match c {
            ' ' | '\t' | '\r' | '\n' => at += 1,
            '#' => at = src[at..].find('\n').map_or(src.len(), |n| at + n),
            c => return Some(c),
        }
    }
}

// ------------------------------------------------------------------ errors --

/// Parse again with pest's error detail on, which also records the literal tokens it
/// expected (`=`, `{`, `}`, `,` ...): the first, fast parse does not. The setting is global
/// to the process and is left on, since turning it off could race with another thread's
/// parse and make its message depend on timing.
fn detailed_error(rule: Rule, src: &str) -> Option<pest::error::Error<Rule>> {
    pest::set_error_detail(true);
    MlpParser::parse(rule, src).err()
}

/// Keywords that start an item at the top of a file (and never inside a stage).
const TOP_ONLY: &[&str] = &["pipeline", "param", "include", "stage", "for"];

/// Tokens worth naming in "expected ..." when pest wanted them literally.
const STRUCTURAL: &[&str] = &["=", ",", "{", "}", ")", "]"];

/// What the user should read for a grammar rule in "expected ..." messages.
fn describe(r: &Rule) -> Option<&'static str> {
    Some(match r {
        Rule::EOI => "end of file",
        Rule::kw_pipeline | Rule::kw_param | Rule::kw_include => "TOP",
        Rule::kw_stage => "`stage`",
        Rule::kw_for => "`for`",
        Rule::in_decl
        | Rule::out_decl
        | Rule::metrics_decl
        | Rule::after_decl
        | Rule::params_keys
        | Rule::run_decl
        | Rule::check_decl
        | Rule::gate_decl
        | Rule::when_decl
        | Rule::every_decl
        | Rule::timeout_decl
        | Rule::retry_decl
        | Rule::fallback_decl
        | Rule::resources_decl
        | Rule::kw_in
        | Rule::kw_out
        | Rule::kw_metrics
        | Rule::kw_after
        | Rule::kw_run
        | Rule::kw_check
        | Rule::kw_gate
        | Rule::kw_when
        | Rule::kw_every
        | Rule::kw_timeout
        | Rule::kw_retry
        | Rule::kw_fallback
        | Rule::kw_resources
        | Rule::flag => "STAGE",
        Rule::string => "a string",
        Rule::text | Rule::escape | Rule::interp => "the end of the string `\"`",
        Rule::ident | Rule::stage_name | Rule::stage_ref | Rule::name => "a name",
        Rule::key => "a params key",
        Rule::reference => "a stage reference",
        Rule::named_path => "an output (`name = \"path\"`)",
        Rule::expr
        | Rule::path
        | Rule::call
        | Rule::paren
        | Rule::number
        | Rule::boolean
        | Rule::not
        | Rule::neg => "an expression",
        Rule::or
        | Rule::and
        | Rule::eq
        | Rule::ne
        | Rule::le
        | Rule::ge
        | Rule::lt
        | Rule::gt
        | Rule::add
        | Rule::sub
        | Rule::mul
        | Rule::div
        | Rule::rem => "an operator",
        Rule::segment => "`.` or `[`",
        Rule::list => "a list `[...]`",
        Rule::signed => "VALUE",
        Rule::integer => "a whole number",
        Rule::duration => "a duration such as `30m` or `24h`",
        Rule::size => "a size such as `4G`",
        Rule::resource => "a resource (`cpu = 2`, `mem = 4G`, `gpu = 1`)",
        Rule::env_pair => "`NAME = \"value\"`",
        _ => return None,
    })
}

/// What stands at `at`, for "found ...".
fn found_at(src: &str, at: usize) -> String {
    let rest = &src[at..];
    match rest.chars().next() {
        None => "end of file".to_string(),
        Some(c) if c.is_alphanumeric() || c == '_' => {
            let w: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if crate::is_keyword(&w) && !matches!(w.as_str(), "true" | "false") {
                format!("the keyword `{w}`")
            } else {
                format!("`{w}`")
            }
        }
        Some('\n') | Some('\r') => "end of line".to_string(),
        Some('"') => "a string".to_string(),
        Some(c) => format!("`{c}`"),
    }
}

fn next_token_end(src: &str, at: usize) -> usize {
    let rest = &src[at..];
    match rest.chars().next() {
        None => at,
        Some(c) if c.is_alphanumeric() || c == '_' => {
            at + rest
                .char_indices()
                .find(|(_, c)| !(c.is_alphanumeric() || *c == '_'))
                .map_or(rest.len(), |(i, _)| i)
        }
        Some(c) => at + c.len_utf8(),
    }
}

/// Braces and strings still open at some offset, found by a small scanner that knows
/// strings, escapes and comments.
struct Open {
    /// Offsets of the `{` still open, innermost last.
    braces: Vec<usize>,
    /// Offsets of the `[` still open, innermost last.
    brackets: Vec<usize>,
    /// Where the string still open starts.
    string: Option<usize>,
}

fn open_at(src: &str, upto: usize) -> Open {
    let b = src.as_bytes();
    let upto = upto.min(b.len());
    let mut braces = Vec::new();
    let mut brackets = Vec::new();
    let mut string = None;
    let mut i = 0;
    while i < upto {
        match (string.is_some(), b[i]) {
            (true, b'\\') => i += 1,
            (true, b'"') => string = None,
            (true, _) => {}
            (false, b'"') => string = Some(i),
            (false, b'#') => {
                i = src[i..upto].find('\n').map_or(upto, |n| i + n);
                continue;
            }
            (false, b'{') => braces.push(i),
            (false, b'[') => brackets.push(i),
            (false, b']') => {
                brackets.pop();
            }
            (false, b'}') => {
                braces.pop();
            }
            _ => {}
        }
        i += 1;
    }
    Open {
        braces,
        brackets,
        string,
    }
}

/// What the `{` at `brace` opens: "stage `train`", "the `for` loop", ...
fn block_name(src: &str, brace: usize) -> String {
    let line_start = src[..brace].rfind('\n').map_or(0, |i| i + 1);
    let head = src[line_start..brace].trim();
    if let Some(name) = head.strip_prefix("stage") {
        let name = name.trim().trim_matches('"');
        if !name.is_empty() {
            return format!("stage `{name}`");
        }
        return "the stage".into();
    }
    match head.split_whitespace().next() {
        Some("for") => "the `for` loop".into(),
        Some("env") => "the `env` block".into(),
        _ => "this block".into(),
    }
}

fn convert_error(src: &str, e: pest::error::Error<Rule>) -> SyntaxError {
    let mut at = match e.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((s, _)) => s,
    }
    .min(src.len());
    let (positives, negatives) = match &e.variant {
        pest::error::ErrorVariant::ParsingError {
            positives,
            negatives,
        } => (positives.clone(), negatives.clone()),
        pest::error::ErrorVariant::CustomError { .. } => (vec![], vec![]),
    };
    // The literal tokens pest wanted where it got furthest (with error detail on).
    let (tok_at, tokens): (usize, Vec<String>) = match e.parse_attempts() {
        Some(a) => (
            a.max_position.min(src.len()),
            a.expected_tokens().iter().map(|t| t.to_string()).collect(),
        ),
        None => (at, Vec::new()),
    };
    let structural: Vec<&str> = STRUCTURAL
        .iter()
        .copied()
        .filter(|s| tokens.iter().any(|t| t == s))
        .collect();
    let wants_top = tokens.iter().any(|t| t == "pipeline");
    let mut expected: Vec<&str> = positives.iter().filter_map(describe).collect();
    let no_rule = positives.is_empty() || positives == [Rule::file];
    let mut tokens_here = tok_at == at;
    if tok_at > at && !structural.is_empty() || no_rule && tok_at >= at {
        // pest wanted a literal (`=`, `{` ...) further on than any rule it tried.
        at = tok_at;
        expected.clear();
        tokens_here = true;
        if wants_top {
            expected.push("TOP");
        }
    }
    // The catch-all `unknown_item` starts with a name: do not offer "a name" where an item
    // keyword is expected.
    let item_place =
        expected.iter().any(|d| matches!(*d, "TOP" | "STAGE")) || expected.contains(&"`stage`");
    if item_place {
        expected.retain(|d| *d != "a name");
    }
    if expected.contains(&"an expression") {
        expected.retain(|d| {
            !matches!(
                *d,
                "a name" | "a string" | "a duration such as `30m` or `24h`" | "a list `[...]`"
            )
        });
    }
    if expected.contains(&"VALUE") {
        expected.retain(|d| !matches!(*d, "a string" | "a list `[...]`" | "an expression"));
    }
    if expected.contains(&"TOP") {
        expected.retain(|d| !matches!(*d, "`stage`" | "`for`"));
    }
    let mut seen = Vec::new();
    expected.retain(|d| {
        let new = !seen.contains(d);
        seen.push(*d);
        new
    });
    let mut words: Vec<String> = expected
        .iter()
        .map(|d| match *d {
            "TOP" => "an item (`stage`, `param`, `include`, ...)".to_string(),
            "STAGE" => "a stage item (`in`, `out`, `run`, ...)".to_string(),
            "VALUE" => "a value (a number, a string, `true`, `false` or a list)".to_string(),
            d => d.to_string(),
        })
        .collect();
    if tokens_here {
        for s in &structural {
            words.push(format!("`{s}`"));
        }
    }
    // Inside a stage, a `for` loop or an `env` block, `}` may always come next.
    let in_block = expected.contains(&"STAGE")
        || expected.contains(&"`NAME = \"value\"`")
        || (expected.contains(&"`stage`") && !expected.contains(&"TOP"));
    if in_block && !words.iter().any(|w| w == "`}`") {
        words.push("`}`".to_string());
    }

    let found = found_at(src, at);
    let end = next_token_end(src, at);
    let word: String = src[at..]
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    let wants_close = in_block || tokens_here && structural.contains(&"}");

    if at == src.len() {
        let open = open_at(src, at);
        // An unterminated string runs to the end of the file: point at where it starts.
        if let Some(start) = open.string {
            return SyntaxError::new(
                "E0004",
                "unterminated string".to_string(),
                Span::new(start, start + 1),
                "close the string with `\"` (a string may span lines, so one missing `\"` runs to the end of the file)",
            )
            .with_label("this string is never closed");
        }
        if let Some(&brace) = open.braces.last()
            && (wants_close || item_place)
        {
            let what = block_name(src, brace);
            return SyntaxError::new(
                "E0001",
                format!("expected `}}` to close {what}, found end of file"),
                Span::new(brace, brace + 1),
                &format!("add `}}` after the last item of {what}"),
            )
            .with_label("this `{` is never closed");
        }
    }
    // A block whose head is not a keyword (`stag prep {`): the catch-all item took the head
    // and its `{`, and the parse failed on the first item inside the block.
    if expected.contains(&"TOP") || expected.contains(&"`stage`") {
        let open = open_at(src, at);
        if let Some(&brace) = open.braces.last() {
            let line_start = src[..brace].rfind('\n').map_or(0, |i| i + 1);
            let head = src[line_start..brace].trim_start();
            let head_at = brace - head.len();
            let word: &str = &head[..head
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(head.len())];
            if !word.is_empty()
                && !crate::is_keyword(word)
                && word.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            {
                let blocks: &[&str] = if expected.contains(&"TOP") {
                    &["stage", "for", "env"]
                } else {
                    &["stage", "for"]
                };
                let help = match closest(word, blocks) {
                    Some(k) => format!("did you mean `{k}`?"),
                    None => format!(
                        "a block here starts with {}",
                        join_or(&blocks.iter().map(|b| format!("`{b}`")).collect::<Vec<_>>())
                    ),
                };
                return SyntaxError::new(
                    "E0101",
                    format!("unknown keyword `{word}`"),
                    Span::new(head_at, head_at + word.len()),
                    &help,
                )
                .with_label("not a keyword")
                .with_also(Span::new(brace, brace + 1), "so this block is not read");
            }
        }
    }
    // A new top-level item where a `}` was still expected: the block above is not closed.
    if wants_close && TOP_ONLY.contains(&word.as_str()) && !tokens.contains(&word) {
        let open = open_at(src, at);
        if let Some(&brace) = open.braces.last() {
            let what = block_name(src, brace);
            return SyntaxError::new(
                "E0001",
                format!("expected `}}` to close {what}, found the keyword `{word}`"),
                Span::new(at, end),
                &format!("add `}}` after the last item of {what}"),
            )
            .with_label(format!("`}}` missing before this `{word}`"))
            .with_also(Span::new(brace, brace + 1), format!("{what} opens here"));
        }
    }
    // A `}` at the top of the file closes nothing.
    if src[at..].starts_with('}') && expected.contains(&"TOP") && open_at(src, at).braces.is_empty()
    {
        return SyntaxError::new(
            "E0001",
            "unexpected `}`: no `{` is open here".to_string(),
            Span::new(at, at + 1),
            "remove this `}`, or check the braces above it",
        )
        .with_label("closes nothing");
    }

    let message = if words.is_empty() {
        if negatives.is_empty() {
            format!("unexpected {found}")
        } else {
            format!("{found} cannot be used here")
        }
    } else {
        format!("expected {}, found {found}", join_or(&words))
    };
    let mut help = help_for(&expected, &structural, src, at);
    // At the end of the file, point just after the last token (an empty span past the
    // last line shows nothing).
    let span = if at == src.len() {
        let last = src.trim_end().len();
        Span::new(last, last)
    } else {
        Span::new(at, end)
    };
    // A list not closed before the next item or the end of the file: show where it opens.
    if structural.contains(&"]")
        && (at == src.len() || TOP_ONLY.contains(&word.as_str()))
        && let Some(&bracket) = open_at(src, at).brackets.last()
    {
        help = "close the list with `]`".to_string();
        return SyntaxError::new("E0001", message, span, &help)
            .with_also(Span::new(bracket, bracket + 1), "this `[` is never closed");
    }
    SyntaxError::new("E0001", message, span, &help)
}

/// The candidate closest to `word` by edit distance, if it is a likely typo of it.
fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    fn distance(a: &str, b: &str) -> usize {
        let b: Vec<char> = b.chars().collect();
        let mut prev: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut cur = vec![i + 1];
            for (j, cb) in b.iter().enumerate() {
                let sub = prev[j] + usize::from(ca != *cb);
                cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
            }
            prev = cur;
        }
        prev[b.len()]
    }
    candidates
        .iter()
        .map(|c| (distance(word, c), *c))
        .filter(|(d, c)| *d <= 2 && *d < c.len().min(word.len()))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn join_or(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [a] => a.clone(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

fn help_for(expected: &[&str], structural: &[&str], src: &str, at: usize) -> String {
    let word: String = src[at..]
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    let before = src[..at].trim_end();
    if expected.contains(&"a name") && !word.is_empty() && crate::is_keyword(&word) {
        return format!("`{word}` is a keyword; choose another name or write it as a string");
    }
    if structural.contains(&",")
        && !src[at..].starts_with(['\n', '\r', '}'])
        && !src[at..].is_empty()
    {
        return "a list continues only after a comma: `in \"a.csv\", \"b.csv\"`".to_string();
    }
    if expected.contains(&"an output (`name = \"path\"`)") {
        return "write `out \"path\"` or `out name = \"path\"`".to_string();
    }
    if expected.contains(&"STAGE") {
        if word.is_empty() {
            return "a stage holds items such as `in`, `out`, `run`, one after another; close it with `}`".to_string();
        }
        return format!(
            "`{word}` cannot start a stage item here: check the line before it (a list continues only after a comma)"
        );
    }
    if expected.contains(&"TOP") {
        return "a file holds `pipeline`, `params`, `param`, `env`, `stage`, `for` and `include` items".to_string();
    }
    if expected.contains(&"`stage`") {
        return "a `for` loop holds `stage` and `for` items".to_string();
    }
    if before.ends_with("${") {
        return "`${...}` holds a name such as `${params.lr}`, `${out.model}` or `${in[0]}`; write `\\$` for a literal `$`".to_string();
    }
    if structural.contains(&"=") {
        return "write `name = value`".to_string();
    }
    if structural.contains(&"{") {
        return "the items of a stage, a `for` loop or an `env` block go between `{` and `}`"
            .to_string();
    }
    if structural.contains(&"]") {
        return "close the list with `]`, or separate its items with commas".to_string();
    }
    if expected.contains(&"a whole number") {
        return "write a whole number such as `0` or `3`".to_string();
    }
    if expected.contains(&"an operator") && structural.contains(&")") {
        return "close the parenthesis with `)`".to_string();
    }
    if expected.contains(&"VALUE") {
        return "a value is a number, a string in double quotes, `true`, `false` or a list `[...]`"
            .to_string();
    }
    if expected.contains(&"a string") {
        return "strings are written in double quotes: \"...\"".to_string();
    }
    if expected.contains(&"an expression") || expected.contains(&"an operator") {
        return "an expression is made of metrics, params, numbers, strings, comparisons and `&&`, `||`, `!`".to_string();
    }
    if expected.contains(&"a duration such as `30m` or `24h`") {
        return "a duration is a number with a unit: `ms`, `s`, `m`, `h`, `d` or `w` (`90s`, `1h30m`)".to_string();
    }
    "see the language reference in the book (book/src/reference.md)".to_string()
}
