"""The records of a prediction file and the decoding record beside it (protocol.md §1; the file's
resume rules: :mod:`clinkd.infer.resume`).

A record: ``{"id", "image", "question", "annotation", "response"}`` (the published fields), plus
``raw_response`` (the model's own text when it differs), ``images`` (a study of several views) and a
converted benchmark's ``answer_type``/``benchmark``. Lines are written whole and ``fsync``-ed a batch at a
time, so a crash leaves at most one torn last line.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from clinkd.data.boxes import convert_markup
from clinkd.data.sample import Sample

__all__ = ["append_records", "decoding_record", "jsonl_line", "prediction_record"]


def decoding_record(
    model: Any,
    processor: Any,
    *,
    select: str,
    n: int,
    tokens: int,
    temperature: float,
    top_p: float,
    length_factor: float | None,
    box_weight: float,
    seed: int,
    batch_size: int,
    box_style: str,
    boxes: Any,
) -> dict[str, Any]:
    """What decided the answers: the complete ``generate`` settings (greedy, and the SASG samples), the
    selection, seed, batch grid and the image budget."""
    from clinkd.infer.generate import decoding_settings
    from clinkd.model.processor import pixel_budget

    lo, hi = pixel_budget(processor)
    rec: dict[str, Any] = {
        "model": str(getattr(model, "name_or_path", "") or ""),
        "select": select,
        "greedy": decoding_settings(max_new_tokens=tokens),
        "seed": seed,
        "batch_size": batch_size,
        "box_style": box_style,
        "min_pixels": lo,
        "max_pixels": hi,
        "box_convention": boxes.convention.key,
        "questions_converted": boxes.convert_questions,
        "model_generation_config": "not used: every generate call runs with the settings above",
    }
    if n:
        rec["sampled"] = decoding_settings(
            max_new_tokens=tokens,
            do_sample=True,
            temperature=temperature,
            top_p=top_p,
            top_k=0,
            num_return_sequences=n,
        )
        rec.update(candidates=n, length_factor=length_factor, box_weight=box_weight)
    return rec


def prediction_record(i: int, sample: Sample, answer: str, box_style: str) -> dict[str, Any]:
    """One prediction record: ``response`` in Med-GRIT form (the answer as read back from the model's box
    convention, in ``box_style`` markup), ``raw_response`` the model's own text when that differs."""
    raw = getattr(answer, "raw", answer)
    response = raw if box_style == "raw" else convert_markup(str(answer), box_style)  # type: ignore[arg-type]
    turn = sample.turns[0]
    rec: dict[str, Any] = {
        "id": i,
        "image": Path(sample.image).name,
        "question": turn.question,
        "annotation": turn.answer,
        "response": response,
    }
    if raw != response:
        rec["raw_response"] = raw
    if len(sample.images) > 1:  # a study answered from all its views (issue 16)
        rec["images"] = [Path(name).name for name in sample.images]
    rec.update(sample.meta)  # answer_type, benchmark: what eval splits converted benchmarks by
    return rec


def jsonl_line(record: dict) -> str:
    """One JSONL line; ASCII escapes when the text cannot be UTF-8 (a lone surrogate in a test file)."""
    text = json.dumps(record, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(record)
    return text + "\n"


def append_records(f, records: list[dict]) -> None:
    """Write whole lines, then flush and fsync: after a crash the file ends at a batch boundary or
    with one torn line, which the next run cuts (:func:`clinkd.infer.resume.inspect_prediction_file`)."""
    f.write("".join(jsonl_line(r) for r in records))
    f.flush()
    os.fsync(f.fileno())
