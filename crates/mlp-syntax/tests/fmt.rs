//! `mlp fmt`: example layouts, and a property test over random pipelines written with
//! random layout and comments.

use mlp_syntax::ast::*;
use mlp_syntax::{format, parse, parse_expr};
use proptest::prelude::*;

/// The example of the language's design document (design/LANGUAGE.md), as written there.
const LANGUAGE_EXAMPLE: &str = r##"# pipeline.mlp — churn model, from raw data to a promoted model
pipeline "churn"

params "params.yaml"                 # external params (YAML, TOML or JSON); each key hashed on its own
param seed = 42                      # inline params; numbers, strings, bools, lists

env {                                # environment for every stage (stage-level `env` overrides)
  PYTHONHASHSEED = "0"
}

stage ingest {
  in  "data/raw/customers.csv", "src/ingest.py"
  out clean = "data/clean.csv"       # named output, referable as ingest.clean
  run "python src/ingest.py --in data/raw/customers.csv --out ${out.clean}"
}

stage validate {
  in      ingest.clean, "src/validate.py"
  metrics report = "reports/data_quality.json"
  run     "python src/validate.py ${in[0]} ${metrics.report}"
  check   report.null_fraction < 0.01   "too many nulls in ingested data"
  check   report.psi < 0.2              "input distribution drifted from the baseline"
}

stage features {
  in    ingest.clean, "src/features/"   # a directory dependency: every file in it is hashed
  after validate                        # ordering-only edge: features waits for validate's checks
  out   feats = "data/features.parquet"
  run   "python -m src.features ${in[0]} ${out.feats}"
}

stage train {
  in      features.feats, "src/train.py"
  params  lr, max_depth, seed           # only these keys invalidate this stage
  out     model = "models/model.pkl"
  metrics train = "metrics/train.json"
  run     "python src/train.py --lr ${params.lr} --depth ${params.max_depth}"
  retry   2
  timeout 30m
  resources cpu = 2, mem = 4G
}

stage evaluate {
  in      train.model, "data/holdout.csv", "src/evaluate.py"
  metrics eval = "metrics/eval.json"
  run     "python src/evaluate.py ${train.model} ${metrics.eval}"
  gate    eval.auc >= baseline.eval.auc          "must beat the production model"
  gate    eval.p95_latency_ms <= 50
}

stage canary {
  after   evaluate                      # runs only when every gate upstream passed
  metrics canary = "metrics/canary.json"
  run     "python src/deploy.py --canary 0.1 ${train.model} --report ${metrics.canary}"
  gate    canary.error_rate <= baseline.canary.error_rate * 1.05
  always                                # never served from cache
}

stage promote_model {
  after   canary
  run     "python src/deploy.py --full ${train.model}"
  promote                               # on success this run becomes the new baseline
}

stage rollback {
  when    failed(canary)                # failure handler: runs only when canary or its gate failed
  run     "python src/deploy.py --rollback"
}

stage monitor {
  metrics live = "metrics/live.json"
  run     "python src/monitor.py ${metrics.live}"
  every   1h                            # freshness: stale one hour after its last success
}

stage retrain_alert {
  when    monitor.live.drift > 0.2      # conditional: runs only when the expression holds
  run     "python src/alert.py"
}

for model in ["gbm", "logreg"] {       # matrix expansion, names made from the loop values
  stage "train_${model}" {
    in  features.feats
    out m = "models/${model}.pkl"
    run "python src/train.py --kind ${model} --out ${out.m}"
  }
}

include "llm.mlp"                       # split big pipelines into files
"##;

// ----------------------------------------------------------------- helpers --

#[path = "support/invariants.rs"]
mod invariants;
use invariants::{Z, check_format, parsed, z_expr};

