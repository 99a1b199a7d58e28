"""Read markdown tables back with a real parser (markdown-it, GitHub's table rules)."""

from __future__ import annotations

from markdown_it import MarkdownIt


def tables(text: str) -> list[list[list[str]]]:
    """Every table in `text`: its rows (header first), each a list of cell texts."""
    found: list[list[list[str]]] = []
    row: list[str] | None = None
    for token in MarkdownIt("commonmark").enable("table").parse(text):
        if token.type == "table_open":
            found.append([])
        elif token.type == "tr_open":
            row = []
        elif token.type == "inline" and row is not None:
            row.append(token.content)
        elif token.type == "tr_close" and row is not None:
            found[-1].append(row)
            row = None
    return found
