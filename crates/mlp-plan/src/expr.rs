//! Resolved expressions of `check`, `gate` and `when`: every name is bound to a param
//! value, a stage's metrics, the baseline's metrics or a stage's failure.

pub use mlp_syntax::ast::Segment;
use mlp_syntax::ast::{BinOp, UnaryOp};
use serde::{Deserialize, Serialize};

use crate::id::StageId;
use crate::value::Value;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Cond {
    Const(Value),
    /// `params.key`: its value is known when the plan is made.
    Param {
        key: String,
        value: Value,
    },
    /// `name.field` (own metrics) or `stage.name.field`.
    Metric {
        stage: StageId,
        name: String,
        field: Vec<Segment>,
    },
    /// `baseline.<metric path>`: the same metric in the last promoted run.
    Baseline {
        stage: StageId,
        name: String,
        field: Vec<Segment>,
    },
    /// `failed(stage)`: the stage, its check or its gate failed in this run.
    Failed(StageId),
    Unary {
        op: UnaryOp,
        expr: Box<Cond>,
    },
    Binary {
        op: BinOp,
        lhs: Box<Cond>,
        rhs: Box<Cond>,
    },
    Call {
        func: Func,
        args: Vec<Cond>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Func {
    Abs,
    Min,
    Max,
}

impl Func {
    pub fn name(self) -> &'static str {
        match self {
            Func::Abs => "abs",
            Func::Min => "min",
            Func::Max => "max",
        }
    }
}

/// The static type of an expression, where it can be seen before anything runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    Bool,
    Num,
    Str,
    Other,
    /// Known only when the metrics are read.
    Any,
}

impl Ty {
    pub fn of(v: &Value) -> Ty {
        match v {
            Value::Bool(_) => Ty::Bool,
            Value::Int(_) | Value::Float(_) => Ty::Num,
            Value::Str(_) => Ty::Str,
            _ => Ty::Other,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Ty::Bool => "bool",
            Ty::Num => "number",
            Ty::Str => "string",
            Ty::Other => "list or map",
            Ty::Any => "any",
        }
    }
    fn is(self, want: Ty) -> bool {
        self == want || self == Ty::Any
    }
}

/// What a run knows when it evaluates a condition.
pub trait EvalContext {
    /// A field of a stage's metrics in this run (`None`: no such metrics or field).
    fn metric(&self, stage: StageId, name: &str, field: &[Segment]) -> Option<Value>;
    /// The same in the baseline run (`None`: no baseline, or no such field in it).
    fn baseline(&self, stage: StageId, name: &str, field: &[Segment]) -> Option<Value>;
    /// Whether the stage (or its check or gate) failed in this run.
    fn failed(&self, stage: StageId) -> bool;
}

/// Why a condition could not be evaluated.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum EvalError {
    /// A metric was missing: its description (`eval.auc`).
    #[error("metric `{0}` is missing")]
    Missing(String),
    /// The baseline lacks a value (no promoted run yet, or the field is new).
    #[error("the baseline has no `{0}`")]
    NoBaseline(String),
    #[error("{0}")]
    Type(String),
}