#[test]
fn formats_the_language_example() {
    let out = check_format(LANGUAGE_EXAMPLE);
    // Every item, in order; keywords padded to the longest of their stage.
    assert!(out.starts_with(
        "# pipeline.mlp — churn model, from raw data to a promoted model\n\
         pipeline \"churn\"\n\
         \n\
         params \"params.yaml\"  # external params (YAML, TOML or JSON); each key hashed on its own\n\
         param seed = 42  # inline params; numbers, strings, bools, lists\n\
         \n\
         env {  # environment for every stage (stage-level `env` overrides)\n  \
           PYTHONHASHSEED = \"0\"\n\
         }\n\
         \n\
         stage ingest {\n  \
           in  \"data/raw/customers.csv\", \"src/ingest.py\"\n  \
           out clean = \"data/clean.csv\"  # named output, referable as ingest.clean\n  \
           run \"python src/ingest.py --in data/raw/customers.csv --out ${out.clean}\"\n\
         }\n\
         \n\
         stage validate {\n  \
           in      ingest.clean, \"src/validate.py\"\n  \
           metrics report = \"reports/data_quality.json\"\n  \
           run     \"python src/validate.py ${in[0]} ${metrics.report}\"\n  \
           check   report.null_fraction < 0.01 \"too many nulls in ingested data\"\n  \
           check   report.psi < 0.2 \"input distribution drifted from the baseline\"\n\
         }\n"
    ), "{out}");
    assert!(
        out.contains(
            "stage promote_model {\n  \
           after   canary\n  \
           run     \"python src/deploy.py --full ${train.model}\"\n  \
           promote  # on success this run becomes the new baseline\n\
         }\n"
        ),
        "{out}"
    );
    assert!(
        out.contains(
            "stage rollback {\n  \
           when failed(canary)  # failure handler: runs only when canary or its gate failed\n  \
           run  \"python src/deploy.py --rollback\"\n\
         }\n"
        ),
        "{out}"
    );
    assert!(out.ends_with(
        "for model in [\"gbm\", \"logreg\"] {  # matrix expansion, names made from the loop values\n  \
           stage \"train_${model}\" {\n    \
             in  features.feats\n    \
             out m = \"models/${model}.pkl\"\n    \
             run \"python src/train.py --kind ${model} --out ${out.m}\"\n  \
           }\n\
         }\n\
         \n\
         include \"llm.mlp\"  # split big pipelines into files\n"
    ), "{out}");
}

