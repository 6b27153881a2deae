"""Fixtures of the evaluation tests (helpers live in eval_helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def records():
    """A factory of plain-dict prediction records."""

    def _make(image: str, annotation: str, response: str, pid: int = 0) -> dict:
        return {
            "id": pid,
            "image": image,
            "question": "<img>q</img>",
            "annotation": annotation,
            "response": response,
        }

    return _make


def pytest_collection_modifyitems(config, items):
    """Skip this folder's ``slow`` tests unless the marker expression asks for them (``-m slow``),
    as pyproject.toml's marker description promises."""
    if "slow" in (config.getoption("markexpr") or ""):
        return
    here = Path(__file__).parent
    skip = pytest.mark.skip(reason="slow: run with -m slow")
    for item in items:
        if "slow" in item.keywords and here in Path(str(item.fspath)).parents:
            item.add_marker(skip)
