"""`mlp lsp` end to end over stdio, driven by a real LSP client (pytest-lsp).

Run by tests/it/lsp.rs with MLP_BIN set to the built binary."""

import asyncio
import os
import pathlib
import sys
import tempfile

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

MLP = os.environ.get("MLP_BIN", "mlp")

# `é𝔸` before the error: 2 bytes + 4 bytes, but 1 + 2 UTF-16 units.
PIPELINE = """\
pipeline "demo"

params "params.yaml"

stage prep {
  in     "data/raw.csv"
  out    clean = "data/clean.csv"
  run    "python prep.py ${params.train.lr} ${out.clean}"
}

stage train {
  in  "é𝔸", prep.clean
  out model = "model.bin"
  run "python train.py ${in[1]} ${out.model}"
}
"""

WORKSPACE = pathlib.Path(tempfile.mkdtemp(prefix="mlp-lsp-e2e-"))
(WORKSPACE / "data").mkdir()
(WORKSPACE / "data" / "raw.csv").write_text("x\n")
# The non-ASCII input exists: a missing one would be warning E0170.
(WORKSPACE / "é𝔸").write_text("x\n")
(WORKSPACE / "params.yaml").write_text("train:\n  lr: 0.1\n")
(WORKSPACE / "pipeline.mlp").write_text(PIPELINE)
URI = (WORKSPACE / "pipeline.mlp").resolve().as_uri()


def pos(text, needle, skip=0):
    at = text.index(needle)
    line = text.count("\n", 0, at)
    start = text.rfind("\n", 0, at) + 1
    col = len(text[start:at].encode("utf-16-le")) // 2 + skip
    return types.Position(line=line, character=col)


@pytest_lsp.fixture(config=ClientServerConfig(server_command=[MLP, "lsp"]))
async def client(lsp_client: LanguageClient):
    await lsp_client.initialize_session(
        types.InitializeParams(
            capabilities=types.ClientCapabilities(),
            root_uri=WORKSPACE.as_uri(),
        )
    )
    yield
    await lsp_client.shutdown_session()


async def open_with(client: LanguageClient, text: str, version: int = 1):
    """Open (version 1) or change the pipeline; the diagnostics published for it."""
    client.diagnostics.pop(URI, None)
    if version == 1:
        client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(uri=URI, language_id="mlp", version=1, text=text)
            )
        )
    else:
        client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=version),
                content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)],
            )
        )
    for _ in range(1000):
        if URI in client.diagnostics:
            return client.diagnostics[URI]
        await asyncio.sleep(0.01)
    raise AssertionError(f"no diagnostics published for {URI}")


async def test_editor_session(client: LanguageClient):
    # An error after non-ASCII text: the range counts UTF-16 units.
    bad = PIPELINE.replace("prep.clean", "prepp.clean")
    diags = await open_with(client, bad)
    assert diags, diags
    d = diags[0]
    assert str(d.code).startswith("E0"), d
    assert d.range.start == pos(bad, "prepp"), d.range
    assert d.range.end == pos(bad, "prepp", 5), d.range
    assert "did you mean `prep`" in d.message

    diags = await open_with(client, PIPELINE, version=2)
    assert list(diags) == []

    hover = await client.text_document_hover_async(
        types.HoverParams(text_document=types.TextDocumentIdentifier(uri=URI), position=pos(PIPELINE, "prep.clean", 1))
    )
    assert "python prep.py 0.1 data/clean.csv" in hover.contents.value

    defn = await client.text_document_definition_async(
        types.DefinitionParams(text_document=types.TextDocumentIdentifier(uri=URI), position=pos(PIPELINE, "prep.clean", 1))
    )
    assert defn[0].uri == URI
    assert defn[0].range.start == pos(PIPELINE, "prep {")

    defn = await client.text_document_definition_async(
        types.DefinitionParams(text_document=types.TextDocumentIdentifier(uri=URI), position=pos(PIPELINE, "train.lr", 7))
    )
    assert defn[0].uri.endswith("params.yaml")
    assert defn[0].range.start == types.Position(line=1, character=2)

    items = await client.text_document_completion_async(
        types.CompletionParams(text_document=types.TextDocumentIdentifier(uri=URI), position=pos(PIPELINE, "prep.clean", 5))
    )
    labels = [i.label for i in (items.items if hasattr(items, "items") else items)]
    assert labels == ["clean"], labels

    edit = await client.text_document_rename_async(
        types.RenameParams(
            text_document=types.TextDocumentIdentifier(uri=URI), position=pos(PIPELINE, "prep {"), new_name="clean_data"
        )
    )
    assert len(edit.changes[URI]) == 2
    assert all(e.new_text == "clean_data" for e in edit.changes[URI])

    messy = PIPELINE.replace("  in     \"data/raw.csv\"", "in \"data/raw.csv\"   # the raw table")
    await open_with(client, messy, version=3)
    edits = await client.text_document_formatting_async(
        types.DocumentFormattingParams(
            text_document=types.TextDocumentIdentifier(uri=URI),
            options=types.FormattingOptions(tab_size=2, insert_spaces=True),
        )
    )
    assert len(edits) == 1
    assert "  in  \"data/raw.csv\"  # the raw table\n" in edits[0].new_text


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))
