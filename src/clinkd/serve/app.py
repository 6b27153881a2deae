"""The Gradio Blocks layout of ``clinkd serve`` and its launch; the logic lives in :mod:`clinkd.serve.answer`.

Offline by construction: analytics off (no call to api.gradio.app), no share link (no tunnel binary
download), no server-side rendering (no Node process), and the page uses only the assets bundled in
the gradio wheel (its theme fonts are ``LocalFont``), so it renders on a machine without internet.

Hostile input (issue 13):

- an upload is decoded once, by :func:`~clinkd.serve.answer.read_upload` when it arrives (through
  :func:`~clinkd.data.images.load_image` and its decoded-size budget); the image is kept in the session
  (``gr.State``, for :data:`KEEP_IMAGE_S` at most) and the file is deleted at once, refused or not;
- every request goes through a bounded queue (:func:`launch`'s ``queue_size``; when it is full the page
  says "This application is currently busy. Please try again."), one answer at a time;
- too long a question, or one holding a chat special token, is refused before the model is called;
- a failure that is not the user's (a bug) is logged with its traceback and shown as a short notice, never
  as a traceback or a server path;
- what Gradio writes (uploads, the images it sends back) lives in the folder of
  :func:`clinkd.serve.uploads.private_temp_dir`, removed at shutdown, and files older than
  :data:`CACHE_MAX_AGE_S` are deleted while the server runs;
- a login (``auth``) can be required; ``clinkd serve`` refuses a non-loopback host without one.
"""

from __future__ import annotations

import os

# Read by gradio when it is imported and when Blocks are built: never phone home (version check,
# usage analytics).
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

import logging
from pathlib import Path

import gradio as gr
from gradio.utils import get_upload_folder

from clinkd.serve.answer import ACCEPTED_SUFFIXES, FREE, TASKS, ServeError, ask, read_upload
from clinkd.serve.limits import MAX_QUESTION_CHARS, QUEUE_SIZE
from clinkd.serve.uploads import discard_upload

__all__ = [
    "BUG_MESSAGE",
    "CACHE_MAX_AGE_S",
    "KEEP_IMAGE_S",
    "build_app",
    "launch",
    "on_ask",
    "on_task",
    "on_upload",
]

log = logging.getLogger(__name__)

BOX_HEADERS = ["label", "box (0-1000)", "box (pixels)"]
KEEP_IMAGE_S = 3600  # a session's decoded upload is forgotten after an hour (then: upload it again)
CACHE_MAX_AGE_S = 3600  # files Gradio wrote (uploads, images sent back) are deleted after an hour ...
CACHE_SWEEP_S = 600  # ... checked every ten minutes
BUG_MESSAGE = "clinkd failed on this request: a bug, logged on the server with its details; please report it"


def on_task(task: str):
    """Show the fields the chosen task needs: (question, object name, region) visibility updates."""
    spec = TASKS.get(task, TASKS[FREE])
    return (
        gr.update(visible=spec.template is None),
        gr.update(visible=spec.needs_object),
        gr.update(visible=spec.needs_region),
    )


def _bug(what: str) -> gr.Error:
    """Log the exception being handled, traceback included, and the notice the page shows instead."""
    log.exception("bug while %s", what)
    return gr.Error(BUG_MESSAGE, print_exception=False)


def on_upload(path: str | None, max_bytes: int, upload_root: str | Path | None = None):
    """Read a new upload once, then delete its file; (file, preview, status, kept image).

    A refused upload empties the upload field and says why. The file is deleted whatever happened when it
    lies in ``upload_root`` (default: Gradio's upload folder); a file elsewhere is never touched.
    """
    if not path:
        return gr.update(), None, "", None
    try:
        image = read_upload(path, max_bytes)
    except ServeError as err:
        gr.Warning(str(err))
        return None, None, f"Refused: {err}", None
    except Exception:
        raise _bug(f"reading the upload {Path(path).name!r}") from None
    finally:
        discard_upload(path, get_upload_folder() if upload_root is None else upload_root)
    status = f"Loaded {Path(path).name} ({image.width}x{image.height} pixels). Ask a question."
    return gr.update(), image, status, image


def on_ask(
    answerer, image, task, question, object_name, region, *, max_question_chars: int = MAX_QUESTION_CHARS
):
    """The Ask button about the session's ``image`` (from :func:`on_upload`; None: nothing uploaded):
    (image, answer, raw answer, boxes, question sent, status). A refusal keeps the image and what was
    typed, empties the answer fields and says why in the status (and in a warning toast)."""
    try:
        r = ask(answerer, image, task, question, object_name, region, max_question_chars=max_question_chars)
    except ServeError as err:
        gr.Warning(str(err))
        return gr.update(), "", "", [], "", f"Refused: {err}"
    except Exception:
        raise _bug("answering") from None
    log.info("answered in %.2f s: %r -> %r", r.seconds, r.question, r.answer)
    n = len(r.rows)
    status = f"Answered in {r.seconds:.1f} s ({answerer.select}); {n} box{'es' * (n != 1)} drawn."
    return r.image, r.text, r.answer, r.rows, r.question, status


