"""Tokens, sentences and chunks."""
import re

STOPWORDS = set("""
a an and are as at be by can could do does did for from how i if in into is it its me my
of on or should so that the their them then there these this to was what when where which
who why will with you your long many much after before during within about
take use need get make
""".split())

_WORD = re.compile(r"[a-z0-9]+(?:[.-][a-z0-9]+)*")


def count_tokens(text):
    """What the cost metrics count: whitespace-separated tokens."""
    return len(text.split())


def stem(word):
    for suffix in ("ation", "ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def terms(text):
    """Search terms of a text: lower-cased words, stop words dropped, crudely stemmed."""
    return [stem(w) for w in _WORD.findall(text.lower()) if w not in STOPWORDS]


def sentences(text):
    """Sentences of a text (markdown headings dropped)."""
    lines = [l for l in text.splitlines() if not l.startswith("#")]
    flat = " ".join(" ".join(lines).split())
    parts = re.split(r"(?<=[.!?])\s+(?=[A-Z])", flat)
    return [p.strip() for p in parts if p.strip()]


def chunks(text, max_words):
    """Consecutive sentences grouped into chunks of at most max_words words (a longer
    sentence is a chunk of its own)."""
    out, cur, n = [], [], 0
    for s in sentences(text):
        w = len(s.split())
        if cur and n + w > max_words:
            out.append(" ".join(cur))
            cur, n = [], 0
        cur.append(s)
        n += w
    if cur:
        out.append(" ".join(cur))
    return out
