"""Retrieve the best passages for every evaluation question.

    retrieve.py INDEX QUESTIONS TOP_K CONTEXTS METRICS

Writes one line per question with its passages, and the retrieval metrics: recall@1 and
recall@k (the question's source document among the passages), mean reciprocal rank, and
what it cost (query tokens, seconds)."""
import json
import os
import sys
import time

from rag.bm25 import search
from rag.text import count_tokens

start = time.perf_counter()
index_path, questions_path, top_k, contexts_out, metrics_out = sys.argv[1:6]
top_k = int(top_k)
with open(index_path) as f:
    index = json.load(f)
with open(questions_path) as f:
    questions = [json.loads(l) for l in f if l.strip()]
hits1 = hitsk = 0
rr = 0.0
os.makedirs(os.path.dirname(contexts_out) or ".", exist_ok=True)
with open(contexts_out, "w") as out:
    for q in questions:
        found = search(index, q["question"], top_k)
        docs = [c["doc"] for _, c in found]
        if docs[:1] == [q["source"]]:
            hits1 += 1
        if q["source"] in docs:
            hitsk += 1
            rr += 1 / (docs.index(q["source"]) + 1)
        passages = [{"chunk": c["id"], "score": s, "text": c["text"]} for s, c in found]
        out.write(json.dumps({"id": q["id"], "question": q["question"], "passages": passages}) + "\n")
n = max(1, len(questions))
metrics = {
    "questions": len(questions),
    "top_k": top_k,
    "recall_at_1": round(hits1 / n, 4),
    "recall_at_k": round(hitsk / n, 4),
    "mrr": round(rr / n, 4),
    "query_tokens": sum(count_tokens(q["question"]) for q in questions),
    "seconds": round(time.perf_counter() - start, 4),
}
os.makedirs(os.path.dirname(metrics_out) or ".", exist_ok=True)
with open(metrics_out, "w") as f:
    json.dump(metrics, f, indent=2)
    f.write("\n")
print(" ".join(f"{k}={v}" for k, v in metrics.items()))