pub fn field_text(name: &str, field: &[Segment]) -> String {
    let mut s = name.to_string();
    for f in field {
        match f {
            Segment::Field(x) => {
                s.push('.');
                s.push_str(x);
            }
            Segment::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

impl Cond {
    /// Every stage whose metrics or failure this condition reads.
    pub fn stages(&self, out: &mut Vec<(StageId, bool)>) {
        match self {
            Cond::Metric { stage, .. } => out.push((*stage, false)),
            Cond::Failed(s) => out.push((*s, true)),
            Cond::Unary { expr, .. } => expr.stages(out),
            Cond::Binary { lhs, rhs, .. } => {
                lhs.stages(out);
                rhs.stages(out);
            }
            Cond::Call { args, .. } => args.iter().for_each(|a| a.stages(out)),
            Cond::Const(_) | Cond::Param { .. } | Cond::Baseline { .. } => {}
        }
    }

    /// Whether it reads the baseline anywhere.
    pub fn uses_baseline(&self) -> bool {
        match self {
            Cond::Baseline { .. } => true,
            Cond::Unary { expr, .. } => expr.uses_baseline(),
            Cond::Binary { lhs, rhs, .. } => lhs.uses_baseline() || rhs.uses_baseline(),
            Cond::Call { args, .. } => args.iter().any(Cond::uses_baseline),
            _ => false,
        }
    }

    /// Evaluate. `seen` collects `text = value` of every metric, param and baseline read,
    /// so that a failure can say what it saw.
    pub fn eval(
        &self,
        ctx: &dyn EvalContext,
        names: &dyn Fn(StageId) -> String,
        seen: &mut Vec<(String, Value)>,
    ) -> Result<Value, EvalError> {
        Ok(match self {
            Cond::Const(v) => v.clone(),
            Cond::Param { key, value } => {
                seen.push((format!("params.{key}"), value.clone()));
                value.clone()
            }
            Cond::Metric { stage, name, field } => {
                let text = field_text(name, field);
                let v = ctx
                    .metric(*stage, name, field)
                    .ok_or_else(|| EvalError::Missing(format!("{}.{text}", names(*stage))))?;
                seen.push((text, v.clone()));
                v
            }
            Cond::Baseline { stage, name, field } => {
                let text = format!("baseline.{}", field_text(name, field));
                let v = ctx
                    .baseline(*stage, name, field)
                    .ok_or_else(|| EvalError::NoBaseline(field_text(name, field)))?;
                seen.push((text, v.clone()));
                v
            }
            Cond::Failed(s) => Value::Bool(ctx.failed(*s)),
            Cond::Unary { op, expr } => {
                let v = expr.eval(ctx, names, seen)?;
                match (op, &v) {
                    (UnaryOp::Not, Value::Bool(b)) => Value::Bool(!b),
                    (UnaryOp::Neg, Value::Int(i)) => Value::Int(-i),
                    (UnaryOp::Neg, Value::Float(f)) => Value::Float(-f),
                    _ => {
                        return Err(EvalError::Type(format!(
                            "cannot apply `{}` to a {}",
                            if *op == UnaryOp::Not { "!" } else { "-" },
                            v.type_name()
                        )));
                    }
                }
            }
            Cond::Binary { op, lhs, rhs } => {
                // Short-circuit the logical operators.
                if matches!(op, BinOp::And | BinOp::Or) {
                    let l = as_bool(&lhs.eval(ctx, names, seen)?, *op)?;
                    if (*op == BinOp::And && !l) || (*op == BinOp::Or && l) {
                        return Ok(Value::Bool(l));
                    }
                    return Ok(Value::Bool(as_bool(&rhs.eval(ctx, names, seen)?, *op)?));
                }
                let l = lhs.eval(ctx, names, seen);
                let r = rhs.eval(ctx, names, seen);
                match (l, r) {
                    (Ok(l), Ok(r)) => {
                        let v = binary(*op, &l, &r)?;
                        if op.is_comparison() {
                            // The values actually compared, for the message.
                            seen.push((OPERANDS.to_string(), Value::List(vec![l, r])));
                        }
                        v
                    }
                    (Err(e @ (EvalError::Missing(_) | EvalError::Type(_))), _)
                    | (_, Err(e @ (EvalError::Missing(_) | EvalError::Type(_)))) => return Err(e),
                    // No baseline yet (no promoted run, or a metric it did not have): a
                    // comparison with it holds, so the first model can become the baseline.
                    (Err(EvalError::NoBaseline(f)), _) | (_, Err(EvalError::NoBaseline(f)))
                        if op.is_comparison() =>
                    {
                        seen.push((format!("baseline.{f}"), Value::Str("none".into())));
                        Value::Bool(true)
                    }
                    (Err(e), _) | (_, Err(e)) => return Err(e),
                }
            }
            Cond::Call { func, args } => {
                let vals = args
                    .iter()
                    .map(|a| {
                        let v = a.eval(ctx, names, seen)?;
                        v.as_f64().ok_or_else(|| {
                            EvalError::Type(format!(
                                "`{}` takes numbers, not a {}",
                                func.name(),
                                v.type_name()
                            ))
                        })
                    })
                    .collect::<Result<Vec<f64>, _>>()?;
                let r = match func {
                    Func::Abs => vals[0].abs(),
                    Func::Min => vals.iter().copied().fold(f64::INFINITY, f64::min),
                    Func::Max => vals.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                };
                Value::Float(r)
            }
        })
    }
}

fn as_bool(v: &Value, op: BinOp) -> Result<bool, EvalError> {
    match v {
        Value::Bool(b) => Ok(*b),
        _ => Err(EvalError::Type(format!(
            "`{}` needs bools, found a {}",
            op.symbol(),
            v.type_name()
        ))),
    }
}

fn binary(op: BinOp, l: &Value, r: &Value) -> Result<Value, EvalError> {
    use std::cmp::Ordering;
    let ord = match (l, r) {
        (Value::Str(a), Value::Str(b)) => Some(a.cmp(b)),
        (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
        _ => match (l.as_f64(), r.as_f64()) {
            (Some(a), Some(b)) => a.partial_cmp(&b),
            _ => None,
        },
    };
    let type_err = || {
        EvalError::Type(format!(
            "cannot use `{}` on a {} and a {}",
            op.symbol(),
            l.type_name(),
            r.type_name()
        ))
    };
    Ok(match op {
        BinOp::Eq => Value::Bool(ord == Some(Ordering::Equal) || (l == r)),
        BinOp::Ne => Value::Bool(!(ord == Some(Ordering::Equal) || (l == r))),
        BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
            if matches!(l, Value::Bool(_)) {
                return Err(type_err());
            }
            let o = ord.ok_or_else(type_err)?;
            Value::Bool(match op {
                BinOp::Lt => o == Ordering::Less,
                BinOp::Le => o != Ordering::Greater,
                BinOp::Gt => o == Ordering::Greater,
                _ => o != Ordering::Less,
            })
        }
        _ => {
            if let (Value::Int(a), Value::Int(b)) = (l, r) {
                let v = match op {
                    BinOp::Add => a.checked_add(*b),
                    BinOp::Sub => a.checked_sub(*b),
                    BinOp::Mul => a.checked_mul(*b),
                    BinOp::Rem => a.checked_rem(*b),
                    _ => None,
                };
                if let Some(v) = v {
                    return Ok(Value::Int(v));
                }
            }
            let (a, b) = (
                l.as_f64().ok_or_else(type_err)?,
                r.as_f64().ok_or_else(type_err)?,
            );
            Value::Float(match op {
                BinOp::Add => a + b,
                BinOp::Sub => a - b,
                BinOp::Mul => a * b,
                BinOp::Div => a / b,
                _ => a % b,
            })
        }
    })
}

/// "a string", "an int", "any value".
pub fn article(t: &str) -> String {
    match t {
        "any" => "any value".to_string(),
        t if t.starts_with(['a', 'e', 'i', 'o', 'u']) => format!("an {t}"),
        t => format!("a {t}"),
    }
}

/// Why a binary operation does not type-check (`binary_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TypeError {
    /// `&&` or `||` on something that is not a condition.
    #[error("`{}` needs two conditions, found {} and {}", .op.symbol(), article(.lhs.name()), article(.rhs.name()))]
    NotConditions { op: BinOp, lhs: Ty, rhs: Ty },
    /// Any other operator on operands it cannot combine.
    #[error("`{}` cannot combine {} and {}", .op.symbol(), article(.lhs.name()), article(.rhs.name()))]
    CannotCombine { op: BinOp, lhs: Ty, rhs: Ty },
}

/// The static type of a binary operation, or why it is wrong.
pub fn binary_type(op: BinOp, l: Ty, r: Ty) -> Result<Ty, TypeError> {
    let bad = || TypeError::CannotCombine { op, lhs: l, rhs: r };
    match op {
        BinOp::And | BinOp::Or => {
            if l.is(Ty::Bool) && r.is(Ty::Bool) {
                Ok(Ty::Bool)
            } else {
                Err(TypeError::NotConditions { op, lhs: l, rhs: r })
            }
        }
        BinOp::Eq | BinOp::Ne => {
            if l == Ty::Any || r == Ty::Any || l == r {
                Ok(Ty::Bool)
            } else {
                Err(bad())
            }
        }
        BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
            let ok = (l.is(Ty::Num) && r.is(Ty::Num)) || (l.is(Ty::Str) && r.is(Ty::Str));
            if ok && l != Ty::Bool && r != Ty::Bool {
                Ok(Ty::Bool)
            } else {
                Err(bad())
            }
        }
        _ => {
            if l.is(Ty::Num) && r.is(Ty::Num) {
                Ok(Ty::Num)
            } else {
                Err(bad())
            }
        }
    }
}

/// The rendering of what an assertion saw: `(0.812 >= 0.845)` for a comparison of two
/// reads, else the list `eval.auc = 0.812, ...`.
pub fn describe_seen(cond: &Cond, seen: &[(String, Value)]) -> String {
    // A comparison: the two values it compared, `(0.812 >= 0.845)`, and what they are
    // made of when an operand is computed (`baseline.eval.auc - 0.01`).
    if let Cond::Binary { op, .. } = cond
        && op.is_comparison()
        && let Some((_, Value::List(lr))) = seen.iter().rev().find(|(k, _)| k == OPERANDS)
        && lr.len() == 2
    {
        let parts: Vec<String> = seen
            .iter()
            .filter(|(k, _)| k != OPERANDS)
            .map(|(k, v)| format!("{k} = {v}"))
            .collect();
        let plain = |c: &Cond| {
            matches!(
                c,
                Cond::Const(_) | Cond::Metric { .. } | Cond::Baseline { .. } | Cond::Param { .. }
            )
        };
        let all_plain = matches!(cond, Cond::Binary { lhs, rhs, .. } if plain(lhs) && plain(rhs));
        let head = format!("{} {} {}", lr[0], op.symbol(), lr[1]);
        return if all_plain || parts.is_empty() {
            format!("({head})")
        } else {
            format!("({head}; {})", parts.join(", "))
        };
    }
    let list: Vec<String> = seen
        .iter()
        .filter(|(k, _)| k != OPERANDS)
        .map(|(k, v)| format!("{k} = {v}"))
        .collect();
    format!("({})", list.join(", "))
}

/// The key under which a comparison records its two operands in `seen`.
const OPERANDS: &str = "\u{0}operands";
