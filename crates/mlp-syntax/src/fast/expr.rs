//! Expressions (`check`, `gate`, `when`), built as the Pratt parser in `parser/build.rs`
//! builds them.

use super::cursor::{P, R};
use crate::ast::*;

impl P<'_> {
    /// `expr = { prefix* ~ primary ~ (infix ~ prefix* ~ primary)* }`, built as the Pratt
    /// parser in `parser/build.rs` builds it: all operators left-associative, prefixes
    /// tightest.
    pub(super) fn expr(&mut self) -> R<Expr> {
        self.deeper()?;
        let e = self.binary(0)?;
        self.shallower();
        Ok(e)
    }

    fn binary(&mut self, min: u8) -> R<Expr> {
        let mut lhs = self.unary()?;
        loop {
            let save = self.i;
            self.skip();
            let Some((op, len)) = self.infix() else {
                self.i = save;
                return Ok(lhs);
            };
            let prec = op.precedence();
            if prec < min {
                self.i = save;
                return Ok(lhs);
            }
            self.i += len;
            self.skip();
            let rhs = self.binary(prec + 1)?;
            lhs = Expr {
                span: lhs.span.to(rhs.span),
                kind: ExprKind::Binary {
                    op,
                    lhs: Box::new(lhs),
                    rhs: Box::new(rhs),
                },
            };
        }
    }

    fn infix(&self) -> Option<(BinOp, usize)> {
        const OPS: &[(&str, BinOp)] = &[
            ("||", BinOp::Or),
            ("&&", BinOp::And),
            ("==", BinOp::Eq),
            ("!=", BinOp::Ne),
            ("<=", BinOp::Le),
            (">=", BinOp::Ge),
            ("<", BinOp::Lt),
            (">", BinOp::Gt),
            ("+", BinOp::Add),
            ("-", BinOp::Sub),
            ("*", BinOp::Mul),
            ("/", BinOp::Div),
            ("%", BinOp::Rem),
        ];
        OPS.iter()
            .find(|(s, _)| self.at(s))
            .map(|(s, op)| (*op, s.len()))
    }

    fn unary(&mut self) -> R<Expr> {
        let op = match self.next_byte("expression")? {
            b'!' => UnaryOp::Not,
            b'-' => UnaryOp::Neg,
            _ => return self.primary(),
        };
        self.deeper()?;
        let start = self.i;
        self.i += 1;
        self.skip();
        let rhs = self.unary()?;
        self.shallower();
        Ok(Expr {
            span: Span::new(start, rhs.span.end),
            kind: ExprKind::Unary {
                op,
                expr: Box::new(rhs),
            },
        })
    }

    /// `primary = _{ call | duration | number | string | boolean | path | paren }`.
    fn primary(&mut self) -> R<Expr> {
        let start = self.i;
        let kind = match self.next_byte("expression")? {
            b'"' => ExprKind::Str(self.string()?),
            b'(' => {
                self.i += 1;
                self.skip();
                let inner = self.expr()?;
                self.skip();
                self.expect(")", "expression")?;
                ExprKind::Paren(Box::new(inner))
            }
            b'0'..=b'9' => match self.duration() {
                Ok(d) => ExprKind::Duration(d.node),
                Err(_) => {
                    self.i = start;
                    let (n, text, _) = self.number(false)?;
                    ExprKind::Number(n, text)
                }
            },
            _ => {
                if let Some(call) = self.call() {
                    call?
                } else {
                    self.i = start;
                    match self.boolean() {
                        Some(b) => ExprKind::Bool(b),
                        None => ExprKind::Path(self.path("expression")?),
                    }
                }
            }
        };
        Ok(Expr {
            kind,
            span: Span::new(start, self.i),
        })
    }

    /// `call = { ident ~ "(" ~ (expr ~ ("," ~ expr)*)? ~ ")" }`: `None` when no `ident (`
    /// starts here (then it is a boolean or a path).
    fn call(&mut self) -> Option<R<ExprKind>> {
        let name = self.ident("call").ok()?;
        self.skip();
        if !self.eat("(") {
            return None;
        }
        Some(self.call_args(name))
    }

    fn call_args(&mut self, name: Spanned<String>) -> R<ExprKind> {
        self.skip();
        let mut args = Vec::new();
        if self.peek() != Some(b')') {
            args = self.list_of(Self::expr)?;
            self.skip();
        }
        self.expect(")", "call")?;
        Ok(ExprKind::Call { name, args })
    }
}