#[test]
fn formats_a_messy_one_liner() {
    let out = check_format(r#"stage a { in "x" out o = "y" run "z" }"#);
    assert_eq!(
        out,
        "stage a {\n  in  \"x\"\n  out o = \"y\"\n  run \"z\"\n}\n"
    );
}

#[test]
fn formats_bad_indentation_and_spacing() {
    let src = "pipeline   \"p\"\n\n\n\nparam   a=1\nparam b   =[ 1,2 , [\"x\" ,true],]\n\
               stage  \"s t\"{\n        after a,\"b\"\n\tparams lr,  train.in\nresources cpu=2,mem = 4G,gpu=1\n\
               retry 007 timeout 1h30m\n  always frozen   env{ A=\"1\" LONG_NAME = -2.5e3 }\n }\n\
               stage empty { }\nenv{}\ninclude \"x.mlp\"";
    let out = check_format(src);
    assert_eq!(
        out,
        "pipeline \"p\"\n\
         \n\
         param a = 1\n\
         param b = [1, 2, [\"x\", true]]\n\
         \n\
         stage \"s t\" {\n  \
           after     a, \"b\"\n  \
           params    lr, train.in\n  \
           resources cpu = 2, mem = 4G, gpu = 1\n  \
           retry     7\n  \
           timeout   1h30m\n  \
           always\n  \
           frozen\n  \
           env {\n    \
             A         = \"1\"\n    \
             LONG_NAME = -2.5e3\n  \
           }\n\
         }\n\
         \n\
         stage empty {}\n\
         \n\
         env {}\n\
         \n\
         include \"x.mlp\"\n"
    );
}

#[test]
fn formats_expressions_with_the_parentheses_written() {
    let src = "stage s {\n\
               check (a+b)*c>=-d&&!(e||f)\"m\"\n\
               gate !!x.y[02] != ( 1e5 ) % 2 || f( ) == g(1,\"s\" , 30m)\n\
               when failed( canary )||--a<b-c-d\n}";
    let out = check_format(src);
    assert_eq!(
        out,
        "stage s {\n  \
           check (a + b) * c >= -d && !(e || f) \"m\"\n  \
           gate  !!x.y[2] != (1e5) % 2 || f() == g(1, \"s\", 30m)\n  \
           when  failed(canary) || --a < b - c - d\n\
         }\n"
    );
}

#[test]
fn re_escapes_strings() {
    let src = "pipeline \"q\\\" b\\\\ \\$ \\${x} ${ params.a[0] }$${y}\\u{41}\\t\\u{1} \\r\\n\
               tab\there  \nnext\\u{200b}\"";
    let out = check_format(src);
    assert_eq!(
        out,
        "pipeline \"q\\\" b\\\\ $ \\${x} ${params.a[0]}$${y}A\t\\u{1} \\u{d}\n\
         tab\there \\u{20}\nnext\\u{200b}\"\n"
    );
}

#[test]
fn keeps_comments_everywhere() {
    let src = "# file header\n\
               \n\
               # about the pipeline\n\
               pipeline \"p\" # trailing on pipeline\n\
               # between one-liners\n\
               param a = 1\n\
               # before stage a\n\
               stage a { # after the brace\n\
               # before in\n\
                   in \"x\", # inside the list\n\
                      \"y\"  # end of in\n\
               run # after run\n\
                 \"cmd\"\n\
                 # before the closing brace\n\
               } # after the closing brace\n\
               \n\
               \n\
               # between stages\n\
               \n\
               stage b {\n\
               # only a comment\n\
               }\n\
               for m in [ \"x\", # in the list\n\
               # own line in the list\n\
               \"y\"] {\n\
               # before the inner stage\n\
               stage \"b_${m}\" { env { # env brace\n\
               K = \"v\" # on the pair\n\
               # before env close\n\
               } }\n\
               # before the for's brace\n\
               }\n\
               # at the end\n\
               # and more";
    let out = check_format(src);
    assert_eq!(
        out,
        "# file header\n\
         \n\
         # about the pipeline\n\
         pipeline \"p\"  # trailing on pipeline\n\
         # between one-liners\n\
         param a = 1\n\
         \n\
         # before stage a\n\
         stage a {  # after the brace\n  \
           # before in\n  \
           # inside the list\n  \
           in  \"x\", \"y\"  # end of in\n  \
           run \"cmd\"  # after run\n  \
           # before the closing brace\n\
         }  # after the closing brace\n\
         \n\
         # between stages\n\
         \n\
         stage b {\n  \
           # only a comment\n\
         }\n\
         \n\
         # own line in the list\n\
         for m in [\"x\", \"y\"] {  # in the list\n  \
           # before the inner stage\n  \
           stage \"b_${m}\" {\n    \
             env {  # env brace\n      \
               K = \"v\"  # on the pair\n      \
               # before env close\n    \
             }\n  \
           }\n  \
           # before the for's brace\n\
         }\n\
         # at the end\n\
         # and more\n"
    );
}

#[test]
fn keeps_at_most_one_blank_line_between_one_liners() {
    let src = "pipeline \"p\"\nparams \"a.yaml\"\n\n\n\nparam a = 1\n  param b = 2\n\n\ninclude \"i.mlp\"\n\n\n";
    assert_eq!(
        check_format(src),
        "pipeline \"p\"\nparams \"a.yaml\"\n\nparam a = 1\nparam b = 2\n\ninclude \"i.mlp\"\n"
    );
}

#[test]
fn formats_executors() {
    let src = "executor slurm{partition=\"gpu\" account = \"ml\"   time=2h args=[\"--exclusive\",\"-N1\"]} # all\nstage a { run \"x\" executor local }\nstage b {\nexecutor slurm { partition = \"debug\" }  run \"y\" }\nstage c { executor slurm {} run \"z\" }\n";
    let out = check_format(src);
    assert_eq!(
        out,
        "executor slurm {\n  partition = \"gpu\"\n  account   = \"ml\"\n  time      = 2h\n  args      = [\"--exclusive\", \"-N1\"]\n}  # all\n\nstage a {\n  run      \"x\"\n  executor local\n}\n\nstage b {\n  executor slurm {\n    partition = \"debug\"\n  }\n  run      \"y\"\n}\n\nstage c {\n  executor slurm {}\n  run      \"z\"\n}\n"
    );
}

#[test]
fn formats_cache() {
    let src = "cache   link # big data\nstage a {\nrun \"r\"\n  cache copy\n}\n";
    assert_eq!(
        check_format(src),
        "cache link  # big data\n\nstage a {\n  run   \"r\"\n  cache copy\n}\n"
    );
}

#[test]
fn formats_tracking() {
    let src = "tracking mlflow{uri=\"http://127.0.0.1:5000\" experiment = \"churn\"} # where\npipeline \"p\"\ntracking  mlflow\n";
    assert_eq!(
        check_format(src),
        "tracking mlflow {\n  uri        = \"http://127.0.0.1:5000\"\n  experiment = \"churn\"\n}  # where\n\npipeline \"p\"\ntracking mlflow\n"
    );
}

#[test]
fn formats_ray_executors() {
    let src = "executor ray{address=\"http://head:8265\" resources = [\"node1=1\",\"gpu_a100\"]   pending_timeout=10m}\nstage a { executor ray {env_vars=[\"A=1\"]} run \"x\" }\n";
    assert_eq!(
        check_format(src),
        "executor ray {\n  address         = \"http://head:8265\"\n  resources       = [\"node1=1\", \"gpu_a100\"]\n  pending_timeout = 10m\n}\n\nstage a {\n  executor ray {\n    env_vars = [\"A=1\"]\n  }\n  run      \"x\"\n}\n"
    );
}

#[test]
fn keeps_unknown_items_as_written() {
    let src = "stage a {\n   colour   red  blue # hm\n  run \"x\"\n}\nfoo  \"bar\"   baz\n";
    assert_eq!(
        check_format(src),
        "stage a {\n  colour   red  blue  # hm\n  run \"x\"\n}\n\nfoo  \"bar\"   baz\n"
    );
}

#[test]
fn empty_files() {
    assert_eq!(check_format(""), "");
    assert_eq!(check_format("  \n\n"), "");
    assert_eq!(check_format("\n# only\n\n"), "# only\n");
}

#[test]
fn a_file_that_does_not_parse_gives_the_parse_errors() {
    for src in [
        "stage a { in }",
        "stage { }",
        "param x = \"unterminated",
        "stage a { run \"\\q\" }",
        "stage a { retry 99999999999 }",
    ] {
        let errors = format(src).expect_err(src);
        assert_eq!(errors, parse(src).expect_err(src), "{src}");
    }
}

// --------------------------------------------- expressions: a parse oracle --

/// A string to generate: decoded text with the way it is written.
#[derive(Clone, Debug)]
enum GPart {
    Text(Vec<(&'static str, &'static str)>),
    Interp(GPath, bool),
}

#[derive(Clone, Debug)]
struct GStr(Vec<GPart>);

#[derive(Clone, Debug)]
struct GPath {
    text: String,
    path: Path,
}

#[derive(Clone, Debug)]
enum E {
    Num(&'static str),
    Str(GStr),
    Bool(bool),
    Dur(&'static str, u64),
    Path(GPath),
    Call(&'static str, Vec<E>),
    Not(Box<E>),
    Neg(Box<E>),
    Bin(BinOp, Box<E>, Box<E>),
    Paren(Box<E>),
}

/// (decoded, as written)
const ATOMS: &[(&str, &str)] = &[
    ("a", "a"),
    ("Hello, world", "Hello, world"),
    ("é", "é"),
    ("é", "\\u{e9}"),
    ("日本", "日本"),
    ("😀", "😀"),
    ("😀", "\\u{1F600}"),
    ("\"", "\\\""),
    ("\\", "\\\\"),
    ("\n", "\n"),
    ("\n", "\\n"),
    ("\t", "\t"),
    ("\t", "\\t"),
    ("\r", "\\r"),
    ("\0", "\\0"),
    ("\u{1}", "\\u{1}"),
    ("\u{7f}", "\\u{7F}"),
    ("\u{202e}", "\u{202e}"),
    ("$", "\\$"),
    ("$", "$"),
    ("${", "\\${"),
    ("{", "{"),
    ("}", "}"),
    ("#", "#"),
    (" ", " "),
    ("  \n", "  \n"),
    ("--x '", "--x '"),
];

fn gpath() -> impl Strategy<Value = GPath> {
    let head = prop::sample::select(vec![
        "a", "params", "in", "out", "report", "x_1", "true_ish",
    ]);
    let seg = prop_oneof![
        prop::sample::select(vec!["b", "lr", "in", "auc", "p95_ms", "true", "run"])
            .prop_map(|f| (format!(".{f}"), Segment::Field(f.to_string()))),
        (0usize..12, prop::bool::ANY).prop_map(|(i, pad)| {
            let text = if pad {
                format!("[00{i}]")
            } else {
                format!("[{i}]")
            };
            (text, Segment::Index(i))
        }),
    ];
    (head, prop::collection::vec(seg, 0..3)).prop_map(|(head, segs)| {
        let mut text = head.to_string();
        let mut segments = Vec::new();
        for (t, s) in segs {
            text.push_str(&t);
            segments.push(s);
        }
        GPath {
            text,
            path: Path {
                head: head.to_string(),
                segments,
            },
        }
    })
}

fn gstr() -> impl Strategy<Value = GStr> {
    let part = prop_oneof![
        3 => prop::collection::vec(prop::sample::select(ATOMS), 0..5).prop_map(GPart::Text),
        1 => (gpath(), prop::bool::ANY).prop_map(|(p, s)| GPart::Interp(p, s)),
    ];
    prop::collection::vec(part, 0..4).prop_map(GStr)
}

impl GStr {
    fn render(&self) -> String {
        let mut out = String::from("\"");
        let mut atoms: Vec<&str> = Vec::new();
        let flush = |atoms: &mut Vec<&str>, out: &mut String| {
            for (i, a) in atoms.iter().enumerate() {
                // `$` then `{` would open an interpolation.
                if *a == "$" && atoms.get(i + 1).is_some_and(|n| n.starts_with('{')) {
                    out.push_str("\\$");
                } else {
                    out.push_str(a);
                }
            }
            atoms.clear();
        };
        for part in &self.0 {
            match part {
                GPart::Text(t) => atoms.extend(t.iter().map(|(_, w)| *w)),
                GPart::Interp(p, spaced) => {
                    flush(&mut atoms, &mut out);
                    if *spaced {
                        out.push_str(&format!("${{ {} }}", p.text));
                    } else {
                        out.push_str(&format!("${{{}}}", p.text));
                    }
                }
            }
        }
        flush(&mut atoms, &mut out);
        out.push('"');
        out
    }

    fn expected(&self) -> Str {
        let mut parts: Vec<StrPart> = Vec::new();
        for part in &self.0 {
            match part {
                GPart::Text(t) => {
                    let text: String = t.iter().map(|(d, _)| *d).collect();
                    if text.is_empty() {
                        continue;
                    }
                    if let Some(StrPart::Text(last)) = parts.last_mut() {
                        last.push_str(&text);
                    } else {
                        parts.push(StrPart::Text(text));
                    }
                }
                GPart::Interp(p, _) => {
                    parts.push(StrPart::Interp(Spanned::new(p.path.clone(), Z)));
                }
            }
        }
        Str { parts, span: Z }
    }
}

const BINOPS: &[BinOp] = &[
    BinOp::Or,
    BinOp::And,
    BinOp::Eq,
    BinOp::Ne,
    BinOp::Lt,
    BinOp::Le,
    BinOp::Gt,
    BinOp::Ge,
    BinOp::Add,
    BinOp::Sub,
    BinOp::Mul,
    BinOp::Div,
    BinOp::Rem,
];

fn gexpr() -> impl Strategy<Value = E> {
    let leaf = prop_oneof![
        1 => prop::sample::select(vec!["0", "1", "42", "0.01", "1.05", "1e5", "2.5E-3", "007"])
            .prop_map(E::Num),
        1 => gstr().prop_map(E::Str),
        1 => prop::bool::ANY.prop_map(E::Bool),
        1 => prop::sample::select(vec![
            ("30m", 1_800_000),
            ("24h", 86_400_000),
            ("500ms", 500),
            ("1h30m", 5_400_000),
            ("2w", 1_209_600_000),
            ("10s", 10_000),
        ])
        .prop_map(|(t, ms)| E::Dur(t, ms)),
        3 => gpath().prop_map(E::Path),
    ];
    let e = leaf.prop_recursive(4, 24, 3, |inner| {
        prop_oneof![
            4 => (prop::sample::select(BINOPS), inner.clone(), inner.clone())
                .prop_map(|(op, l, r)| E::Bin(op, Box::new(l), Box::new(r))),
            1 => inner.clone().prop_map(|e| E::Not(Box::new(e))),
            1 => inner.clone().prop_map(|e| E::Neg(Box::new(e))),
            1 => inner.clone().prop_map(|e| E::Paren(Box::new(e))),
            1 => (
                prop::sample::select(vec!["failed", "f", "max_of"]),
                prop::collection::vec(inner, 0..3)
            )
                .prop_map(|(n, args)| E::Call(n, args)),
        ]
    });
    e.prop_map(needed_parens)
}

/// The operand of a prefix operator: a binary operation needs parentheses.
fn operand(x: E) -> E {
    match needed_parens(x) {
        b @ E::Bin(..) => E::Paren(Box::new(b)),
        x => x,
    }
}

/// Parenthesise where the tree would not read back as itself.
fn needed_parens(e: E) -> E {
    let wrap = |e: E| E::Paren(Box::new(e));
    match e {
        E::Bin(op, l, r) => {
            let l = needed_parens(*l);
            let r = needed_parens(*r);
            let l = match &l {
                E::Bin(lop, ..) if lop.precedence() < op.precedence() => wrap(l),
                _ => l,
            };
            let r = match &r {
                E::Bin(rop, ..) if rop.precedence() <= op.precedence() => wrap(r),
                _ => r,
            };
            E::Bin(op, Box::new(l), Box::new(r))
        }
        E::Not(x) => E::Not(Box::new(operand(*x))),
        E::Neg(x) => E::Neg(Box::new(operand(*x))),
        E::Paren(x) => E::Paren(Box::new(needed_parens(*x))),
        E::Call(n, args) => E::Call(n, args.into_iter().map(needed_parens).collect()),
        other => other,
    }
}

impl E {
    fn tokens(&self, out: &mut Vec<String>) {
        match self {
            E::Num(t) | E::Dur(t, _) => out.push(t.to_string()),
            E::Str(s) => out.push(s.render()),
            E::Bool(b) => out.push(b.to_string()),
            E::Path(p) => out.push(p.text.clone()),
            E::Call(n, args) => {
                out.push(n.to_string());
                out.push("(".into());
                for (i, a) in args.iter().enumerate() {
                    if i > 0 {
                        out.push(",".into());
                    }
                    a.tokens(out);
                }
                out.push(")".into());
            }
            E::Not(x) => {
                out.push("!".into());
                x.tokens(out);
            }
            E::Neg(x) => {
                out.push("-".into());
                x.tokens(out);
            }
            E::Bin(op, l, r) => {
                l.tokens(out);
                out.push(op.symbol().into());
                r.tokens(out);
            }
            E::Paren(x) => {
                out.push("(".into());
                x.tokens(out);
                out.push(")".into());
            }
        }
    }

    fn expected(&self) -> Expr {
        let kind = match self {
            E::Num(t) => ExprKind::Number(t.parse().unwrap(), t.to_string()),
            E::Str(s) => ExprKind::Str(s.expected()),
            E::Bool(b) => ExprKind::Bool(*b),
            E::Dur(t, ms) => ExprKind::Duration(Duration {
                millis: *ms,
                text: t.to_string(),
            }),
            E::Path(p) => ExprKind::Path(p.path.clone()),
            E::Call(n, args) => ExprKind::Call {
                name: Spanned::new(n.to_string(), Z),
                args: args.iter().map(E::expected).collect(),
            },
            E::Not(x) => ExprKind::Unary {
                op: UnaryOp::Not,
                expr: Box::new(x.expected()),
            },
            E::Neg(x) => ExprKind::Unary {
                op: UnaryOp::Neg,
                expr: Box::new(x.expected()),
            },
            E::Bin(op, l, r) => ExprKind::Binary {
                op: *op,
                lhs: Box::new(l.expected()),
                rhs: Box::new(r.expected()),
            },
            E::Paren(x) => ExprKind::Paren(Box::new(x.expected())),
        };
        Expr { kind, span: Z }
    }
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Tokens joined by the given separators; `seps[i]` goes before token `i`, the last one
/// after the last token. Two word tokens never touch.
fn layout(tokens: &[String], seps: &[String]) -> String {
    let mut out = String::new();
    for (i, t) in tokens.iter().enumerate() {
        let sep = seps.get(i).map_or(" ", String::as_str);
        let touching = out.chars().next_back().is_some_and(is_word_char)
            && t.chars().next().is_some_and(is_word_char);
        out.push_str(if sep.is_empty() && touching { " " } else { sep });
        out.push_str(t);
    }
    out.push_str(seps.get(tokens.len()).map_or("", String::as_str));
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// The parser reads back every expression tree as itself (precedence, associativity,
    /// prefix operators, string escapes), and the formatter prints it back unchanged.
    #[test]
    fn expressions_read_back(
        e in gexpr(),
        seps in prop::collection::vec(prop::sample::select(vec!["", " ", "  ", "\n", "\t "]), 200),
    ) {
        let mut tokens = Vec::new();
        e.tokens(&mut tokens);
        let mut seps: Vec<String> = seps.into_iter().map(String::from).collect();
        seps[0] = String::new();
        let src = layout(&tokens, &seps);
        let mut got = match parse_expr(&src) {
            Ok(x) => x,
            Err(err) => panic!("{err:?}\n--- source ---\n{src}"),
        };
        z_expr(&mut got);
        prop_assert_eq!(&got, &e.expected(), "source: {}", src);

        // The same expression through the formatter, in a `check`.
        let file = format!("stage s {{ check {src} }}");
        let out = check_format(&file);
        let mut plain = Vec::new();
        e.tokens(&mut plain);
        let one_line = layout(&plain, &vec![" ".to_string(); plain.len()]);
        prop_assert!(!one_line.is_empty());
        let f = parsed(&out);
        let ItemKind::Stage(stage) = &f.items[0].kind else { panic!("{out}") };
        let StageItemKind::Check { expr, .. } = &stage.items[0].kind else { panic!("{out}") };
        let mut expr = expr.clone();
        z_expr(&mut expr);
        prop_assert_eq!(&*expr, &e.expected());
    }
}

// ----------------------------------------------- files: random pipelines --

type Toks = Vec<String>;

fn t(words: &[&str]) -> Toks {
    words.iter().map(|w| w.to_string()).collect()
}

fn comma_list(items: Vec<Toks>) -> Toks {
    let mut out = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(",".to_string());
        }
        out.extend(item);
    }
    out
}

fn keyword_then(kw: &str, rest: Toks) -> Toks {
    let mut out = vec![kw.to_string()];
    out.extend(rest);
    out
}

fn ident() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "a", "b1", "train_x", "_p", "input", "outer", "running", "stage2", "Z", "promoted",
    ])
    .prop_map(String::from)
}

