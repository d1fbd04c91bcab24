//! The typed syntax tree of one `.mlp` file. Every node carries the byte span it came from.

use serde::{Deserialize, Serialize};

/// A byte range `start..end` in one source file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }
    pub fn len(&self) -> usize {
        self.end - self.start
    }
    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }
    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }
}

/// A value with the span it was written at.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Spanned<T> {
    pub node: T,
    pub span: Span,
}

impl<T> Spanned<T> {
    pub fn new(node: T, span: Span) -> Self {
        Spanned { node, span }
    }
}

/// A whole file: its items in order, and its comments (kept apart, for `mlp fmt`).
#[derive(Clone, Debug, PartialEq)]
pub struct File {
    pub items: Vec<Item>,
    pub comments: Vec<Comment>,
}

/// A `# ...` comment: its text without the `#`, and where it stands.
#[derive(Clone, Debug, PartialEq)]
pub struct Comment {
    pub text: String,
    pub span: Span,
    /// Code stands before it on the same line.
    pub trailing: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    pub kind: ItemKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ItemKind {
    /// `pipeline "name"`
    Pipeline(Str),
    /// `params "params.yaml", "more.toml"`
    ParamsFiles(Vec<Str>),
    /// `param train.lr = 0.1`
    Param {
        key: Spanned<String>,
        value: Value,
    },
    /// `env { KEY = "value" }`
    Env(Vec<EnvPair>),
    Stage(Stage),
    /// `for x in [..] { stages }` or `for x in params.key { stages }`
    For(ForLoop),
    /// `include "other.mlp"`
    Include(Str),
    /// `executor slurm { partition = "gpu" }`: where the stages run.
    Executor(Executor),
    /// `tracking mlflow { uri = "http://..." }`: where runs are exported.
    Tracking(Tracking),
    /// `cache copy` or `cache link`: how outputs are stored and restored (the mode is
    /// checked when the pipeline is planned).
    Cache(Spanned<String>),
    /// `remote "s3://bucket/cache" { pull = true }`: the team remote.
    Remote(Remote),
    /// A line that starts with a word that is no keyword.
    Unknown(Spanned<String>),
}

/// `tracking NAME` with an optional block of settings, shaped like an `executor` item:
/// `tracking mlflow { uri = "http://127.0.0.1:5000"  experiment = "churn" }`.
#[derive(Clone, Debug, PartialEq)]
pub struct Tracking {
    /// `mlflow` (checked when the pipeline is planned).
    pub name: Spanned<String>,
    /// `None` without a block; `Some` (maybe empty) with `{ ... }`.
    pub settings: Option<Vec<Setting>>,
}

/// `remote "URL"` with an optional block of settings: `remote "/shared/cache" { pull = true }`.
#[derive(Clone, Debug, PartialEq)]
pub struct Remote {
    /// A directory, `file://PATH` or `s3://BUCKET/PREFIX` (checked when planned).
    pub url: Str,
    /// `None` without a block; `Some` (maybe empty) with `{ ... }`.
    pub settings: Option<Vec<Setting>>,
}

/// `executor NAME` with an optional block of settings: `executor slurm { time = 2h }`.
#[derive(Clone, Debug, PartialEq)]
pub struct Executor {
    /// `local` or `slurm` (checked when the pipeline is planned).
    pub name: Spanned<String>,
    /// `None` without a block; `Some` (maybe empty) with `{ ... }`.
    pub settings: Option<Vec<Setting>>,
}

/// `name = value` inside an `executor` block.
#[derive(Clone, Debug, PartialEq)]
pub struct Setting {
    pub name: Spanned<String>,
    pub value: SettingValue,
}

#[derive(Clone, Debug, PartialEq)]
pub enum SettingValue {
    /// `time = 2h`
    Duration(Spanned<Duration>),
    /// A string, number, boolean or list.
    Value(Value),
}

impl SettingValue {
    pub fn span(&self) -> Span {
        match self {
            SettingValue::Duration(d) => d.span,
            SettingValue::Value(v) => v.span,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct EnvPair {
    pub name: Spanned<String>,
    pub value: Value,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ForLoop {
    pub var: Spanned<String>,
    pub over: ForSource,
    pub items: Vec<Item>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ForSource {
    List(Value),
    Param(Spanned<String>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Stage {
    pub name: StageName,
    pub items: Vec<StageItem>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum StageName {
    Ident(Spanned<String>),
    Str(Str),
}

impl StageName {
    pub fn span(&self) -> Span {
        match self {
            StageName::Ident(s) => s.span,
            StageName::Str(s) => s.span,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct StageItem {
    pub kind: StageItemKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum StageItemKind {
    In(Vec<Input>),
    Out(Vec<NamedPath>),
    Metrics(Vec<NamedPath>),
    After(Vec<StageName>),
    Params(Vec<Spanned<String>>),
    Run(Str),
    Check {
        expr: Box<Expr>,
        message: Option<Str>,
    },
    Gate {
        expr: Box<Expr>,
        message: Option<Str>,
    },
    When(Box<Expr>),
    Every(Spanned<Duration>),
    Timeout(Spanned<Duration>),
    Retry(Spanned<u32>),
    Fallback(Str),
    Resources(Vec<Resource>),
    Executor(Box<Executor>),
    /// `cache link`: this stage's cache mode.
    Cache(Spanned<String>),
    Always,
    Frozen,
    Promote,
    Env(Vec<EnvPair>),
    Unknown(Spanned<String>),
}

impl StageItemKind {
    /// The keyword that starts this item.
    pub fn keyword(&self) -> &'static str {
        match self {
            StageItemKind::In(_) => "in",
            StageItemKind::Out(_) => "out",
            StageItemKind::Metrics(_) => "metrics",
            StageItemKind::After(_) => "after",
            StageItemKind::Params(_) => "params",
            StageItemKind::Run(_) => "run",
            StageItemKind::Check { .. } => "check",
            StageItemKind::Gate { .. } => "gate",
            StageItemKind::When(_) => "when",
            StageItemKind::Every(_) => "every",
            StageItemKind::Timeout(_) => "timeout",
            StageItemKind::Retry(_) => "retry",
            StageItemKind::Fallback(_) => "fallback",
            StageItemKind::Resources(_) => "resources",
            StageItemKind::Executor(_) => "executor",
            StageItemKind::Cache(_) => "cache",
            StageItemKind::Always => "always",
            StageItemKind::Frozen => "frozen",
            StageItemKind::Promote => "promote",
            StageItemKind::Env(_) => "env",
            StageItemKind::Unknown(_) => "",
        }
    }
}

/// Every keyword that may start an item inside a stage (for "did you mean").
pub const STAGE_KEYWORDS: &[&str] = &[
    "in",
    "out",
    "metrics",
    "after",
    "params",
    "run",
    "check",
    "gate",
    "when",
    "every",
    "timeout",
    "retry",
    "fallback",
    "resources",
    "executor",
    "always",
    "frozen",
    "promote",
    "env",
];

/// Words that start an item but are not reserved (still usable as names): `cache`.
pub const SOFT_KEYWORDS: &[&str] = &["cache"];

/// Every keyword that may start an item at the top of a file.
pub const TOP_KEYWORDS: &[&str] = &[
    "pipeline", "params", "param", "env", "executor", "tracking", "stage", "for", "include",
];

#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    /// A path, directory or glob: `"data/raw.csv"`, `"src/"`, `"data/*.csv"`.
    Path(Str),
    /// `stage.output`, or `stage` for all of its outputs.
    Ref {
        stage: Spanned<String>,
        output: Option<Spanned<String>>,
        span: Span,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct NamedPath {
    pub name: Option<Spanned<String>>,
    pub path: Str,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Resource {
    pub name: Spanned<String>,
    pub amount: Spanned<Amount>,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Amount {
    Count(u64),
    /// Bytes, from a size such as `4G` (powers of 1024).
    Bytes(u64),
}

/// A duration in milliseconds, with the text it was written as.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Duration {
    pub millis: u64,
    pub text: String,
}

/// A string literal: text and `${...}` interpolations.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Str {
    pub parts: Vec<StrPart>,
    pub span: Span,
}

impl Str {
    /// The text when the string has no interpolation.
    pub fn as_plain(&self) -> Option<String> {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                StrPart::Text(t) => out.push_str(t),
                StrPart::Interp(_) => return None,
            }
        }
        Some(out)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum StrPart {
    /// Literal text, escapes already decoded.
    Text(String),
    /// `${path}`
    Interp(Spanned<Path>),
}

/// A dotted path with optional indexes: `params.train.lr`, `in[0]`, `ingest.clean`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Path {
    pub head: String,
    pub segments: Vec<Segment>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Segment {
    Field(String),
    Index(usize),
}

impl std::fmt::Display for Path {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.head)?;
        for s in &self.segments {
            match s {
                Segment::Field(x) => write!(f, ".{x}")?,
                Segment::Index(i) => write!(f, "[{i}]")?,
            }
        }
        Ok(())
    }
}

/// A literal value (params, loop lists, env values).
#[derive(Clone, Debug, PartialEq)]
pub struct Value {
    pub kind: ValueKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ValueKind {
    Str(Str),
    /// The number and the text it was written as.
    Number(f64, String),
    Bool(bool),
    List(Vec<Value>),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ExprKind {
    Number(f64, String),
    Str(Str),
    Bool(bool),
    Duration(Duration),
    Path(Path),
    Call {
        name: Spanned<String>,
        args: Vec<Expr>,
    },
    Unary {
        op: UnaryOp,
        expr: Box<Expr>,
    },
    Binary {
        op: BinOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    Paren(Box<Expr>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum UnaryOp {
    Not,
    Neg,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BinOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

impl BinOp {
    /// `==`, `!=`, `<`, `<=`, `>`, `>=`.
    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge
        )
    }

    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Or => "||",
            BinOp::And => "&&",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Rem => "%",
        }
    }
    /// Binding strength: higher binds tighter.
    pub fn precedence(self) -> u8 {
        match self {
            BinOp::Or => 1,
            BinOp::And => 2,
            BinOp::Eq | BinOp::Ne => 3,
            BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => 4,
            BinOp::Add | BinOp::Sub => 5,
            BinOp::Mul | BinOp::Div | BinOp::Rem => 6,
        }
    }
}
