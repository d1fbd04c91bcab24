use mlp_syntax::ast::*;

fn ok(src: &str) -> File {
    match mlp_syntax::parse(src) {
        Ok(f) => f,
        Err(e) => panic!("{e:?}"),
    }
}

#[test]
fn parses_design_example() {
    let src: &str = include_str!("fixtures/design.mlp");
    let f = ok(src);
    assert!(f.items.len() > 10);
}
