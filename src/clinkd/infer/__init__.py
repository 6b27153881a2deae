"""Inference: batched generation, prediction files in the published format, SASG, one-off questions.

- :func:`predict_file` / :func:`predict_dataset` — answer test files, write resumable JSONL predictions
  (``{"id", "image", "question", "annotation", "response"}``) that :mod:`clinkd.eval` reads.
- :func:`generate_candidates`, :func:`select_answers` — Semantic-Aware Selective Generation (method.md §4).
- :func:`ask_image` — one question about one image, with the answer's boxes drawn.
- :func:`generate_answers`, :class:`Embedder`, :func:`select_medoid`, :func:`judge` — shared with training.
"""

from clinkd.infer.ask import Answer, annotations, ask_image, default_output
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

__all__ = [
    "BOX_STYLES",
    "MAX_NEW_TOKENS",
    "Answer",
    "Embedder",
    "GreedyRows",
    "PredictSummary",
    "Selection",
    "agreement_matrix",
    "annotations",
    "answer_text",
    "ask_image",
    "box_agreement",
    "clean_generated",
    "default_output",
    "generate_answers",
    "generate_batch",
    "generate_candidates",
    "judge",
    "predict_dataset",
    "predict_file",
    "read_done_ids",
    "repair_tail",
    "resolve_image",
    "select_answers",
    "select_medoid",
]