fn str_tok() -> impl Strategy<Value = String> {
    gstr().prop_map(|s| s.render())
}

fn expr_toks() -> impl Strategy<Value = Toks> {
    gexpr().prop_map(|e| {
        let mut out = Vec::new();
        e.tokens(&mut out);
        out
    })
}

fn scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        str_tok(),
        prop::sample::select(vec![
            "0", "-1", "42", "0.5", "-2.5e3", "1E2", "true", "false"
        ])
        .prop_map(String::from),
    ]
}

fn value() -> impl Strategy<Value = Toks> {
    scalar()
        .prop_map(|s| vec![s])
        .prop_recursive(2, 12, 4, |inner| {
            (prop::collection::vec(inner, 0..4), prop::bool::ANY).prop_map(|(items, comma)| {
                let mut out = vec!["[".to_string()];
                let any = !items.is_empty();
                out.extend(comma_list(items));
                if comma && any {
                    out.push(",".into());
                }
                out.push("]".into());
                out
            })
        })
}

fn list_value() -> impl Strategy<Value = Toks> {
    (prop::collection::vec(value(), 0..4), prop::bool::ANY).prop_map(|(items, comma)| {
        let mut out = vec!["[".to_string()];
        let any = !items.is_empty();
        out.extend(comma_list(items));
        if comma && any {
            out.push(",".into());
        }
        out.push("]".into());
        out
    })
}

