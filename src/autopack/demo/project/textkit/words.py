"""Splitting text into words."""

import re

_WORD = re.compile(r"[a-z0-9']+")


def words(text: str) -> list[str]:
    """The words of ``text``, lower-cased, without punctuation."""
    return _WORD.findall(text.lower())


def word_count(text: str) -> int:
    """How many words ``text`` has."""
    return len(words(text))
