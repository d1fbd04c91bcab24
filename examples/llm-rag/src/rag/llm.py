"""Two stand-in language models, deterministic and offline.

`sim-llm` plays the hosted model behind the `primary` provider: it reads the whole
rendered prompt, finds its "Context:" and "Question:" sections, and answers with the
context sentence that best matches the question, following a few instructions it finds
in the prompt ("one sentence", "as few words as possible", "say \"I don't know\"").
Setting LLM_OUTAGE (to anything but 0) makes the provider unreachable, like an outage.

`local-extractive` is the fallback: a small model that runs here. Its context window is
LOCAL_WINDOW words of the first passage, and it ignores instructions: free, and less
accurate.
"""
import math
import os
import re

from rag.text import sentences, terms

NUMERIC_QUESTION = re.compile(r"\b(how (long|many|far|much)|when|what time|which version)\b", re.I)


class ProviderError(Exception):
    pass


def _sections(prompt):
    """(instructions, passages, question) of a rendered prompt."""
    head, _, rest = prompt.partition("Context:")
    context, _, tail = rest.rpartition("Question:")
    question = tail.split("\n")[0].strip()
    passages = [re.sub(r"^\[\d+\]\s*", "", p.strip())
                for p in re.split(r"\n(?=\[\d+\])", context.strip()) if p.strip()]
    return head, passages, question


def _best(passages, question):
    """The context sentence that best matches the question, and how well: the share of
    the question's terms it contains, each weighted by how rare it is among the context's
    sentences, plus a bonus for a number when the question asks for one, and a slight
    preference for the passages retrieved first."""
    q = set(terms(question))
    numeric = bool(NUMERIC_QUESTION.search(question))
    candidates = [(i, s) for i, p in enumerate(passages) for s in sentences(p)]
    bags = [set(terms(s)) for _, s in candidates]
    n = len(candidates)
    weight = {t: math.log(1 + (n + 1) / (1 + sum(t in b for b in bags))) for t in q}
    total = sum(weight.values()) or 1.0
    best, best_score = "", 0.0
    for rank, ((passage, s), bag) in enumerate(zip(candidates, bags)):
        score = sum(weight[t] for t in q if t in bag) / total
        if numeric and re.search(r"\d", s):
            score += 0.15
        score -= 0.05 * passage + 0.001 * rank
        if score > best_score:
            best, best_score = s, score
    return best, best_score


def _shorten(sentence, question):
    """The clause of a sentence that carries the answer."""
    q = set(terms(question))
    clauses = [c.strip() for c in re.split(r"[,;:]\s+", sentence) if c.strip()]
    return max(clauses, key=lambda c: (sum(t in set(terms(c)) for t in q), -len(c)))


def sim_llm(prompt):
    instructions, passages, question = _sections(prompt)
    low = instructions.lower()
    best, score = _best(passages, question)
    if score < 0.3:
        return "I don't know." if "i don't know" in low else (passages[0] if passages else "")
    if "as few words as possible" in low:
        return _shorten(best, question)
    if "one sentence" in low:
        return best
    return " ".join(sentences(" ".join(passages))[:3])


LOCAL_WINDOW = 40


def local_extractive(prompt):
    _, passages, question = _sections(prompt)
    if not passages:
        return "I don't know."
    q = set(terms(question))
    options = sentences(" ".join(passages[0].split()[:LOCAL_WINDOW]))
    return max(options, key=lambda s: sum(t in set(terms(s)) for t in q))


PROVIDERS = {
    "primary": ("sim-llm", sim_llm),
    "local": ("local-extractive", local_extractive),
}


def complete(provider, prompt):
    """(model name, completion) from a provider; ProviderError when it is unavailable."""
    model, fn = PROVIDERS[provider]
    if provider == "primary" and os.environ.get("LLM_OUTAGE", "0") not in ("", "0"):
        raise ProviderError(f"{model}: HTTP 503 Service Unavailable (LLM_OUTAGE is set)")
    return model, fn(prompt)
