"""Referring-object classification (RO) correctness, standard and strict (protocol.md §5)."""

from __future__ import annotations

from clinkd.eval.cleaning import normalize_name


def ro_correct_standard(annotation: str, response: str) -> bool:
    """The published rule: lower-case both; correct when every ``" "``-separated word of the
    annotation is a *substring* of the (cleaned) response.

    Quirks kept on purpose: ``split(" ")`` (not ``split()``), so a double space yields an empty word,
    which every response contains; substring, not word, matching, so ``"liver"`` is found in
    ``"deliverable"`` and a long response listing every organ is always right.

    >>> ro_correct_standard("Left kidney", "the left kidney.")
    True
    >>> ro_correct_standard("kidney", "kid")
    False
    """
    response = response.lower()
    return all(word in response for word in annotation.lower().split(" "))


def ro_correct_strict(annotation: str, response: str) -> bool:
    """Strict reading: exact equality after :func:`clinkd.eval.cleaning.normalize_name`
    (case, punctuation, articles and spacing ignored).

    >>> ro_correct_strict("Left kidney", "The left kidney.")
    True
    >>> ro_correct_strict("kidney", "left kidney")
    False
    """
    return normalize_name(annotation) == normalize_name(response)