fn key() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["lr", "max_depth", "train.lr", "a.in.b", "seed", "in"])
        .prop_map(String::from)
}

fn env_block() -> impl Strategy<Value = Toks> {
    let pair = (
        prop::sample::select(vec!["A", "PYTHONHASHSEED", "X_1", "in", "long_name_here"]),
        scalar(),
    )
        .prop_map(|(n, v)| vec![n.to_string(), "=".to_string(), v]);
    prop::collection::vec(pair, 0..4).prop_map(|pairs| {
        let mut out = t(&["env", "{"]);
        out.extend(pairs.into_iter().flatten());
        out.push("}".into());
        out
    })
}

fn executor() -> impl Strategy<Value = Toks> {
    let setting = (
        prop::sample::select(vec!["partition", "time", "args", "qos", "in"]),
        prop_oneof![
            scalar().prop_map(|s| vec![s]),
            prop::sample::select(vec!["2h", "90s", "1h30m"]).prop_map(|d| vec![d.to_string()]),
            list_value(),
        ],
    )
        .prop_map(|(n, v)| {
            let mut out = t(&[n, "="]);
            out.extend(v);
            out
        });
    (
        prop::sample::select(vec!["local", "slurm", "in", "slrum"]),
        prop::option::of(prop::collection::vec(setting, 0..3)),
    )
        .prop_map(|(name, settings)| {
            let mut out = t(&["executor", name]);
            if let Some(settings) = settings {
                out.push("{".into());
                out.extend(settings.into_iter().flatten());
                out.push("}".into());
            }
            out
        })
}

