"""Fixtures of the evaluation tests (helpers live in eval_helpers.py)."""

from __future__ import annotations

import pytest


@pytest.fixture
def records():
    """A factory of plain-dict prediction records."""

    def _make(image: str, annotation: str, response: str, pid: int = 0) -> dict:
        return {"id": pid, "image": image, "question": "<img>q</img>", "annotation": annotation,
                "response": response}

    return _make
