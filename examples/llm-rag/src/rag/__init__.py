"""Plain-Python retrieval-augmented generation: text utilities, a BM25 index, prompt
cards and two stand-in language models. Standard library only."""
