"""Lexical (BM25-style) sparse vectors, computed locally: no model, no network.

A document's vector holds, for each of its terms, BM25's saturated term frequency
``tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / AVERAGE_LENGTH))``; the collection's sparse
vector is configured with ``Modifier.IDF``, so Qdrant (server and local mode alike) multiplies
in each term's inverse document frequency at query time. A query's vector is 1.0 per distinct
term: the score is then BM25 over the query's terms.

Term ids are a stable hash of the term (BLAKE2b, 31 bits), the same in every process and on
every machine, never Python's salted ``hash``. Two terms may collide; at 31 bits that is rare
and costs at most a slightly inflated score.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass

K1 = 1.2
B = 0.75
# BM25 normalises by the corpus's average document length, which a vector computed one document
# at a time cannot know. Chunks are ~60 lines of code or prose, about this many terms: a fixed
# assumption, so that a document's vector never changes when other documents are added.
AVERAGE_LENGTH = 200.0
MIN_TOKEN_LENGTH = 2

# Words of English prose and of most programming languages' keywords that say nothing about a
# text's subject.
STOP_WORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "from",
        "has",
        "have",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "no",
        "not",
        "of",
        "on",
        "or",
        "so",
        "such",
        "that",
        "the",
        "their",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "were",
        "will",
        "with",
        "we",
        "you",
        "your",
        "our",
        "can",
        "do",
        "does",
        "def",
        "self",
        "cls",
        "return",
        "import",
        "none",
        "true",
        "false",
        "null",
        "var",
        "let",
        "const",
        "function",
        "class",
        "pass",
        "else",
        "elif",
    ]
)

_IDENTIFIER = re.compile(r"[A-Za-z0-9_]+")
# Pieces of one identifier: "HTTPServer" -> HTTP, Server; "parseJSON2" -> parse, JSON, 2.
_PIECE = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")


@dataclass(frozen=True)
class SparseVector:
    """Term ids (ascending) and their weights."""

    indices: list[int]
    values: list[float]


def tokenize(text: str) -> list[str]:
    """Terms of code or prose, lower-cased: each identifier's pieces (split at underscores and
    other non-alphanumerics, and at camelCase humps), plus the whole identifier when it has
    several pieces (``parse_config`` gives ``parse``, ``config`` and ``parse_config``), so that
    an exact identifier scores above its pieces scattered. Short tokens and stop words are
    dropped."""
    terms: list[str] = []
    for identifier in _IDENTIFIER.findall(text):
        pieces = [piece.lower() for part in identifier.split("_") for piece in _PIECE.findall(part)]
        for piece in pieces:
            if len(piece) >= MIN_TOKEN_LENGTH and piece not in STOP_WORDS:
                terms.append(piece)
        whole = identifier.strip("_").lower()
        if len(pieces) > 1 and len(whole) >= MIN_TOKEN_LENGTH:
            terms.append(whole)
    return terms


def term_id(term: str) -> int:
    """The term's id: BLAKE2b of its UTF-8 bytes, first 4 bytes, top bit cleared."""
    digest = hashlib.blake2b(term.encode("utf-8"), digest_size=4).digest()
    return int.from_bytes(digest, "big") & 0x7FFFFFFF


def document_vector(text: str) -> SparseVector:
    """A document's vector: BM25 term-frequency saturation per term id."""
    terms = tokenize(text)
    counts = Counter(term_id(term) for term in terms)
    norm = K1 * (1 - B + B * len(terms) / AVERAGE_LENGTH)
    indices = sorted(counts)
    values = [counts[i] * (K1 + 1) / (counts[i] + norm) for i in indices]
    return SparseVector(indices=indices, values=values)


def query_vector(text: str) -> SparseVector:
    """A query's vector: 1.0 per distinct term (Qdrant applies the IDF)."""
    indices = sorted({term_id(term) for term in tokenize(text)})
    return SparseVector(indices=indices, values=[1.0] * len(indices))
