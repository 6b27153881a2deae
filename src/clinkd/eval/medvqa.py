"""Med-VQA scoring (VQA-RAD, SLAKE, PathVQA): answer normalisation and the field's two conventions.

Every question is *closed* (yes/no or a choice among named options) or *open* (free answer). Two
conventions are in use and give different numbers; clinkd computes both and names them apart.

**LLaVA-Med** (``llava_med``; the generative-model papers that compare with LLaVA-Med: the script
``llava/eval/run_eval.py`` with ``eval_metrics/evaluate_metrics.py`` of microsoft/LLaVA-Med, commit
ad758b6, checked):

* both texts are lower-cased and normalised with :func:`normalize_answer`;
* open question — **token recall**, the share of gold tokens found in the prediction:
  :func:`token_recall` (the script's ``calculate_f1score(...)[2]``, reported as "recall"; the answers
  are normalised once more inside it, see :func:`token_recall`). The mean over open questions is the
  "Open" column of those papers;
* closed question — **gold in prediction**: a hit when the normalised prediction contains ``"yes"``
  or ``"no"`` as a substring *and* contains the normalised gold as a substring
  (:func:`closed_hit_llava_med`); the mean over closed questions is the "Closed" column ("yes/no
  accuracy" in the script). Two facts of that script to know: the yes/no gate is applied to *every*
  closed question, so a closed question whose answer is not yes/no ("CT or MRI?") is missed unless the
  prediction happens to contain "yes"/"no"; and when the gate passes but the gold is not found, the
  script appends nothing (an ``if`` without ``else``), so such questions leave the denominator and the
  printed accuracy is inflated. clinkd counts them as misses (``closed_accuracy``) and gives the
  script's own number beside it (``closed_accuracy_script``) with the count of questions concerned.

**Exact match** (``exact_match``; the classification-style Med-VQA papers — MEVF, PubMedCLIP, M2I2 —
whose models pick one answer from the training answer set, so accuracy is exact equality with the gold
answer): a hit when the normalised prediction equals the normalised gold
(:func:`exact_match`); accuracy over closed, open, and all questions.

**Headline**: the LLaVA-Med pair, open token recall and closed accuracy (misses counted), the numbers
generative Med-VQA models publish; the exact-match overall accuracy is reported beside it, and is the
one to use against classification-style models.

A record whose ``answer_type`` is absent is closed iff its normalised gold answer is ``yes`` or ``no``
(:func:`infer_answer_type`); the report counts how many types were inferred.

>>> normalize_answer("The Left Lung.")
'left lung'
>>> token_recall("the lung", "left lung")  # one of the two gold tokens found
0.5
>>> exact_match("left lung", "the lung")
False
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# The normalisation of the VQA v2 evaluation (processPunctuation / processDigitArticle) as LLaVA-Med's
# eval_metrics/glossary.py spells it: these characters, but not '.', ':' or "'" (periods have their
# own rule, the others are kept).
_PUNCT = (
    ";",
    "/",
    "[",
    "]",
    '"',
    "{",
    "}",
    "(",
    ")",
    "=",
    "+",
    "\\",
    "_",
    "-",
    ">",
    "<",
    "@",
    "`",
    ",",
    "?",
    "!",
)
_DIGIT_COMMA = re.compile(r"\d,\d")
# The script's pattern "(?!<=\d)(\.)(?!\d)" begins with a (mistyped) lookahead that never blocks a
# period, so it removes every '.' not followed by a digit; its sub() is given re.UNICODE (32) as the
# *count*, so at most 32 periods go. Both kept.
_PERIOD = re.compile(r"\.(?!\d)")
_PERIOD_COUNT = 32
_NUMBERS = {
    "none": "0",
    "zero": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    "ten": "10",
}
_ARTICLES = frozenset({"a", "an", "the"})
_YES_NO = frozenset({"yes", "no"})


def normalize_answer(text: str) -> str:
    """The VQA-style answer normalisation of LLaVA-Med's evaluation (``normalize_word``), step by step:

    1. each of ``; / [ ] " { } ( ) = + \\ _ - > < @ ` , ? !`` is *removed* when the text holds it next
       to a space (``"x ,"``/``", x"``) or holds a digit-comma-digit anywhere, and *replaced by a space*
       otherwise (``"x-ray"`` → ``"x ray"``);
    2. every ``.`` not followed by a digit is removed (``"3.5"`` keeps its point; at most 32, as there);
    3. lower-case, split on whitespace, number words ``zero``–``ten`` (and ``none``) become digits,
       the articles *a*, *an*, *the* are dropped;
    4. words joined by one space; remaining commas removed.

    Left out: the script's contraction table (``dont`` → ``don't`` …), which touches no Med-VQA answer
    and would only change words without apostrophes into words with them.

    >>> normalize_answer("Yes, the LEFT lung.")
    'yes left lung'
    >>> normalize_answer("Two")
    '2'
    """
    out = text
    strip = bool(_DIGIT_COMMA.search(text))
    for p in _PUNCT:
        if strip or (p + " ") in text or (" " + p) in text:
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    out = _PERIOD.sub("", out, count=_PERIOD_COUNT)
    words = [_NUMBERS.get(w, w) for w in out.lower().split()]
    return " ".join(w for w in words if w not in _ARTICLES).replace(",", "")


def infer_answer_type(gold: str) -> str:
    """``closed`` when the normalised gold answer is ``yes`` or ``no``, else ``open`` — for records
    without an ``answer_type`` (files written by other tools)."""
    return "closed" if normalize_answer(gold.lower()) in _YES_NO else "open"


def token_recall(prediction: str, gold: str) -> float:
    """LLaVA-Med's open-question recall (``calculate_f1score``'s third value), on raw texts.

    Both texts are lower-cased and normalised (:func:`normalize_answer`, applied twice as the script
    does: once in ``run_eval.py``, once inside ``calculate_f1score``), split on whitespace and counted.
    ``tp`` is the sum, over words in both, of their count *in the prediction*; ``fn`` the sum, over gold
    words absent from the prediction, of their count in the gold; recall = ``tp / (tp + fn)``, and 0 when
    either side has no word or ``tp`` is 0. Without repeated words this is |gold ∩ prediction| / |gold|;
    with them it follows the script (``"left left"`` against ``"left lung"``: tp 2, fn 1, 2/3).

    >>> token_recall("There is a mass in the left lung", "left lung")
    1.0
    >>> token_recall("right lung", "left lung")
    0.5
    """
    pred = Counter(_norm2(prediction).split())
    ref = Counter(_norm2(gold).split())
    if not pred or not ref:
        return 0.0
    tp = sum(c for w, c in pred.items() if w in ref)
    fn = sum(c for w, c in ref.items() if w not in pred)
    return tp / (tp + fn) if tp else 0.0


def closed_hit_llava_med(prediction: str, gold: str) -> bool | None:
    """LLaVA-Med's closed-question rule on raw texts: ``True`` when the normalised prediction contains
    ``"yes"`` or ``"no"`` (substrings) and the normalised gold (a substring); ``False`` when it contains
    neither; ``None`` when it contains one of them but not the gold — the case ``run_eval.py`` drops
    from the denominator (see the module docstring; clinkd counts it as a miss).

    >>> closed_hit_llava_med("Yes, it is.", "yes")
    True
    >>> closed_hit_llava_med("CT", "ct")  # the yes/no gate: a non-yes/no closed answer is missed
    False
    >>> closed_hit_llava_med("No.", "yes") is None
    True
    """
    pred, ref = _norm1(prediction), _norm1(gold)
    if "yes" not in pred and "no" not in pred:
        return False
    return True if ref in pred else None


def exact_match(prediction: str, gold: str) -> bool:
    """Exact equality after :func:`normalize_answer` (lower-cased first): the classification-style
    accuracy (MEVF, PubMedCLIP, M2I2), whose models output one answer of the answer set.

    >>> exact_match("Yes.", "yes")
    True
    >>> exact_match("Yes, there is a mass.", "yes")
    False
    """
    return _norm1(prediction) == _norm1(gold)


def _norm1(text: str) -> str:
    return normalize_answer(text.lower())


def _norm2(text: str) -> str:
    return normalize_answer(normalize_answer(text.lower()))


@dataclass(frozen=True)
class VQAItem:
    """One scored question: the raw ``prediction`` and ``gold`` answers and its ``answer_type``
    (``closed``/``open``)."""

    prediction: str
    gold: str
    answer_type: str


# per-question columns used by the bootstrap: exact, llava closed hit (misses counted), open recall
_EXACT, _CLOSED, _RECALL = 0, 1, 2


def score_vqa(items: Sequence[VQAItem], *, bootstrap: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Both conventions over ``items``: a JSON-ready block.

    ``llava_med``: ``open_recall`` (mean token recall over open questions), ``closed_accuracy`` (gold in
    prediction, misses counted; the headline pair), ``closed_accuracy_script`` (``run_eval.py``'s own
    number, the dropped questions out of the denominator) and ``n_closed_dropped_by_script``;
    ``exact_match``: ``closed_accuracy``, ``open_accuracy``, ``overall_accuracy``. A mean over no
    question is ``None``. ``counts``: questions per answer type. ``ci95`` (when ``bootstrap`` > 0): 95%
    percentile intervals, questions resampled within each answer type (seeded by ``seed``).

    >>> block = score_vqa([VQAItem("yes", "yes", "closed"), VQAItem("left lung", "lung", "open")],
    ...                   bootstrap=0)
    >>> block["llava_med"]["open_recall"], block["exact_match"]["overall_accuracy"]
    (1.0, 0.5)
    """
    rows = np.zeros((len(items), 3))
    types = np.array([it.answer_type for it in items])
    dropped = 0
    for k, it in enumerate(items):
        rows[k, _EXACT] = exact_match(it.prediction, it.gold)
        if it.answer_type == "closed":
            hit = closed_hit_llava_med(it.prediction, it.gold)
            dropped += hit is None
            rows[k, _CLOSED] = bool(hit)
        else:
            rows[k, _RECALL] = token_recall(it.prediction, it.gold)
    closed, open_ = rows[types == "closed"], rows[types == "open"]
    n_c, n_o = len(closed), len(open_)
    kept = n_c - dropped

    def mean(x: np.ndarray) -> float | None:
        return float(x.mean()) if x.size else None

    block: dict[str, Any] = {
        "headline": ["llava_med.open_recall", "llava_med.closed_accuracy"],
        "llava_med": {
            "open_recall": mean(open_[:, _RECALL]),
            "closed_accuracy": mean(closed[:, _CLOSED]),
            "closed_accuracy_script": float(closed[:, _CLOSED].sum() / kept) if kept else None,
            "n_closed_dropped_by_script": dropped,
        },
        "exact_match": {
            "closed_accuracy": mean(closed[:, _EXACT]),
            "open_accuracy": mean(open_[:, _EXACT]),
            "overall_accuracy": mean(rows[:, _EXACT]),
        },
        "counts": {"closed": n_c, "open": n_o, "total": len(items)},
        "ci95": {},
    }
    if bootstrap > 0 and len(items):
        block["ci95"] = _bootstrap(closed, open_, bootstrap, seed)
    return block


