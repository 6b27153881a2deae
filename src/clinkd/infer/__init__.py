"""Inference: batched generation, prediction files in the published format, SASG, one-off questions.

- :func:`predict_file` / :func:`predict_dataset` — answer test files, write resumable JSONL predictions
  (``{"id", "image", "question", "annotation", "response"}``) that :mod:`clinkd.eval` reads.
- :func:`generate_candidates`, :func:`select_answers` — Semantic-Aware Selective Generation (method.md §4).
- :func:`ask_image` — one question about one image, with the answer's boxes drawn.
- :func:`generate_answers`, :class:`Embedder`, :func:`select_medoid`, :func:`judge` — shared with training.
"""

import importlib
from typing import TYPE_CHECKING

# Names are imported on first use (PEP 562), so that ``clinkd.infer.defaults`` — read by the command line's
# help texts — does not pull torch and transformers in with the package (``clinkd infer --help`` stays fast).
_SOURCES: dict[str, str] = {
    **dict.fromkeys(("Answer", "ask_image", "default_output", "labelled_boxes"), "ask"),
    **dict.fromkeys(("clean_generated", "generate_answers", "generate_batch"), "generate"),
    **dict.fromkeys(
        (
            "BOX_STYLES",
            "MAX_NEW_TOKENS",
            "PredictSummary",
            "predict_dataset",
            "predict_file",
            "read_done_ids",
            "repair_tail",
            "resolve_image",
        ),
        "predict",
    ),
    **dict.fromkeys(("GreedyRows", "Selection", "generate_candidates", "select_answers"), "sasg"),
    **dict.fromkeys(
        ("Embedder", "agreement_matrix", "answer_text", "box_agreement", "judge", "select_medoid"),
        "similarity",
    ),
}

if TYPE_CHECKING:
    from clinkd.infer.ask import Answer, ask_image, default_output, labelled_boxes
    from clinkd.infer.generate import clean_generated, generate_answers, generate_batch
    from clinkd.infer.predict import (
        BOX_STYLES,
        MAX_NEW_TOKENS,
        PredictSummary,
        predict_dataset,
        predict_file,
        read_done_ids,
        repair_tail,
        resolve_image,
    )
    from clinkd.infer.sasg import GreedyRows, Selection, generate_candidates, select_answers
    from clinkd.infer.similarity import (
        Embedder,
        agreement_matrix,
        answer_text,
        box_agreement,
        judge,
        select_medoid,
    )


def __getattr__(name: str):
    if name in _SOURCES:
        value = getattr(importlib.import_module(f"clinkd.infer.{_SOURCES[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_SOURCES])


__all__ = [
    "BOX_STYLES",
    "MAX_NEW_TOKENS",
    "Answer",
    "Embedder",
    "GreedyRows",
    "PredictSummary",
    "Selection",
    "agreement_matrix",
    "answer_text",
    "ask_image",
    "box_agreement",
    "clean_generated",
    "default_output",
    "generate_answers",
    "generate_batch",
    "generate_candidates",
    "judge",
    "labelled_boxes",
    "predict_dataset",
    "predict_file",
    "read_done_ids",
    "repair_tail",
    "resolve_image",
    "select_answers",
    "select_medoid",
]
