"""Helpers for the evaluation tests: build prediction records in a line."""

from __future__ import annotations

import json
from pathlib import Path

from clinkd.eval import Prediction


def make(image: str, annotation: str, response: str, pid: int = 0) -> Prediction:
    return Prediction(id=pid, image=image, question="<img>q</img>", annotation=annotation, response=response)


def box(x1: float, y1: float, x2: float, y2: float) -> str:
    return f"<box>({x1},{y1}),({x2},{y2})</box>"


def write_jsonl(path: Path, records: list[dict]) -> Path:
    # ASCII JSON: lone surrogates in test strings survive as \udXXX escapes
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path
