"""The release's inference settings, in one place (issue 15).

Every surface that answers questions reads its defaults here: ``clinkd infer`` / ``ask`` / ``serve``
(:mod:`clinkd.cli`), :func:`clinkd.infer.predict.predict_file`, :func:`clinkd.infer.ask.ask_image`,
:func:`clinkd.infer.sasg.generate_candidates`, :func:`clinkd.infer.generate.generate_answers` and the web
app's :class:`clinkd.serve.answer.Answerer`; help texts are formatted from these values, never typed again.
Before, the candidates were 5 in ``infer``/``ask`` but 4 in ``serve``, and the token limit 80/100, 100, 128
or 80 depending on the surface (method.md §6).

Sources (docs/method.md §4 and §6): the ClinKD release decodes greedily up to 80 new tokens, 100 for
image analysis (MII). SASG is clinkd's reading of the paper's one line (§4): greedy + 5 samples at
temperature 0.7, top-p 0.9, box weight 0.5, samples capped at 2× greedy's length + 8 tokens.

Benchmarks beyond Med-GRIT (issue 16) get their own token limits (:data:`BENCHMARK_MAX_NEW_TOKENS`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from clinkd.benchmarks import NAMES

__all__ = [
    "BENCHMARKS",
    "BENCHMARK_MAX_NEW_TOKENS",
    "DEFAULTS",
    "TASK_MAX_NEW_TOKENS",
    "InferenceDefaults",
    "max_new_tokens_for",
]

#: Release: 80 new tokens for every Med-GRIT task, 100 for image analysis (MII), the longest answers.
TASK_MAX_NEW_TOKENS: Mapping[str, int] = MappingProxyType({"VG": 80, "RO": 80, "GC": 80, "MII": 100})

#: Converted benchmarks (``clinkd infer --benchmark NAME``) and their answer-length limits.
#: VQA sets answer in a word or a short phrase (closed: yes/no; open: an organ, a finding, "left lung"),
#: a few tokens: 32 leaves room for a sentence-form answer ("The abnormality is in the left lobe.") and
#: stops a rambling one early, which matters since SASG decodes ``candidates + 1`` rows. Report sets
#: write a findings section: IU X-Ray's average ~30-40 words, MIMIC-CXR's ~50-60 with a long tail past
#: 150 words (R2Gen trims training reports at 60 and 100 tokens); 256 tokens hold nearly every report
#: whole, so the metrics see the model's report, not a cut one.
BENCHMARK_MAX_NEW_TOKENS: Mapping[str, int] = MappingProxyType(
    {"vqa-rad": 32, "slake": 32, "pathvqa": 32, "iu-xray": 256, "mimic-cxr": 256}
)
BENCHMARKS: tuple[str, ...] = NAMES
if set(BENCHMARK_MAX_NEW_TOKENS) != set(NAMES):  # pragma: no cover - a benchmark added without its limit
    raise ImportError(
        "clinkd.infer.defaults: BENCHMARK_MAX_NEW_TOKENS must name every clinkd.benchmarks.NAMES"
    )


@dataclass(frozen=True)
class InferenceDefaults:
    """The release's inference settings (one frozen instance, :data:`DEFAULTS`)."""

    #: answer selection: ``greedy`` (the release) or ``sasg``
    select: str = "greedy"
    #: SASG: sampled candidates besides the greedy answer
    candidates: int = 5
    #: SASG sampling temperature
    temperature: float = 0.7
    #: SASG nucleus sampling top-p
    top_p: float = 0.9
    #: SASG: weight of box IoU against text similarity in the agreement of two candidates
    box_weight: float = 0.5
    #: SASG: samples longer than this × the greedy answer + :attr:`length_slack` tokens are cut and dropped
    length_factor: float = 2.0
    #: SASG: tokens allowed past ``length_factor`` × the greedy length
    length_slack: int = 8
    #: questions per ``generate`` call in ``clinkd infer`` (SASG decodes ``batch_size·(candidates+1)`` rows)
    batch_size: int = 8
    #: sampling seed (batch ``k`` of ``clinkd infer`` samples under ``seed + k``)
    seed: int = 0
    #: new-token limits per Med-GRIT task (the release's)
    task_max_new_tokens: Mapping[str, int] = field(default_factory=lambda: TASK_MAX_NEW_TOKENS)
    #: new-token limits per converted benchmark
    benchmark_max_new_tokens: Mapping[str, int] = field(default_factory=lambda: BENCHMARK_MAX_NEW_TOKENS)

    @property
    def max_new_tokens(self) -> int:
        """The limit when the task is not known (a free question in ``ask`` or ``serve``): the longest of the
        release's task limits (MII's 100), so no Med-GRIT answer is cut shorter than the release cuts it."""
        return max(self.task_max_new_tokens.values())

    @property
    def max_new_tokens_default_task(self) -> int:
        """The limit of a test file whose task is not known (the release's common 80)."""
        return self.task_max_new_tokens["VG"]


DEFAULTS = InferenceDefaults()


def max_new_tokens_for(task: str | None = None, benchmark: str | None = None) -> int:
    """The default answer-length limit of a test file: its benchmark's (:data:`BENCHMARK_MAX_NEW_TOKENS`),
    else its Med-GRIT task's (:data:`TASK_MAX_NEW_TOKENS`), else the release's 80.

    >>> max_new_tokens_for("MII"), max_new_tokens_for(None), max_new_tokens_for(benchmark="iu-xray")
    (100, 80, 256)
    """
    if benchmark is not None:
        if benchmark not in DEFAULTS.benchmark_max_new_tokens:
            raise ValueError(f"unknown benchmark {benchmark!r}; choose one of {', '.join(BENCHMARKS)}")
        return DEFAULTS.benchmark_max_new_tokens[benchmark]
    return DEFAULTS.task_max_new_tokens.get(task or "", DEFAULTS.max_new_tokens_default_task)
