"""Caption metrics for GC and MII (protocol.md §6): BLEU-1..4, METEOR, ROUGE-L, CIDEr (and SPICE).

Each group (a modality, or all samples pooled) is scored as one pycocoevalcap run over that group
would score it, every sample being its own image with one reference — the numbers are those of
``COCOEvalCap.evaluate`` on the group's samples, bit for bit. What is shared is what does not depend
on the group, and every JVM is started once:

* tokenisation: one tokenizer JVM for all groups, each group's responses and references in their
  own files (the PTB tokenizer looks across line ends, so a caption's tokens can depend on the
  caption after it in its group's file — see :func:`clinkd.eval.coco_java.ptb_tokenize_docs`);
* METEOR: one JVM; statistics once per distinct (response, reference) token pair; a group's corpus
  METEOR is ``EVAL`` of the sum of its statistics (METEOR aggregates a corpus by adding statistics:
  identical numbers, one line instead of thousands — see ``MeteorProcess.evaluate_summed_many``);
* n-gram counts, BLEU's per-caption statistics and ROUGE-L per distinct token string or pair;
* SPICE per distinct pair (its group score is the plain mean of per-caption scores).

CIDEr's IDF is computed over each group's own references, as a separate run would. The arithmetic
is pycocoevalcap's (see :mod:`clinkd.eval.ngram`).

Captions are scored whole, as pycocoevalcap scores them. ``max_tokens`` (``clinkd eval
--max-caption-tokens``, off by default, outside the standard reading) cuts each tokenised caption to
that many tokens, for files whose runaway answers METEOR cannot align; :attr:`CaptionScorer.cut` says
which captions it touched.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypedDict

import numpy as np

from clinkd.eval import coco_java, ngram

log = logging.getLogger(__name__)

CAPTION_METRICS: tuple[str, ...] = (
    "Bleu_1",
    "Bleu_2",
    "Bleu_3",
    "Bleu_4",
    "METEOR",
    "ROUGE_L",
    "CIDEr",
    "SPICE",
)
"""Metric names as pycocoevalcap spells them."""

MBMR_METRICS: tuple[str, ...] = ("Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "METEOR", "ROUGE_L")
"""mBMR = mean of these six (the ClinKD MII script; SPICE and CIDEr are not in it)."""

POOLED = "__pooled__"
"""Name of the group holding all samples of the eight modalities (strict reading)."""


@dataclass
class CaptionTask:
    """Input of one task: cleaned responses, references, and the groups (name → sample indices);
    ``labels`` (optional) name each sample in error messages, e.g. ``pred_GC.jsonl line 5 (id 4)``."""

    hyps: Sequence[str]
    refs: Sequence[str]
    groups: Mapping[str, Sequence[int]]
    labels: Sequence[str] | None = None


@dataclass
class CaptionResult:
    """Per group: metric → score (``None`` where unavailable) and per-sample arrays for bootstraps:
    ``ROUGE_L``, ``CIDEr`` (with the group's IDF), ``SPICE`` scores ``(n,)``; ``BLEU_stats`` ``(n, 10)``
    (:func:`clinkd.eval.ngram.bleu_stats_matrix`) and ``METEOR_stats`` ``(n, 23)``
    (:func:`clinkd.eval.coco_java.additive_stats`), whose column sums give the group's corpus BLEU and
    METEOR (:func:`~clinkd.eval.ngram.bleu_from_totals`, :func:`~clinkd.eval.coco_java.meteor_from_stats`)."""

    scores: dict[str, dict[str, float | None]] = field(default_factory=dict)
    per_sample: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    spice_reason: str | None = None


def score_caption_tasks(
    tasks: Mapping[str, CaptionTask],
    *,
    spice: bool | None = None,
    progress: bool = False,
    max_tokens: int | None = None,
) -> dict[str, CaptionResult]:
    """Score every group of every task with one tokenizer run and one METEOR process.

    Args:
        tasks: task name → :class:`CaptionTask`.
        spice: ``True`` to require SPICE, ``False`` to skip it, ``None`` (default) to compute it when
            the CoreNLP jars are present and report it unavailable otherwise.
        progress: show a progress bar over groups.
        max_tokens: cut every tokenised caption to this many tokens (``None``, the default and the
            standard reading: whole captions).
    """
    scorer = CaptionScorer(tasks, spice=spice, progress=progress, max_tokens=max_tokens)
    scorer.start()
    return scorer.finish()


class _JavaResults(TypedDict, total=False):
    """What :meth:`CaptionScorer._java_work` hands the calling thread, each key once it is there."""

    tokens: list[tuple[list[str], list[str]]]  # each job's (responses, references), PTB-tokenised
    pairs: dict[tuple[str, str], int]  # distinct (response, reference) token strings → their index
    meteor: list[float]  # each job's corpus METEOR
    meteor_stats: list[np.ndarray]  # each job's per-sample additive METEOR statistics
    error: BaseException  # what stopped the thread


class CaptionScorer:
    """:func:`score_caption_tasks` in two halves, so the caller can work in between.

    :meth:`start` launches the METEOR JVM and a background thread that tokenises every caption (one
    tokenizer JVM), then computes METEOR statistics and each group's corpus METEOR — Java-bound work
    on one core. :meth:`finish` computes BLEU, ROUGE-L and CIDEr in the calling thread (the other core)
    once the tokens are there, then joins the thread. ``evaluate`` scores VG and RO in between.
    """

    def __init__(
        self,
        tasks: Mapping[str, CaptionTask],
        *,
        spice: bool | None = None,
        progress: bool = False,
        max_tokens: int | None = None,
    ) -> None:
        self.tasks = tasks
        self.max_tokens = max_tokens
        #: task → {"responses": indices, "references": indices} of the captions ``max_tokens`` cut
        self.cut: dict[str, dict[str, set[int]]] = {
            n: {"responses": set(), "references": set()} for n in tasks
        }
        self.names = [n for n in tasks if len(tasks[n].hyps)]
        self.spice = spice
        self.progress = progress
        self.spice_reason = "not requested" if spice is False else coco_java.spice_unavailable_reason()
        if spice is True and self.spice_reason:
            raise coco_java.JavaToolError(f"SPICE was required (--spice) but cannot run: {self.spice_reason}")
        # (task, group, global indices) of every non-empty group, in a fixed order
        self.jobs: list[tuple[str, str, list[int]]] = []
        offset = 0
        for name in self.names:
            for group, idx in tasks[name].groups.items():
                if idx:
                    self.jobs.append((name, group, [offset + i for i in idx]))
            offset += len(tasks[name].hyps)
        self._meteor: coco_java.MeteorProcess | None = None
        self._worker: threading.Thread | None = None
        self._tokens_ready = threading.Event()
        self._box: _JavaResults = {}
        self._t0 = time.perf_counter()

    def start(self) -> None:
        if not self.names:
            return
        self._meteor = coco_java.MeteorProcess()  # ~8 s of table loading starts now
        self._worker = threading.Thread(target=self._java_work, daemon=True)
        self._worker.start()

    def _java_work(self) -> None:
        box, meteor = self._box, self._meteor
        assert meteor is not None
        try:
            hyps = [t for n in self.names for t in self.tasks[n].hyps]
            refs = [t for n in self.names for t in self.tasks[n].refs]
            docs = []
            for _, _, idx in self.jobs:  # each group's responses and references: two documents
                docs.append([hyps[i] for i in idx])
                docs.append([refs[i] for i in idx])
            log.info(
                "tokenising %d documents, %d captions (one PTB tokenizer run)", len(docs), sum(map(len, docs))
            )
            tokens = coco_java.ptb_tokenize_docs(docs)
            if self.max_tokens is not None:
                tokens = self._bound(tokens)
            box["tokens"] = [(tokens[2 * k], tokens[2 * k + 1]) for k in range(len(self.jobs))]
            self._tokens_ready.set()
            log.debug("tokenised after %.1f s", time.perf_counter() - self._t0)
            # METEOR statistics depend on the two token strings only: score each distinct pair once
            pairs: dict[tuple[str, str], int] = {}
            for th, tr in box["tokens"]:
                for pair in zip(th, tr):
                    pairs.setdefault(pair, len(pairs))
            box["pairs"] = pairs
            log.info("METEOR over %d distinct caption pairs, %d groups (one JVM)", len(pairs), len(self.jobs))
            try:
                stats = meteor.stats([h for h, _ in pairs], [[r] for _, r in pairs])
            except coco_java.MeteorDied as err:
                raise self._meteor_failure(list(pairs), err) from None
            log.debug("METEOR statistics done after %.1f s", time.perf_counter() - self._t0)
            index = [[pairs[p] for p in zip(th, tr)] for th, tr in box["tokens"]]
            box["meteor"] = meteor.evaluate_summed_many([[stats[k] for k in idx] for idx in index])
            # per-sample additive rows (bootstraps of corpus METEOR), parsed once per distinct pair
            rows = np.array([coco_java.additive_stats(line) for line in stats]).reshape(
                -1, coco_java.STATS_WIDTH
            )
            box["meteor_stats"] = [rows[np.asarray(idx, dtype=np.intp)] for idx in index]
            log.debug("METEOR EVALs done after %.1f s", time.perf_counter() - self._t0)
        except BaseException as err:
            box["error"] = err
            self._tokens_ready.set()

    def _where(self, k: int) -> tuple[str, int]:
        """(task, index in the task) of global sample index ``k``."""
        for name in self.names:
            if k < len(self.tasks[name].hyps):
                return name, k
            k -= len(self.tasks[name].hyps)
        raise IndexError(k)

    def _bound(self, tokens: list[list[str]]) -> list[list[str]]:
        """Every caption cut to ``max_tokens`` tokens, the cut ones noted in :attr:`cut`."""
        limit = self.max_tokens
        assert limit is not None
        out = []
        for d, doc in enumerate(tokens):
            kind, idx = ("responses", "references")[d % 2], self.jobs[d // 2][2]
            cut = []
            for j, text in enumerate(doc):
                words = text.split(" ")
                if len(words) > limit:
                    name, i = self._where(idx[j])
                    self.cut[name][kind].add(i)
                    text = " ".join(words[:limit])
                cut.append(text)
            out.append(cut)
        return out

    def _meteor_failure(
        self, pairs: list[tuple[str, str]], err: coco_java.MeteorDied
    ) -> coco_java.JavaToolError:
        """The error saying which caption METEOR died on and what to do, when it died on a long one (its
        aligner runs out of memory there); else ``err`` itself (Java not working)."""
        if err.answered >= len(pairs):
            return err
        hyp, ref = pairs[err.answered]
        if max(len(hyp.split()), len(ref.split())) <= coco_java.MAX_TOKENS:
            return err
        where = "a caption"
        for (_, _, idx), (th, tr) in zip(self.jobs, self._box["tokens"]):
            both = list(zip(th, tr))
            if (hyp, ref) in both:
                task, i = self._where(idx[both.index((hyp, ref))])
                labels = self.tasks[task].labels
                where = labels[i] if labels is not None else f"{task} sample {i}"
                break
        return coco_java.JavaToolError(
            f"METEOR's process died on {where}: a response of {len(hyp.split())} tokens against a reference of "
            f"{len(ref.split())} (its aligner runs out of memory on such captions; pycocoevalcap's METEOR fails on "
            f"it too). Pass --max-caption-tokens {coco_java.MAX_TOKENS} to score captions cut to that many tokens "
            "(not the standard reading; the report counts the captions cut), or fix the response"
        )

    def close(self) -> None:
        """Stop the METEOR JVM without collecting results (``finish`` does it otherwise)."""
        if self._meteor is not None:
            self._meteor.close()

    def finish(self) -> dict[str, CaptionResult]:
        results: dict[str, CaptionResult] = {n: CaptionResult() for n in self.tasks}
        if not self.names:
            return results
        assert self._worker is not None and self._meteor is not None, "call start() first"
        try:
            self._tokens_ready.wait()
            if "error" in self._box:
                raise self._box["error"]
            tokens = self._box["tokens"]
            self._ngram_metrics(tokens, results)
            log.debug("BLEU/ROUGE-L/CIDEr done after %.1f s", time.perf_counter() - self._t0)
            self._worker.join()
            if "error" in self._box:
                raise self._box["error"]
        finally:
            self._meteor.close()
        meteor = self._box["meteor"]
        meteor_stats = self._box["meteor_stats"]
        for (name, group, _), score, stats in zip(self.jobs, meteor, meteor_stats):
            results[name].scores[group]["METEOR"] = float(score)
            results[name].per_sample[group]["METEOR_stats"] = stats
        self._spice(tokens, results)
        for res in results.values():
            res.spice_reason = self.spice_reason
        return results

    def _ngram_metrics(
        self, tokens: list[tuple[list[str], list[str]]], results: dict[str, CaptionResult]
    ) -> None:
        """BLEU, ROUGE-L, CIDEr per group; n-gram counts and per-pair statistics are computed once
        per distinct token string / pair and shared between groups."""
        cooked: dict[str, ngram.Cooked] = {}
        pair_cache: dict[tuple[str, str], tuple[dict, float]] = {}

        def cook(text: str) -> ngram.Cooked:
            c = cooked.get(text)
            if c is None:
                c = cooked[text] = ngram.Cooked(text)
            return c

        bar = _progress(len(self.jobs), self.progress)
        for (name, group, _), (th, tr) in zip(self.jobs, tokens):
            ch, cr = [cook(h) for h in th], [cook(r) for r in tr]
            bleu_stats, rouge = [], []
            for h, r, c_h, c_r in zip(th, tr, ch, cr):
                cached = pair_cache.get((h, r))
                if cached is None:
                    cached = pair_cache[(h, r)] = (ngram.bleu_stats(c_h, c_r), ngram.rouge_l(h, r))
                bleu_stats.append(cached[0])
                rouge.append(cached[1])
            scores: dict[str, float | None] = dict.fromkeys(CAPTION_METRICS)
            for k, v in enumerate(ngram.bleu(bleu_stats), start=1):
                scores[f"Bleu_{k}"] = v
            rouge_each = np.array(rouge)
            scores["ROUGE_L"] = float(np.mean(rouge_each))
            scores["CIDEr"], cider_each = ngram.cider(ch, cr)
            results[name].scores[group] = scores
            results[name].per_sample[group] = {
                "ROUGE_L": rouge_each,
                "CIDEr": cider_each,
                "BLEU_stats": ngram.bleu_stats_matrix(bleu_stats),
            }
            bar.update(1)
        bar.close()

    def _spice(self, tokens: list[tuple[list[str], list[str]]], results: dict[str, CaptionResult]) -> None:
        if self.spice_reason is not None:
            return
        pairs: dict[tuple[str, str], int] = {}
        for th, tr in tokens:
            for pair in zip(th, tr):
                pairs.setdefault(pair, len(pairs))
        try:
            each = np.asarray(coco_java.spice_scores([h for h, _ in pairs], [[r] for _, r in pairs]))
        except Exception as err:
            if self.spice is True:
                raise
            self.spice_reason = f"SPICE failed to run: {type(err).__name__}: {err}"
            return
        for (name, group, _), (th, tr) in zip(self.jobs, tokens):
            values = each[[pairs[p] for p in zip(th, tr)]]
            value = float(np.mean(values))
            results[name].scores[group]["SPICE"] = value if np.isfinite(value) else None
            results[name].per_sample[group]["SPICE"] = values


def mbmr(scores: Mapping[str, float | None]) -> float | None:
    """mBMR = mean(BLEU-1..4, METEOR, ROUGE-L); ``None`` if any of them is missing."""
    vals = [scores.get(m) for m in MBMR_METRICS]
    if any(v is None for v in vals):
        return None
    return float(sum(vals) / len(vals))  # type: ignore[arg-type]


class _NoBar:
    def update(self, n: int = 1) -> None: ...

    def close(self) -> None: ...


def _progress(total: int, enabled: bool):
    if not enabled:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, desc="caption groups", unit="group", leave=False)