fn stage_item() -> impl Strategy<Value = Toks> {
    let input = prop_oneof![
        str_tok().prop_map(|s| vec![s]),
        ident().prop_map(|s| vec![s]),
        (
            ident(),
            prop::sample::select(vec!["clean", "model", "in", "out2"])
        )
            .prop_map(|(s, o)| vec![format!("{s}.{o}")]),
    ];
    let named = || {
        (prop::option::of(ident()), str_tok()).prop_map(|(n, s)| match n {
            Some(n) => vec![n, "=".to_string(), s],
            None => vec![s],
        })
    };
    let stage_ref = prop_oneof![ident(), str_tok()].prop_map(|s| vec![s]);
    let message = prop::option::of(str_tok());
    let duration = prop::sample::select(vec!["30m", "24h", "500ms", "1h30m", "1d"]);
    let resource = (
        prop::sample::select(vec!["cpu", "mem", "gpu", "in"]),
        prop::sample::select(vec!["2", "4G", "512MiB", "1.5TB", "16KB", "0"]),
    )
        .prop_map(|(n, a)| t(&[n, "=", a]));
    prop_oneof![
        1 => prop::collection::vec(input, 1..4).prop_map(|v| keyword_then("in", comma_list(v))),
        1 => prop::collection::vec(named(), 1..3)
            .prop_map(|v| keyword_then("out", comma_list(v))),
        1 => prop::collection::vec(named(), 1..3).prop_map(|v| keyword_then("metrics", comma_list(v))),
        1 => prop::collection::vec(stage_ref, 1..3).prop_map(|v| keyword_then("after", comma_list(v))),
        1 => prop::collection::vec(key().prop_map(|k| vec![k]), 1..3)
            .prop_map(|v| keyword_then("params", comma_list(v))),
        2 => str_tok().prop_map(|s| keyword_then("run", vec![s])),
        1 => (prop::sample::select(vec!["check", "gate"]), expr_toks(), message).prop_map(
            |(kw, mut e, m)| {
                e.extend(m);
                keyword_then(kw, e)
            }
        ),
        1 => expr_toks().prop_map(|e| keyword_then("when", e)),
        1 => (prop::sample::select(vec!["every", "timeout"]), duration)
            .prop_map(|(kw, d)| t(&[kw, d])),
        1 => prop::sample::select(vec!["0", "3", "007"]).prop_map(|n| t(&["retry", n])),
        1 => str_tok().prop_map(|s| keyword_then("fallback", vec![s])),
        1 => prop::collection::vec(resource, 1..3)
            .prop_map(|v| keyword_then("resources", comma_list(v))),
        1 => prop::sample::select(vec!["always", "frozen", "promote"]).prop_map(|f| t(&[f])),
        1 => env_block(),
        1 => executor(),
    ]
}

