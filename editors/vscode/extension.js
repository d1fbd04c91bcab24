// Starts `mlp lsp` for .mlp files. Everything else (diagnostics, hover, completion,
// formatting, ...) comes from the server.
const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const command = vscode.workspace.getConfiguration("mlp").get("path") || "mlp";
  client = new LanguageClient(
    "mlp",
    "mlp language server",
    { command, args: ["lsp"] },
    {
      documentSelector: [{ scheme: "file", language: "mlp" }],
      synchronize: {
        fileEvents: vscode.workspace.createFileSystemWatcher("**/*.{mlp,yaml,yml,toml,json}"),
      },
    }
  );
  context.subscriptions.push(client);
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
