"""Build the BM25 index of the documents.

    build_index.py DOCS_DIR CHUNK_WORDS K1 B INDEX STATS"""
import json
import os
import sys
import time

from rag.bm25 import build
from rag.text import count_tokens

start = time.perf_counter()
docs_dir, chunk_words, k1, b, index_out, stats_out = sys.argv[1:7]
docs = []
for name in sorted(os.listdir(docs_dir)):
    if name.endswith((".md", ".txt")):
        with open(os.path.join(docs_dir, name)) as f:
            docs.append((name, f.read()))
index = build(docs, int(chunk_words), float(k1), float(b))
for p in (index_out, stats_out):
    os.makedirs(os.path.dirname(p) or ".", exist_ok=True)
with open(index_out, "w") as f:
    json.dump(index, f, indent=1, sort_keys=True)
    f.write("\n")
tokens = sum(count_tokens(t) for _, t in docs)
stats = {
    "documents": len(docs),
    "chunks": index["n"],
    "vocabulary": len(index["df"]),
    "tokens": tokens,
    "seconds": round(time.perf_counter() - start, 4),
}
with open(stats_out, "w") as f:
    json.dump(stats, f, indent=2)
    f.write("\n")
print(f"indexed {len(docs)} documents: {index['n']} chunks, {tokens} tokens, {len(index['df'])} terms")
