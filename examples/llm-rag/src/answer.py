"""Answer every question with a provider, through a prompt card.

    answer.py PROVIDER PROMPT CONTEXTS ANSWERS COST USD_PER_1K_PROMPT USD_PER_1K_COMPLETION

PROVIDER is `primary` (the hosted model; fails when it is unavailable) or `local` (the
stand-in run by the stage's `fallback`). The prompt card's `passages` setting says how
many retrieved passages go into the context. The cost metrics count tokens by whitespace
split, and the time spent."""
import json
import os
import sys
import time

from rag import llm, prompt
from rag.text import count_tokens

start = time.perf_counter()
provider, card, contexts_path, answers_out, cost_out, usd_prompt, usd_completion = sys.argv[1:8]
settings, template = prompt.load(card)
passages_per_prompt = int(settings.get("passages", "1"))
with open(contexts_path) as f:
    items = [json.loads(l) for l in f if l.strip()]

answers, prompt_tokens, completion_tokens, model = [], 0, 0, "?"
for it in items:
    rendered = prompt.render(template, [p["text"] for p in it["passages"][:passages_per_prompt]],
                             it["question"])
    try:
        model, text = llm.complete(provider, rendered)
    except llm.ProviderError as e:
        print(f"provider `{provider}` failed on question {it['id']}: {e}", file=sys.stderr)
        sys.exit(1)
    p, c = count_tokens(rendered), count_tokens(text)
    prompt_tokens += p
    completion_tokens += c
    answers.append({"id": it["id"], "answer": text, "model": model,
                    "prompt_tokens": p, "completion_tokens": c})

for path in (answers_out, cost_out):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
with open(answers_out + ".tmp", "w") as f:
    for a in answers:
        f.write(json.dumps(a) + "\n")
os.replace(answers_out + ".tmp", answers_out)
usd = (prompt_tokens * float(usd_prompt) + completion_tokens * float(usd_completion)) / 1000
cost = {
    "provider": provider,
    "model": model,
    "fallback": 1 if provider == "local" else 0,
    "calls": len(answers),
    "prompt_tokens": prompt_tokens,
    "completion_tokens": completion_tokens,
    "total_tokens": prompt_tokens + completion_tokens,
    "usd": round(usd, 6),
    "seconds": round(time.perf_counter() - start, 4),
}
with open(cost_out, "w") as f:
    json.dump(cost, f, indent=2)
    f.write("\n")
print(f"{len(answers)} answers from {model} ({provider}): {prompt_tokens} prompt + "
      f"{completion_tokens} completion tokens, ${usd:.4f}")
