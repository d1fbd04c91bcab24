//! The TextMate grammar (editors/vscode/syntaxes/mlp.tmLanguage.json) under VS Code's own
//! tokenizer: editors/test/grammar.test.js (vscode-textmate + vscode-oniguruma from npm,
//! installed by `npm ci` in editors/test) checks the scopes of every example's keywords,
//! strings, interpolations, comments and numbers.

use std::process::Command;

use crate::common::{root, skip_or_fail};

#[test]
fn the_textmate_grammar_scopes_the_examples() {
    let dir = root().join("editors/test");
    if !dir.join("node_modules/vscode-textmate").is_dir() {
        skip_or_fail("editors/test has no node_modules (run `npm ci` in editors/test)");
        return;
    }
    let out = match Command::new("node")
        .arg("grammar.test.js")
        .current_dir(&dir)
        .output()
    {
        Ok(o) => o,
        Err(e) => {
            skip_or_fail(&format!("cannot run node: {e}"));
            return;
        }
    };
    assert!(
        out.status.success(),
        "grammar test failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_vscode_extension_registers_mlp_and_starts_the_server() {
    let dir = root().join("editors/vscode");
    let pkg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("package.json")).unwrap()).unwrap();
    let lang = &pkg["contributes"]["languages"][0];
    assert_eq!(lang["id"], "mlp");
    assert_eq!(lang["extensions"][0], ".mlp");
    let grammar = &pkg["contributes"]["grammars"][0];
    assert_eq!(grammar["scopeName"], "source.mlp");
    let path = dir.join(grammar["path"].as_str().unwrap());
    let g: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(g["scopeName"], "source.mlp");
    let ext = std::fs::read_to_string(dir.join(pkg["main"].as_str().unwrap())).unwrap();
    assert!(
        ext.contains("args: [\"lsp\"]"),
        "the extension starts `mlp lsp`"
    );
}
