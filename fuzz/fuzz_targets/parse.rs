//! The hand-written parser alone, at speed (thousands of inputs per second): any bytes that
//! are UTF-8 either give a tree or a `GiveUp`, never a panic; every span of the tree lies
//! inside the text, on character boundaries, items and comments in order. pest stays out
//! of this target (it is the slow half; `differential` compares the two).

#![no_main]

use libfuzzer_sys::fuzz_target;
use mlp_syntax::ast::*;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match mlp_syntax::parse_fast_or_why(text) {
        Ok(file) => check_file(text, &file),
        Err(why) => assert!(
            why.at <= text.len(),
            "give-up offset {} past the end",
            why.at
        ),
    }
});

fn span(src: &str, s: Span) {
    assert!(
        s.start <= s.end && s.end <= src.len(),
        "span {s:?} out of bounds"
    );
    assert!(
        src.is_char_boundary(s.start) && src.is_char_boundary(s.end),
        "span {s:?} splits a character"
    );
}

fn inside(outer: Span, inner: Span) {
    assert!(
        outer.start <= inner.start && inner.end <= outer.end,
        "span {inner:?} outside its item {outer:?}"
    );
}

fn check_file(src: &str, file: &File) {
    let mut prev = 0;
    for c in &file.comments {
        span(src, c.span);
        assert!(c.span.start >= prev, "comments out of order");
        assert_eq!(src.as_bytes()[c.span.start], b'#');
        prev = c.span.end;
    }
    items(src, &file.items);
}

fn items(src: &str, list: &[Item]) {
    let mut prev = 0;
    for item in list {
        span(src, item.span);
        assert!(item.span.start >= prev, "items overlap or out of order");
        prev = item.span.end;
        match &item.kind {
            ItemKind::Pipeline(s) | ItemKind::Include(s) => string(src, item.span, s),
            ItemKind::ParamsFiles(files) => files.iter().for_each(|s| string(src, item.span, s)),
            ItemKind::Param { key, value: v } => {
                inside(item.span, key.span);
                value(src, item.span, v);
            }
            ItemKind::Env(pairs) => env(src, item.span, pairs),
            ItemKind::Stage(stage) => {
                inside(item.span, stage.name.span());
                let mut prev = stage.name.span().end;
                for si in &stage.items {
                    span(src, si.span);
                    inside(item.span, si.span);
                    assert!(si.span.start >= prev, "stage items out of order");
                    prev = si.span.end;
                    stage_item(src, si);
                }
            }
            ItemKind::For(f) => {
                inside(item.span, f.var.span);
                match &f.over {
                    ForSource::List(v) => value(src, item.span, v),
                    ForSource::Param(k) => inside(item.span, k.span),
                }
                items(src, &f.items);
                for i in &f.items {
                    inside(item.span, i.span);
                }
            }
            ItemKind::Executor(e) => settings(src, item.span, &e.name, &e.settings),
            ItemKind::Tracking(t) => settings(src, item.span, &t.name, &t.settings),
            ItemKind::Cache(m) | ItemKind::Unknown(m) => inside(item.span, m.span),
            ItemKind::Remote(r) => {
                string(src, item.span, &r.url);
                for s in r.settings.iter().flatten() {
                    inside(item.span, s.name.span);
                    span(src, s.value.span());
                    inside(item.span, s.value.span());
                }
            }
        }
    }
}

fn stage_item(src: &str, si: &StageItem) {
    use StageItemKind as K;
    let outer = si.span;
    match &si.kind {
        K::In(inputs) => {
            for i in inputs {
                match i {
                    Input::Path(s) => string(src, outer, s),
                    Input::Ref { span: sp, .. } => inside(outer, *sp),
                }
            }
        }
        K::Out(paths) | K::Metrics(paths) => {
            for p in paths {
                inside(outer, p.span);
                string(src, outer, &p.path);
            }
        }
        K::After(names) => names.iter().for_each(|n| inside(outer, n.span())),
        K::Params(keys) => keys.iter().for_each(|k| inside(outer, k.span)),
        K::Run(s) | K::Fallback(s) => string(src, outer, s),
        K::Check { expr: e, message } | K::Gate { expr: e, message } => {
            expr(src, outer, e);
            if let Some(m) = message {
                string(src, outer, m);
            }
        }
        K::When(e) => expr(src, outer, e),
        K::Every(d) | K::Timeout(d) => inside(outer, d.span),
        K::Retry(n) => inside(outer, n.span),
        K::Resources(rs) => rs.iter().for_each(|r| inside(outer, r.amount.span)),
        K::Executor(e) => settings(src, outer, &e.name, &e.settings),
        K::Env(pairs) => env(src, outer, pairs),
        K::Cache(w) | K::Unknown(w) => inside(outer, w.span),
        K::Always | K::Frozen | K::Promote => {}
    }
}

fn env(src: &str, outer: Span, pairs: &[EnvPair]) {
    for p in pairs {
        inside(outer, p.name.span);
        value(src, outer, &p.value);
    }
}

fn settings(src: &str, outer: Span, name: &Spanned<String>, s: &Option<Vec<Setting>>) {
    inside(outer, name.span);
    for s in s.iter().flatten() {
        inside(outer, s.name.span);
        span(src, s.value.span());
        inside(outer, s.value.span());
    }
}

fn string(src: &str, outer: Span, s: &Str) {
    span(src, s.span);
    inside(outer, s.span);
    assert_eq!(
        src.as_bytes()[s.span.start],
        b'"',
        "a string span starts at its quote"
    );
    assert_eq!(
        src.as_bytes()[s.span.end - 1],
        b'"',
        "a string span ends at its quote"
    );
}

fn value(src: &str, outer: Span, v: &Value) {
    span(src, v.span);
    inside(outer, v.span);
    if let ValueKind::List(items) = &v.kind {
        items.iter().for_each(|i| value(src, v.span, i));
    }
}

fn expr(src: &str, outer: Span, e: &Expr) {
    span(src, e.span);
    inside(outer, e.span);
    match &e.kind {
        ExprKind::Str(s) => string(src, e.span, s),
        ExprKind::Call { args, .. } => args.iter().for_each(|a| expr(src, e.span, a)),
        ExprKind::Unary { expr: inner, .. } | ExprKind::Paren(inner) => expr(src, e.span, inner),
        ExprKind::Binary { lhs, rhs, .. } => {
            expr(src, e.span, lhs);
            expr(src, e.span, rhs);
        }
        _ => {}
    }
}
