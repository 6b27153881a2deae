"""``clinkd serve``: a local Gradio web app to ask a ClinKD model about one image and see its boxes.

- :mod:`clinkd.serve.answer` — the request logic as plain functions (upload checks, task presets,
  answering with greedy or SASG selection, boxes drawn); no Gradio import.
- :mod:`clinkd.serve.app` — the Blocks layout and :func:`~clinkd.serve.app.launch` (imports gradio).
- :mod:`clinkd.serve.limits` — request limits and queue size (light: the CLI parser reads them).
- :mod:`clinkd.serve.uploads` — the private temporary folder and deleting uploads.
"""

__all__ = ["ACCEPTED_SUFFIXES", "TASKS", "Answerer", "Result", "ServeError", "ask"]


def __getattr__(name: str):
    # answer imports torch (seconds): only when one of its names is asked for, not for `clinkd.serve.limits`
    if name in __all__:
        from clinkd.serve import answer

        return getattr(answer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
