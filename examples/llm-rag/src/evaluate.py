"""Score answers against the expected ones.

    evaluate.py QUESTIONS ANSWERS METRICS

An answer is correct when it contains one of the question's expected phrases (case,
punctuation and spacing ignored). Metrics: accuracy, correct, questions, abstained
("I don't know"), the mean answer length in tokens, and which model answered."""
import json
import os
import re
import sys
import time

from rag.text import count_tokens

start = time.perf_counter()
questions_path, answers_path, metrics_out = sys.argv[1:4]


def norm(text):
    return " ".join(re.sub(r"[^a-z0-9.]+", " ", text.lower().replace("-", " ")).split())


with open(questions_path) as f:
    questions = {q["id"]: q for q in (json.loads(l) for l in f if l.strip())}
with open(answers_path) as f:
    answers = {a["id"]: a for a in (json.loads(l) for l in f if l.strip())}
correct, abstained, wrong = 0, 0, []
for qid, q in questions.items():
    a = answers.get(qid, {}).get("answer", "")
    if any(norm(e) in norm(a) for e in q["expected"]):
        correct += 1
    else:
        if "don't know" in a.lower():
            abstained += 1
        wrong.append(qid)
n = max(1, len(questions))
models = sorted({a.get("model", "?") for a in answers.values()})
metrics = {
    "questions": len(questions),
    "correct": correct,
    "accuracy": round(correct / n, 4),
    "abstained": abstained,
    "mean_answer_tokens": round(sum(count_tokens(a["answer"]) for a in answers.values()) / n, 2),
    "models": ",".join(models),
    "wrong": wrong,
    "seconds": round(time.perf_counter() - start, 4),
}
os.makedirs(os.path.dirname(metrics_out) or ".", exist_ok=True)
with open(metrics_out, "w") as f:
    json.dump(metrics, f, indent=2)
    f.write("\n")
print(f"accuracy {metrics['accuracy']:.3f} ({correct}/{len(questions)}) answered by {metrics['models']}; wrong: {' '.join(wrong) or '-'}")