fn stage() -> impl Strategy<Value = Toks> {
    let name = prop_oneof![3 => ident(), 1 => str_tok()];
    (name, prop::collection::vec(stage_item(), 0..6)).prop_map(|(name, items)| {
        let mut out = vec!["stage".to_string(), name, "{".to_string()];
        out.extend(items.into_iter().flatten());
        out.push("}".into());
        out
    })
}

fn for_loop<S: Strategy<Value = Toks>>(body: S) -> impl Strategy<Value = Toks> {
    let over = prop_oneof![
        list_value(),
        key().prop_map(|k| vec![format!("params.{k}")])
    ];
    (ident(), over, prop::collection::vec(body, 0..3)).prop_map(|(var, over, items)| {
        let mut out = vec!["for".to_string(), var, "in".to_string()];
        out.extend(over);
        out.push("{".into());
        out.extend(items.into_iter().flatten());
        out.push("}".into());
        out
    })
}

fn top_item() -> impl Strategy<Value = Toks> {
    prop_oneof![
        1 => str_tok().prop_map(|s| keyword_then("pipeline", vec![s])),
        1 => prop::collection::vec(str_tok().prop_map(|s| vec![s]), 1..3)
            .prop_map(|v| keyword_then("params", comma_list(v))),
        2 => (key(), value()).prop_map(|(k, v)| {
            let mut out = t(&["param", &k, "="]);
            out.extend(v);
            out
        }),
        1 => str_tok().prop_map(|s| keyword_then("include", vec![s])),
        1 => env_block(),
        1 => executor(),
        4 => stage(),
        1 => for_loop(prop_oneof![3 => stage(), 1 => for_loop(stage())]),
    ]
}

