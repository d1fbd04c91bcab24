"""Okapi BM25 over chunks of documents, in plain Python. The index is a JSON document:
the chunks, their lengths and the document frequency of every term."""
import math
from collections import Counter

from rag.text import chunks, terms


def build(docs, chunk_words, k1, b):
    """docs: [(name, text)] sorted by name. The index (a dict ready for json.dump)."""
    items = []
    for name, text in docs:
        for i, chunk in enumerate(chunks(text, chunk_words)):
            items.append({"id": f"{name}#{i}", "doc": name, "text": chunk, "len": len(terms(chunk))})
    df = Counter()
    for it in items:
        df.update(set(terms(it["text"])))
    avgdl = sum(it["len"] for it in items) / max(1, len(items))
    return {"k1": k1, "b": b, "avgdl": round(avgdl, 6), "n": len(items),
            "df": dict(sorted(df.items())), "chunks": items}


def search(index, query, k):
    """The k best chunks for a query: [(score, chunk)], best first (ties by id)."""
    q = terms(query)
    n, k1, b, avgdl = index["n"], index["k1"], index["b"], index["avgdl"]
    scored = []
    for it in index["chunks"]:
        tf = Counter(terms(it["text"]))
        s = 0.0
        for t in set(q):
            if t not in tf:
                continue
            df = index["df"].get(t, 0)
            idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
            f = tf[t]
            s += idf * f * (k1 + 1) / (f + k1 * (1 - b + b * it["len"] / avgdl))
        if s > 0:
            scored.append((round(s, 6), it))
    scored.sort(key=lambda p: (-p[0], p[1]["id"]))
    return scored[:k]
