//! Syntax errors that point at the cause, not at where pest gave up.

fn err(src: &str) -> mlp_syntax::SyntaxError {
    match mlp_syntax::parse(src) {
        Ok(_) => panic!("parsed: {src}"),
        Err(mut e) => e.remove(0),
    }
}

fn at(src: &str, what: &str) -> usize {
    src.find(what).expect("in the source")
}

#[test]
fn a_block_with_a_misspelt_keyword_points_at_the_keyword() {
    let src = "pipeline \"x\"\n\nstag prep {\n  run \"make\"\n}\n";
    let e = err(src);
    assert_eq!(e.code, "E0101");
    assert_eq!(e.message, "unknown keyword `stag`");
    assert_eq!(
        (e.span.start, e.span.end),
        (at(src, "stag"), at(src, "stag") + 4)
    );
    assert_eq!(e.help, "did you mean `stage`?");
    assert_eq!(e.also[0].0.start, at(src, "{"));
}

#[test]
fn the_same_inside_a_for_loop() {
    let src = "for m in [\"a\"] {\n  stge \"s_${m}\" {\n    run \"make\"\n  }\n}\n";
    let e = err(src);
    assert_eq!(e.code, "E0101");
    assert_eq!(e.span.start, at(src, "stge"));
    assert_eq!(e.help, "did you mean `stage`?");
}

#[test]
fn an_unclosed_list_shows_where_it_opens() {
    let src = "param models = [\"gbm\", \"logreg\"\n\nstage prep {\n  run \"make\"\n}\n";
    let e = err(src);
    assert_eq!(e.code, "E0001");
    assert_eq!(e.span.start, at(src, "stage"));
    assert_eq!(e.help, "close the list with `]`");
    assert_eq!(e.also[0].0.start, at(src, "["));
}
