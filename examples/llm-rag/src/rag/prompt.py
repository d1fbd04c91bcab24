"""Prompt cards: a few `# key: value` settings lines, then the template, with {context}
and {question}. The settings are not sent to the model."""


def load(path):
    settings, body, header = {}, [], True
    with open(path) as f:
        for line in f:
            if header and line.startswith("#"):
                key, sep, value = line[1:].partition(":")
                if sep and key.strip().isidentifier():
                    settings[key.strip()] = value.strip()
                continue
            header = False
            body.append(line)
    return settings, "".join(body)


def render(template, passages, question):
    context = "\n".join(f"[{i + 1}] {p}" for i, p in enumerate(passages))
    return template.replace("{context}", context).replace("{question}", question)
