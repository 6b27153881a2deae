"""Response cleaning (protocol.md §2) and the name normalisation of the strict RO reading.

All functions are pure and linear in the length of their input: no regular expression with nested
quantifiers ever runs over a model response, so a megabyte of noise costs milliseconds.
"""

from __future__ import annotations

import unicodedata

IM_END = "<|im_end|>"
ENDOFTEXT = "<|endoftext|>"


def clean_response(text: str) -> str:
    """Clean a raw model response exactly as the published scripts do, steps in this order:

    1. if ``.<|im_end|>`` occurs, keep the text before its *first* occurrence and add ``.``;
    2. drop every ``<|im_end|>\\n``;
    3. if the text holds a ``\\n…\\n`` span, keep only the first one: the text between the first
       newline and the next newline (the scripts' ``re.search(r"\\n(.*?)\\n", s, re.DOTALL)``,
       done here with two ``find`` calls);
    4. drop every ``<|endoftext|>``;
    5. strip surrounding whitespace (Python's ``str.strip``).

    >>> clean_response("Liver.<|im_end|>\\n<|endoftext|>")
    'Liver.'
    >>> clean_response("Sure!\\nThe lesion is here.\\nAnything else?")
    'The lesion is here.'
    """
    marker = "." + IM_END
    cut = text.find(marker)
    if cut != -1:
        text = text[:cut] + "."
    text = text.replace(IM_END + "\n", "")
    first = text.find("\n")
    if first != -1:
        second = text.find("\n", first + 1)
        if second != -1:
            text = text[first + 1 : second]
    text = text.replace(ENDOFTEXT, "")
    return text.strip()


_ARTICLES = frozenset({"a", "an", "the"})


def normalize_name(text: str) -> str:
    """Normalisation for the strict RO reading (exact match after normalisation).

    Lower-case (``str.casefold``), Unicode NFKC, every punctuation or symbol character (Unicode
    categories P* and S*) replaced by a space, the articles *a*, *an*, *the* dropped, whitespace
    collapsed. ``"The Left Kidney."`` and ``"left  kidney"`` both give ``"left kidney"``.
    """
    text = unicodedata.normalize("NFKC", text).casefold()
    chars = [" " if unicodedata.category(c)[0] in "PSZC" else c for c in text]
    words = "".join(chars).split()
    return " ".join(w for w in words if w not in _ARTICLES)