def _bootstrap(closed: np.ndarray, open_: np.ndarray, n_boot: int, seed: int) -> dict[str, list[float]]:
    """Percentile intervals, questions drawn with replacement within each answer type."""
    from clinkd.eval.strict import percentile_ci, resample_counts

    rng = np.random.default_rng([seed, 16])  # issue 16: its own stream, apart from the Med-GRIT tasks'
    groups = [g for g in (closed, open_) if len(g)]
    counts = resample_counts([len(g) for g in groups], n_boot, rng)
    sums = {id(g): c @ g for g, c in zip(groups, counts)}  # (B, 3) column sums per group
    out: dict[str, np.ndarray] = {}
    if len(closed):
        s = sums[id(closed)] / len(closed)
        out["llava_med.closed_accuracy"] = s[:, _CLOSED]
        out["exact_match.closed_accuracy"] = s[:, _EXACT]
    if len(open_):
        s = sums[id(open_)] / len(open_)
        out["llava_med.open_recall"] = s[:, _RECALL]
        out["exact_match.open_accuracy"] = s[:, _EXACT]
    total = sum(sums[id(g)][:, _EXACT] for g in groups)
    out["exact_match.overall_accuracy"] = total / (len(closed) + len(open_))
    names = list(out)
    ci = percentile_ci(np.stack([out[n] for n in names], axis=1))
    return {n: [float(lo), float(hi)] for n, (lo, hi) in zip(names, ci)}
