//! pest pairs → the typed AST (the `Builder`).

use pest::iterators::{Pair, Pairs};
use pest::pratt_parser::{Assoc, Op, PrattParser};

use super::grammar::Rule;
use crate::Code;
use crate::ast::*;
use crate::error::SyntaxError;

fn span(p: &Pair<'_, Rule>) -> Span {
    Span::new(p.as_span().start(), p.as_span().end())
}

fn spanned_str(p: &Pair<'_, Rule>) -> Spanned<String> {
    Spanned::new(p.as_str().to_string(), span(p))
}

pub(super) struct Builder {
    pub(super) errors: Vec<SyntaxError>,
}

impl Builder {
    pub(super) fn item(&mut self, p: Pair<'_, Rule>) -> Item {
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
            Rule::tracking_decl => {
                let Executor { name, settings } = self.executor(inner);
                ItemKind::Tracking(Tracking { name, settings })
            }
            Rule::cache_decl => {
                inner.next(); // keyword
                ItemKind::Cache(spanned_str(&inner.next().expect("mode")))
            }
            Rule::remote_decl => {
                inner.next(); // keyword
                let url_pair = inner.next().expect("remote URL");
                let has_block =
                    next_code(url_pair.get_input(), url_pair.as_span().end()) == Some('{');
                let url = self.string(url_pair);
                let settings = self.settings(inner);
                ItemKind::Remote(Remote {
                    url,
                    settings: has_block.then_some(settings),
                })
            }
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
        let settings = self.settings(inner);
        Executor {
            name,
            settings: has_block.then_some(settings),
        }
    }

    /// The `setting`s of an `executor`, `tracking` or `remote` block.
    fn settings(&mut self, inner: Pairs<'_, Rule>) -> Vec<Setting> {
        inner
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
            .collect()
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
                kind: StageItemKind::Executor(Box::new(self.executor(inner))),
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
            Rule::cache_decl => StageItemKind::Cache(spanned_str(&inner.next().expect("mode"))),
            Rule::check_decl | Rule::gate_decl => {
                let expr = Box::new(self.expr(inner.next().expect("expr")));
                let message = inner.next().map(|m| self.string(m));
                if rule == Rule::check_decl {
                    StageItemKind::Check { expr, message }
                } else {
                    StageItemKind::Gate { expr, message }
                }
            }
            Rule::when_decl => {
                StageItemKind::When(Box::new(self.expr(inner.next().expect("expr"))))
            }
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
                    Code::TooLarge,
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
                Code::TooLarge,
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
                Code::TooLarge,
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
                    Code::TooLarge,
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
                                Code::UnknownEscape,
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
                    Code::UnknownEscape,
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
                        Code::TooLarge,
                        format!("index `{n}` is too large"),
                        span(&seg),
                        "use a smaller index",
                    )),
                }
            }
        }
        Path { head, segments }
    }

    pub(super) fn expr(&mut self, p: Pair<'_, Rule>) -> Expr {
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
