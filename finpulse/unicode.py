"""Text that UTF-8 can encode: JSON's unpaired `\\ud83d` escapes and surrogateescape'd bytes leave
lone UTF-16 surrogates in a str, which ids, the schema, Kafka and the tokenizer all refuse."""

from __future__ import annotations

import re

_SURROGATE = re.compile("[\ud800-\udfff]")


def without_surrogates(text: str) -> str:
    """`text` with surrogate pairs joined and lone surrogates replaced by U+FFFD."""
    if not _SURROGATE.search(text):
        return text
    # UTF-16 is where surrogates mean something: its decoder joins pairs and replaces the rest.
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
