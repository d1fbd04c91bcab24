// The TextMate grammar (editors/vscode/syntaxes/mlp.tmLanguage.json) run by VS Code's own
// tokenizer (vscode-textmate + vscode-oniguruma) over every example pipeline: each
// keyword, string, interpolation, comment, number and boolean must get its scope. The
// expected scopes come from a small independent lexer below. Exits 1 on any mismatch.
"use strict";
const fs = require("fs");
const path = require("path");
const vsctm = require("vscode-textmate");
const oniguruma = require("vscode-oniguruma");

const repo = path.resolve(__dirname, "..", "..");
const grammarPath = path.join(repo, "editors", "vscode", "syntaxes", "mlp.tmLanguage.json");

const KEYWORDS = new Set([
  "pipeline", "params", "param", "env", "stage", "for", "include", "in", "out", "metrics",
  "after", "run", "check", "gate", "when", "every", "timeout", "retry", "fallback",
  "resources", "executor", "always", "frozen", "promote",
]);

async function loadGrammar() {
  const wasm = fs.readFileSync(require.resolve("vscode-oniguruma/release/onig.wasm")).buffer;
  await oniguruma.loadWASM(wasm);
  const registry = new vsctm.Registry({
    onigLib: Promise.resolve({
      createOnigScanner: (p) => new oniguruma.OnigScanner(p),
      createOnigString: (s) => new oniguruma.OnigString(s),
    }),
    loadGrammar: async (scope) =>
      scope === "source.mlp"
        ? vsctm.parseRawGrammar(fs.readFileSync(grammarPath, "utf8"), grammarPath)
        : null,
  });
  return registry.loadGrammar("source.mlp");
}

// What each character of a line must be: [start, end, scope prefix] ranges.
function expected(line, state) {
  const out = [];
  let i = 0;
  const firstWord = /^\s*([A-Za-z_][A-Za-z0-9_]*)/.exec(line);
  if (!state.inString && firstWord && KEYWORDS.has(firstWord[1])) {
    const s = line.indexOf(firstWord[1]);
    out.push([s, s + firstWord[1].length, "keyword."]);
  }
  while (i < line.length) {
    const c = line[i];
    if (state.inString) {
      if (c === "\\") { i += 2; continue; }
      if (c === "$" && line[i + 1] === "{") {
        const end = line.indexOf("}", i);
        const e = end < 0 ? line.length : end + 1;
        out.push([i, e, "meta.interpolation.mlp"]);
        i = e;
        continue;
      }
      if (c === '"') { state.inString = false; out.push([i, i + 1, "string.quoted.double.mlp"]); i++; continue; }
      out.push([i, i + 1, "string.quoted.double.mlp"]);
      i++;
      continue;
    }
    if (c === "#") { out.push([i, line.length, "comment.line.number-sign.mlp"]); break; }
    if (c === '"') { state.inString = true; out.push([i, i + 1, "string.quoted.double.mlp"]); i++; continue; }
    const word = /^[A-Za-z_][A-Za-z0-9_-]*/.exec(line.slice(i));
    if (word) {
      if ((word[0] === "true" || word[0] === "false") && line[i - 1] !== ".") {
        out.push([i, i + word[0].length, "constant.language.boolean.mlp"]);
      }
      i += word[0].length;
      continue;
    }
    const num = /^[0-9][0-9_]*(\.[0-9]+)?[A-Za-z]*/.exec(line.slice(i));
    if (num && !/[A-Za-z0-9_.\]]/.test(line[i - 1] || "")) {
      out.push([i, i + num[0].length, "constant.numeric.mlp"]);
      i += num[0].length;
      continue;
    }
    i++;
  }
  return out;
}

function scopesAt(tokens, col) {
  const t = tokens.find((t) => t.startIndex <= col && col < t.endIndex);
  return t ? t.scopes : [];
}

async function main() {
  const grammar = await loadGrammar();
  const files = process.argv.slice(2).length
    ? process.argv.slice(2)
    : fs.readdirSync(path.join(repo, "examples")).map((d) => path.join(repo, "examples", d, "pipeline.mlp")).filter(fs.existsSync);
  const counts = {};
  const problems = [];
  for (const file of files) {
    const lines = fs.readFileSync(file, "utf8").split("\n");
    let stack = vsctm.INITIAL;
    const state = { inString: false };
    lines.forEach((line, n) => {
      const r = grammar.tokenizeLine(line, stack);
      stack = r.ruleStack;
      for (const [s, e, want] of expected(line, state)) {
        counts[want] = (counts[want] || 0) + 1;
        for (let col = s; col < e; col++) {
          const scopes = scopesAt(r.tokens, col);
          if (!scopes.some((sc) => sc.startsWith(want))) {
            problems.push(`${path.relative(repo, file)}:${n + 1}:${col + 1}: \`${line.slice(s, e)}\` wants ${want}, has ${scopes.join(" ")}`);
            break;
          }
        }
      }
    });
  }
  // Some scopes every example set must have exercised.
  for (const want of ["keyword.", "string.quoted.double.mlp", "meta.interpolation.mlp", "comment.line.number-sign.mlp", "constant.numeric.mlp"]) {
    if (!counts[want]) problems.push(`no ${want} in the examples: the test checks nothing for it`);
  }
  // A few exact cases.
  const one = (text) => grammar.tokenizeLine(text, vsctm.INITIAL).tokens.map((t) => [text.slice(t.startIndex, t.endIndex), t.scopes[t.scopes.length - 1]]);
  const want = (text, piece, scope) => {
    const hit = one(text).find(([p]) => p === piece);
    if (!hit || hit[1] !== scope) problems.push(`\`${text}\`: \`${piece}\` wants ${scope}, has ${hit ? hit[1] : "nothing"}`);
  };
  want("stage train {", "train", "entity.name.function.stage.mlp");
  want("  timeout 20m", "20m", "constant.numeric.mlp");
  want('  run "a ${params.x} b"', "params", "variable.other.mlp");
  want("  check auc >= 0.8", ">=", "keyword.operator.mlp");
  want("  when failed(train)", "failed", "support.function.mlp");
  want('  run "a \\" b"', '\\"', "constant.character.escape.mlp");
  if (problems.length) {
    console.error(problems.slice(0, 40).join("\n"));
    console.error(`${problems.length} problems`);
    process.exit(1);
  }
  console.log(`ok: ${files.length} files, ${JSON.stringify(counts)}`);
}

main().catch((e) => { console.error(e); process.exit(1); });
