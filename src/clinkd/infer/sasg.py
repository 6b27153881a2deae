"""Semantic-Aware Selective Generation (SASG, docs/method.md §4): answer with the semantic medoid.

For each question the model gives its greedy answer and ``N`` sampled answers; every candidate is
embedded (all-MiniLM-L6-v2, :class:`~clinkd.infer.similarity.Embedder`) and the candidate with the
highest mean agreement with the others wins (:func:`~clinkd.infer.similarity.select_medoid`; agreement
mixes in the boxes' mutual IoU when answers hold boxes). No reference answer is used.

Why it is cheap:

- **One ``generate`` call per batch for all ``N + 1`` candidates.** The greedy answer is one more
  "sampled" row whose distribution :class:`GreedyRows` collapses onto its argmax, so greedy and samples
  decode together in one batched loop. The image is encoded once: transformers 5.23 runs the vision
  tower before expanding the batch for ``num_return_sequences``. The *language-model* prefill is not
  shared there — ``generate`` repeats the prompt ``N + 1`` times (``_expand_inputs_for_generation``)
  before the first forward — but one batched prefill of ``(N + 1)·b`` short prompts costs far less
  than the ``max_new_tokens`` decode steps that follow (measured in ``benchmarks/bench_infer.py``).
- **One ``encode`` call per batch** for every candidate of every question (the embedder caches texts,
  so the per-question medoid look-ups hit the cache).
- Greedy is the first candidate, so ties go to it (``select_medoid`` keeps the earliest maximum).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from transformers import LogitsProcessor, LogitsProcessorList

from clinkd.infer.generate import generate_batch
from clinkd.infer.similarity import Embedder, answer_text, select_medoid

__all__ = ["GreedyRows", "Selection", "generate_candidates", "select_answers"]


class GreedyRows(LogitsProcessor):
    """Make every ``group``-th row of a sampling batch greedy: all but its argmax token get ``-inf``.

    Rows ``0, group, 2·group, ...`` are the first return sequence of each prompt. Custom processors run
    before temperature and top-p (transformers 5.23 appends those after), which keep the argmax, so the
    row samples its argmax with probability 1: the same token greedy decoding picks.
    """

    def __init__(self, group: int):
        self.group = group

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        rows = torch.arange(0, scores.shape[0], self.group, device=scores.device)  # (b,)
        best = scores[rows].argmax(-1)  # (b,)
        forced = torch.full_like(scores[rows], float("-inf"))
        forced[torch.arange(len(rows), device=scores.device), best] = 0.0
        scores = scores.clone()
        scores[rows] = forced
        return scores


@torch.no_grad()
def generate_candidates(
    model,
    processor,
    images: Sequence,
    questions: Sequence[str],
    *,
    n: int = 5,
    max_new_tokens: int = 80,
    temperature: float = 0.7,
    top_p: float = 0.9,
) -> list[list[str]]:
    """The greedy answer followed by ``n`` sampled answers for each question: ``[[greedy, s1..sn], ...]``.

    One ``generate`` call for the whole batch (``b`` questions → ``b·(n+1)`` rows); seed torch before
    calling for reproducible samples. ``n = 0`` gives plain greedy answers.
    """
    if len(images) != len(questions):
        raise ValueError(f"{len(images)} images for {len(questions)} questions")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    was_training = model.training
    model.eval()
    try:
        if n == 0:
            texts = generate_batch(model, processor, images, questions, max_new_tokens=max_new_tokens, do_sample=False)
            return [[t] for t in texts]
        group = n + 1
        texts = generate_batch(
            model, processor, images, questions, max_new_tokens=max_new_tokens, do_sample=True,
            num_return_sequences=group, temperature=temperature, top_p=top_p, top_k=0,
            logits_processor=LogitsProcessorList([GreedyRows(group)]),
        )  # (b * group,)
    finally:
        model.train(was_training)
    return [texts[i : i + group] for i in range(0, len(texts), group)]


@dataclass
class Selection:
    """The SASG choice for one question: ``candidates[index]`` is ``answer``; ``scores`` (N+1,) are the
    candidates' mean agreements with the others."""

    answer: str
    index: int
    candidates: list[str] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"chosen": self.index, "candidates": self.candidates, "scores": [round(s, 6) for s in self.scores]}


def select_answers(
    candidates: Sequence[Sequence[str]], embedder: Embedder, box_weight: float = 0.5
) -> list[Selection]:
    """The semantic medoid of each question's candidates (greedy first, so ties go to it).

    All texts of the batch are embedded in one ``encode`` call first; the per-question agreement
    matrices then read the embedder's cache.
    """
    texts = [t for cands in candidates for t in map(answer_text, cands) if t]
    if texts:
        embedder.encode(texts)
    out = []
    for cands in candidates:
        index, mean = select_medoid(list(cands), embedder, box_weight)
        out.append(Selection(cands[index], index, list(cands), [float(x) for x in mean]))
    return out