def build_app(
    answerer,
    *,
    model_path: str | Path = "",
    max_upload_mb: float = 20.0,
    max_question_chars: int = MAX_QUESTION_CHARS,
) -> gr.Blocks:
    """The Blocks app around ``answerer`` (a :class:`clinkd.serve.answer.Answerer`); not launched.

    Build it inside :func:`clinkd.serve.uploads.private_temp_dir` (the components read Gradio's folder now).
    """
    max_bytes = int(max_upload_mb * 2**20)
    with gr.Blocks(
        title="ClinKD", analytics_enabled=False, delete_cache=(CACHE_SWEEP_S, CACHE_MAX_AGE_S)
    ) as app:
        gr.Markdown(
            "## ClinKD: grounded medical VQA\n"
            f"Model `{model_path}` · RoPE scheme **{answerer.rope_scheme}** · answer selection "
            f"**{answerer.select}** · uploads up to {max_upload_mb:g} MB",
            elem_id="clinkd-header",
        )
        with gr.Row():
            with gr.Column(scale=1):
                upload = gr.File(
                    label=f"Image ({' '.join(ACCEPTED_SUFFIXES)})",
                    file_types=list(ACCEPTED_SUFFIXES),
                    type="filepath",
                    elem_id="clinkd-file",
                    height=120,
                )
                task = gr.Dropdown(list(TASKS), value=FREE, label="Task", elem_id="clinkd-task")
                question = gr.Textbox(
                    label="Question",
                    placeholder="e.g. Where is the liver?",
                    lines=2,
                    elem_id="clinkd-question",
                )
                object_name = gr.Textbox(
                    label="Object to locate", placeholder="e.g. liver", visible=False, elem_id="clinkd-object"
                )
                region = gr.Textbox(
                    label="Region (x1,y1),(x2,y2) on the 0-1000 scale",
                    placeholder="(120,340),(260,512)",
                    visible=False,
                    elem_id="clinkd-region",
                )
                button = gr.Button("Ask", variant="primary", elem_id="clinkd-ask")
                status = gr.Textbox(label="Status", interactive=False, elem_id="clinkd-status")
            with gr.Column(scale=1):
                image = gr.Image(
                    label="Image with boxes",
                    type="pil",
                    interactive=False,
                    elem_id="clinkd-image",
                    height=360,
                )
                answer = gr.Textbox(label="Answer", interactive=False, lines=3, elem_id="clinkd-answer")
                boxes = gr.Dataframe(
                    headers=BOX_HEADERS, label="Boxes", interactive=False, elem_id="clinkd-boxes"
                )
                with gr.Accordion("Details", open=False):
                    sent = gr.Textbox(
                        label="Question sent to the model", interactive=False, elem_id="clinkd-sent"
                    )
                    raw = gr.Textbox(label="Raw answer (markup)", interactive=False, elem_id="clinkd-raw")
        kept = gr.State(None, time_to_live=KEEP_IMAGE_S)  # this session's decoded upload

        task.change(on_task, task, [question, object_name, region], queue=False)
        # .upload (not .change): emptying a refused file must not fire it again and wipe the message
        upload.upload(lambda p: on_upload(p, max_bytes), upload, [upload, image, status, kept])
        upload.clear(lambda: (None, "", None), None, [image, status, kept], queue=False)
        inputs = [kept, task, question, object_name, region]
        outputs = [image, answer, raw, boxes, sent, status]

        def _ask(*args):
            return on_ask(answerer, *args, max_question_chars=max_question_chars)

        button.click(_ask, inputs, outputs)
    return app


def launch(
    app: gr.Blocks,
    *,
    host: str = "127.0.0.1",
    port: int = 7860,
    max_upload_mb: float = 20.0,
    queue_size: int = QUEUE_SIZE,
    auth: tuple[str, str] | None = None,
    block: bool = True,
    quiet: bool = False,
):
    """Serve ``app`` on ``host:port`` (loopback unless told otherwise), offline; returns gradio's
    ``(fastapi app, local url, share url)`` at once when ``block`` is False.

    At most ``queue_size`` requests wait (one more gets HTTP 503, which the page shows as "This application
    is currently busy. Please try again."); each event runs one at a time. ``auth``: ``(user, password)``
    of the login page, or None for none.
    """
    app.queue(max_size=queue_size, default_concurrency_limit=1)
    return app.launch(
        server_name=host,
        server_port=port,
        share=False,
        inbrowser=False,
        ssr_mode=False,
        mcp_server=False,
        max_file_size=int(max_upload_mb * 2**20),
        prevent_thread_lock=not block,
        quiet=quiet,
        show_error=True,
        auth=auth,
    )
