"""The Gradio Blocks layout of ``clinkd serve`` and its launch; the logic lives in :mod:`clinkd.serve.answer`.

Offline by construction: analytics off (no call to api.gradio.app), no share link (no tunnel binary
download), no server-side rendering (no Node process), and the page uses only the assets bundled in
the gradio wheel (its theme fonts are ``LocalFont``), so it renders on a machine without internet.
"""

from __future__ import annotations

import os

# Read by gradio when it is imported and when Blocks are built: never phone home (version check,
# usage analytics).
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

import logging  # noqa: E402
from pathlib import Path  # noqa: E402

import gradio as gr  # noqa: E402

from clinkd.serve.answer import ACCEPTED_SUFFIXES, FREE, TASKS, ServeError, ask, read_upload  # noqa: E402

__all__ = ["build_app", "launch", "on_ask", "on_task", "on_upload"]

log = logging.getLogger(__name__)

BOX_HEADERS = ["label", "box (0-1000)", "box (pixels)"]


def on_task(task: str):
    """Show the fields the chosen task needs: (question, object name, region) visibility updates."""
    spec = TASKS.get(task, TASKS[FREE])
    return (gr.update(visible=spec.template is None), gr.update(visible=spec.needs_object),
            gr.update(visible=spec.needs_region))


def on_upload(path: str | None, max_bytes: int):
    """Preview a new upload, or refuse it at once and empty the upload field: (file, image, status)."""
    if not path:
        return gr.update(), None, ""
    try:
        image = read_upload(path, max_bytes)
    except ServeError as err:
        gr.Warning(str(err))
        return None, None, f"Refused: {err}"
    return gr.update(), image, f"Loaded {Path(path).name} ({image.width}x{image.height} pixels). Ask a question."


def on_ask(answerer, path, task, question, object_name, region, max_bytes: int):
    """The Ask button: (image, answer, raw answer, boxes, question sent, status). A refusal keeps the image,
    empties the answer fields and says why in the status (and in a warning toast)."""
    try:
        r = ask(answerer, path, task, question, object_name, region, max_bytes=max_bytes)
    except ServeError as err:
        gr.Warning(str(err))
        return gr.update(), "", "", [], "", f"Refused: {err}"
    log.info("answered in %.2f s: %r -> %r", r.seconds, r.question, r.answer)
    n = len(r.rows)
    status = f"Answered in {r.seconds:.1f} s ({answerer.select}); {n} box{'es' * (n != 1)} drawn."
    return r.image, r.text, r.answer, r.rows, r.question, status


def build_app(answerer, *, model_path: str | Path = "", max_upload_mb: float = 20.0) -> gr.Blocks:
    """The Blocks app around ``answerer`` (a :class:`clinkd.serve.answer.Answerer`); not launched."""
    max_bytes = int(max_upload_mb * 2**20)
    with gr.Blocks(title="ClinKD", analytics_enabled=False) as app:
        gr.Markdown(
            "## ClinKD: grounded medical VQA\n"
            f"Model `{model_path}` · RoPE scheme **{answerer.rope_scheme}** · answer selection "
            f"**{answerer.select}** · uploads up to {max_upload_mb:g} MB",
            elem_id="clinkd-header",
        )
        with gr.Row():
            with gr.Column(scale=1):
                upload = gr.File(label=f"Image ({' '.join(ACCEPTED_SUFFIXES)})", file_types=list(ACCEPTED_SUFFIXES),
                                 type="filepath", elem_id="clinkd-file", height=120)
                task = gr.Dropdown(list(TASKS), value=FREE, label="Task", elem_id="clinkd-task")
                question = gr.Textbox(label="Question", placeholder="e.g. Where is the liver?", lines=2,
                                      elem_id="clinkd-question")
                object_name = gr.Textbox(label="Object to locate", placeholder="e.g. liver", visible=False,
                                         elem_id="clinkd-object")
                region = gr.Textbox(label="Region (x1,y1),(x2,y2) on the 0-1000 scale",
                                    placeholder="(120,340),(260,512)", visible=False, elem_id="clinkd-region")
                button = gr.Button("Ask", variant="primary", elem_id="clinkd-ask")
                status = gr.Textbox(label="Status", interactive=False, elem_id="clinkd-status")
            with gr.Column(scale=1):
                image = gr.Image(label="Image with boxes", type="pil", interactive=False, elem_id="clinkd-image",
                                 height=360)
                answer = gr.Textbox(label="Answer", interactive=False, lines=3, elem_id="clinkd-answer")
                boxes = gr.Dataframe(headers=BOX_HEADERS, label="Boxes", interactive=False, elem_id="clinkd-boxes")
                with gr.Accordion("Details", open=False):
                    sent = gr.Textbox(label="Question sent to the model", interactive=False, elem_id="clinkd-sent")
                    raw = gr.Textbox(label="Raw answer (markup)", interactive=False, elem_id="clinkd-raw")

        task.change(on_task, task, [question, object_name, region], queue=False)
        # .upload (not .change): emptying a refused file must not fire it again and wipe the message
        upload.upload(lambda p: on_upload(p, max_bytes), upload, [upload, image, status])
        upload.clear(lambda: (None, ""), None, [image, status], queue=False)
        inputs = [upload, task, question, object_name, region]
        outputs = [image, answer, raw, boxes, sent, status]

        def _ask(*args):
            return on_ask(answerer, *args, max_bytes=max_bytes)

        button.click(_ask, inputs, outputs)
    return app


def launch(app: gr.Blocks, *, host: str = "127.0.0.1", port: int = 7860, max_upload_mb: float = 20.0,
           block: bool = True, quiet: bool = False):
    """Serve ``app`` on ``host:port`` (loopback unless told otherwise), offline; returns gradio's
    ``(fastapi app, local url, share url)`` at once when ``block`` is False."""
    return app.launch(
        server_name=host, server_port=port, share=False, inbrowser=False, ssr_mode=False, mcp_server=False,
        max_file_size=int(max_upload_mb * 2**20), prevent_thread_lock=not block, quiet=quiet, show_error=True,
    )
