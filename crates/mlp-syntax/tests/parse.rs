use mlp_syntax::ast::*;

fn ok(src: &str) -> File {
    match mlp_syntax::parse(src) {
        Ok(f) => f,
        Err(e) => panic!("{e:?}"),
    }
}

#[test]
fn parses_design_example() {
    let src = std::fs::read_to_string("/tmp/lang.mlp").unwrap();
    let f = ok(&src);
    println!("{:#?}", f.items.len());
    assert!(f.items.len() > 10);
}
