"""What one request to the web app may hold, and how much may wait (issue 13); defaults of ``clinkd serve``.

No heavy imports: the CLI's parser reads these without loading torch or gradio.
"""

from __future__ import annotations

__all__ = ["MAX_QUESTION_CHARS", "QUEUE_SIZE"]

MAX_QUESTION_CHARS = 2000  # longest typed field (question, object name, region); Med-GRIT's are under 200
QUEUE_SIZE = 16  # requests waiting at most; one more is told the app is busy
