"""Semantic-Aware Selective Generation (SASG, docs/method.md §4): answer with the semantic medoid.

For each question the model gives its greedy answer and ``N`` sampled answers; every candidate is
embedded (all-MiniLM-L6-v2, :class:`~clinkd.infer.similarity.Embedder`) and the candidate with the
highest mean agreement with the others wins (:func:`~clinkd.infer.similarity.select_medoid`; agreement
mixes in the boxes' mutual IoU when answers hold boxes). No reference answer is used.

Why it is cheap:

- **One prefill, one ``generate`` call per batch for all ``N + 1`` candidates.** Each prompt (image
  included) runs through the model once; its KV cache is then copied ``N + 1`` times
  (:func:`~clinkd.infer.generate.prefill_shared_cache`) and one batched decode loop writes every
  candidate. The greedy answer is one more "sampled" row whose distribution :class:`GreedyRows`
  collapses onto its argmax. (Plain ``generate(num_return_sequences=...)`` repeats every prompt before
  the first forward and prefills ``(N + 1)·b`` rows.) The shared prefill decodes token for token as the
  repeated one does, greedy rows equal plain greedy, for all three model families (tested).
- **Samples do not outrun the greedy answer by much.** The batch decodes until its longest row stops,
  and sampled rows (temperature keeps ``<|im_end|>`` from winning) often ramble to ``max_new_tokens``
  after the greedy row has ended; :class:`AnchoredLength` cuts them at 2 × the greedy length + 8 tokens
  and leaves them out of the vote. On a trained tiny student the SASG loop then takes only ~5–20 % more
  forward passes than greedy decoding.
- **One ``encode`` call per batch**, for the questions whose candidates do not all say the same words
  (the embedder caches texts, so the per-question medoid look-ups hit the cache).
- Greedy is the first candidate, so ties go to it (``select_medoid`` keeps the earliest maximum).

What it costs (tiny student, 2 CPU threads, batch 8, N = 5): generation is 2.1–2.6× greedy's time with
the demo's trained student and 2.0–4.0× per task with ``benchmarks/bench_infer.py``'s briefly trained
one (its samples run longer), because a decode step of ``6·b`` rows costs ~2.3× one of ``b`` rows on
CPU. MiniLM then adds 0.1–0.8× greedy (VG, RO: a few words per answer) to 1.3–1.8× (GC, MII: 30–60
words): it takes ~20 ms per 45-word answer on 2 cores, more than the 1-M-parameter tiny student spends
writing it. With a real checkpoint the embedding is a rounding error next to generation; with the tiny
student it is what keeps SASG above 2.5× greedy. (Dynamic int8 MiniLM is ~1.8× faster but moves cosine
similarities by up to 0.14, so it is not used.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import torch
from transformers import LogitsProcessor, LogitsProcessorList, StoppingCriteria, StoppingCriteriaList

from clinkd.data.conventions import BoxCodec
from clinkd.infer.defaults import DEFAULTS
from clinkd.infer.generate import Answer, generate_batch
from clinkd.infer.similarity import Embedder, answer_text, select_medoid

__all__ = ["AnchoredLength", "GreedyRows", "Selection", "generate_candidates", "select_answers"]


class GreedyRows(LogitsProcessor):
    """Make every ``group``-th row of a sampling batch greedy: all but its argmax token get ``-inf``.

    Rows ``0, group, 2·group, ...`` are the first return sequence of each prompt. Custom processors run
    before temperature and top-p (transformers 5.23 appends those after), which keep the argmax, so the
    row samples its argmax with probability 1: the same token greedy decoding picks. That order is an
    upstream behaviour with no upstream name in this code: listed in :mod:`clinkd.upstream`'s docstring
    and checked by ``tests/test_upstream.py``.
    """

    def __init__(self, group: int):
        self.group = group

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        rows = torch.arange(0, scores.shape[0], self.group, device=scores.device)  # (b,)
        best = scores[rows].argmax(-1)  # (b,)
        forced = torch.full_like(scores[rows], float("-inf"))
        forced[torch.arange(len(rows), device=scores.device), best] = 0.0
        out = scores.clone()
        out[rows] = forced
        return cast(torch.FloatTensor, out)  # the legacy tensor type upstream's signature names


class AnchoredLength(StoppingCriteria):
    """Stop a group's sampled rows once they are ``factor`` × its greedy answer's length + ``slack`` tokens.

    Why: a sampled answer runs on long after the greedy one has ended (temperature keeps ``<|im_end|>``
    from winning), and the batch decodes until its longest row stops, so without this cap SASG costs
    ``max_new_tokens`` steps whatever the greedy length. A sample that long is a ramble, not a rival
    answer; rows cut here are recorded in :attr:`cut` ((B,) bool) and left out of the vote.

    Rows ``0, group, 2·group, ...`` are the greedy rows; a group's cap applies once its greedy row has
    emitted ``end_id``.
    """

    def __init__(
        self,
        group: int,
        end_id: int,
        factor: float = DEFAULTS.length_factor,
        slack: int = DEFAULTS.length_slack,
    ):
        self.group, self.end_id = group, end_id
        self.prompt_len: int | None = None  # set on the first call, which sees one new token
        self.factor, self.slack = factor, slack
        self.greedy_len: torch.Tensor | None = (
            None  # (b,) generated length of each greedy row, -1 while running
        )
        self.cut: torch.Tensor | None = None  # (B,)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs) -> torch.BoolTensor:
        if self.prompt_len is None:
            self.prompt_len = input_ids.shape[1] - 1
        rows, new = input_ids.shape[0], input_ids.shape[1] - self.prompt_len
        if self.greedy_len is None or self.cut is None:  # the first call: both set together
            self.greedy_len = torch.full((rows // self.group,), -1, dtype=torch.long, device=input_ids.device)
            self.cut = torch.zeros(rows, dtype=torch.bool, device=input_ids.device)
        ended = (input_ids[:: self.group, -1] == self.end_id) & (self.greedy_len < 0)  # (b,)
        self.greedy_len[ended] = new
        cap = torch.where(
            self.greedy_len >= 0,
            (self.greedy_len * self.factor).ceil().long() + self.slack,
            torch.full_like(self.greedy_len, 1 << 30),
        )  # (b,)
        stop = (new >= cap).repeat_interleave(self.group)  # (B,)
        stop[:: self.group] = False  # greedy rows stop on their own
        ran = input_ids[:, self.prompt_len :] == self.end_id  # (B, new): rows that already ended are not cut
        self.cut |= stop & ~ran.any(1)
        return cast(torch.BoolTensor, stop)  # the legacy tensor type upstream's signature names


@torch.no_grad()
def generate_candidates(
    model,
    processor,
    images: Sequence,
    questions: Sequence[str],
    *,
    n: int = DEFAULTS.candidates,
    max_new_tokens: int = DEFAULTS.max_new_tokens,
    temperature: float = DEFAULTS.temperature,
    top_p: float = DEFAULTS.top_p,
    length_factor: float | None = DEFAULTS.length_factor,
    length_slack: int = DEFAULTS.length_slack,
    boxes: BoxCodec | str | None = "auto",
) -> list[list[Answer]]:
    """The greedy answer followed by up to ``n`` sampled answers per question: ``[[greedy, s1..], ...]``.

    One ``generate`` call for the whole batch (``b`` questions → ``b·(n+1)`` rows); seed torch before
    calling for reproducible samples. ``n = 0`` gives plain greedy answers. With ``length_factor``,
    samples still running at ``length_factor`` × the greedy length + ``length_slack`` tokens are cut and
    dropped (:class:`AnchoredLength`); ``None`` keeps every sample up to ``max_new_tokens``. Boxes are
    converted at the model's boundary (``boxes``, :func:`~clinkd.infer.generate.generate_batch`), so the
    candidates' box agreement compares Med-GRIT boxes of the original image.
    """
    if len(images) != len(questions):
        raise ValueError(f"{len(images)} images for {len(questions)} questions")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    was_training = model.training
    model.eval()
    try:
        if n == 0:
            texts = generate_batch(
                model,
                processor,
                images,
                questions,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                boxes=boxes,
            )
            return [[t] for t in texts]
        group = n + 1
        extra: dict[str, Any] = {}
        anchor = None
        if length_factor is not None:
            end_id = processor.tokenizer.convert_tokens_to_ids("<|im_end|>")
            anchor = AnchoredLength(group, end_id, length_factor, length_slack)
            extra["stopping_criteria"] = StoppingCriteriaList([anchor])
        texts = generate_batch(
            model,
            processor,
            images,
            questions,
            max_new_tokens=max_new_tokens,
            do_sample=True,
            num_return_sequences=group,
            temperature=temperature,
            top_p=top_p,
            top_k=0,
            logits_processor=LogitsProcessorList([GreedyRows(group)]),
            boxes=boxes,
            **extra,
        )  # (b * group,)
    finally:
        model.train(was_training)
    cut = anchor.cut.tolist() if anchor is not None and anchor.cut is not None else [False] * len(texts)
    return [
        [t for j, t in enumerate(texts[i : i + group]) if j == 0 or not cut[i + j]]
        for i in range(0, len(texts), group)
    ]


@dataclass
class Selection:
    """The SASG choice for one question: ``candidates[index]`` is ``answer``; ``scores`` (k,) are the
    candidates' mean agreements with the others (k ≤ N + 1: greedy plus the samples that were not cut)."""

    answer: str
    index: int
    candidates: list[str] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "chosen": self.index,
            "candidates": self.candidates,
            "scores": [round(s, 6) for s in self.scores],
        }


def select_answers(
    candidates: Sequence[Sequence[str]], embedder: Embedder, box_weight: float = DEFAULTS.box_weight
) -> list[Selection]:
    """The semantic medoid of each question's candidates (greedy first, so ties go to it).

    The texts of the batch are embedded in one ``encode`` call first (the per-question agreement
    matrices then read the embedder's cache), leaving out questions whose candidates all say the same
    words: their text agreement is 1 throughout and the boxes alone rank them.
    """
    groups = [list(map(answer_text, cands)) for cands in candidates]
    texts = [t for g in groups if len(set(g)) > 1 for t in g if t]
    if texts:
        embedder.encode(texts)
    out = []
    for cands in candidates:
        index, mean = select_medoid(list(cands), embedder, box_weight)
        out.append(Selection(cands[index], index, list(cands), [float(x) for x in mean]))
    return out