fn separator() -> impl Strategy<Value = String> {
    let comment = prop::sample::select(vec![
        "",
        " c",
        " a # b",
        " \"q\" \\",
        " { }",
        " ${x}",
        " é ünï ☃",
        " trailing   ",
        "#",
    ]);
    prop_oneof![
        6 => Just(" ".to_string()),
        3 => Just(String::new()),
        3 => Just("\n".to_string()),
        1 => Just("\n\n".to_string()),
        1 => Just("\n      ".to_string()),
        1 => Just("\t".to_string()),
        1 => Just("\r\n".to_string()),
        2 => comment.clone().prop_map(|c| format!("  #{c}\n  ")),
        2 => comment.clone().prop_map(|c| format!("\n  #{c}\n")),
        1 => comment.prop_map(|c| format!("\n\n#{c}\n\n")),
    ]
}

fn pipeline_text() -> impl Strategy<Value = String> {
    prop::collection::vec(top_item(), 0..7).prop_flat_map(|items| {
        let tokens: Toks = items.into_iter().flatten().collect();
        let n = tokens.len() + 1;
        (Just(tokens), prop::collection::vec(separator(), n))
            .prop_map(|(tokens, seps)| layout(&tokens, &seps))
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Random valid pipelines in random layouts: they parse, and formatting is idempotent,
    /// keeps the syntax tree (up to spans) and keeps every comment.
    #[test]
    fn formatting_random_pipelines(src in pipeline_text()) {
        let before = parsed(&src);
        let out = check_format(&src);
        prop_assert_eq!(parsed(&out).comments.len(), before.comments.len());
    }
}
