"""``clinkd serve``: a local Gradio web app to ask a ClinKD model about one image and see its boxes.

- :mod:`clinkd.serve.answer` — the request logic as plain functions (upload checks, task presets,
  answering with greedy or SASG selection, boxes drawn); no Gradio import.
- :mod:`clinkd.serve.app` — the Blocks layout and :func:`~clinkd.serve.app.launch` (imports gradio).
"""

from clinkd.serve.answer import ACCEPTED_SUFFIXES, TASKS, Answerer, Result, ServeError, ask

__all__ = ["ACCEPTED_SUFFIXES", "TASKS", "Answerer", "Result", "ServeError", "ask"]
