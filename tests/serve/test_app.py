"""The Gradio callbacks and layout without a browser, and ``clinkd serve`` up to the launch."""

from __future__ import annotations

import pytest

from clinkd.serve.answer import FREE, TASKS

MB = 2**20


def test_on_task_shows_the_fields_a_task_needs():
    from clinkd.serve.app import on_task

    def visible(task):
        return tuple(u["visible"] for u in on_task(task))  # (question, object name, region)

    assert visible(FREE) == (True, False, False)
    assert visible("VG: locate an object") == (False, True, False)
    assert visible("RO: identify the object in a region") == (False, False, True)
    assert visible("GC: describe a region") == (False, False, True)
    assert visible("MII: analyse the image") == (False, False, False)


def test_on_upload_previews_or_refuses(png, tmp_path):
    from clinkd.serve.app import on_upload

    _, image, status, kept = on_upload(str(png), MB)
    assert (
        image.size == (300, 200) and status.startswith("Loaded scan.png (300x200 pixels)") and kept is image
    )
    assert png.is_file()  # outside gradio's upload folder: never deleted
    bad = tmp_path / "report.pdf"
    bad.write_bytes(b"%PDF-1.4")
    with pytest.warns(UserWarning, match="report.pdf: not an accepted image file"):
        cleared, image, status, kept = on_upload(str(bad), MB)
    assert cleared is None and image is None and kept is None
    assert status.startswith("Refused: report.pdf: not an accepted")
    with pytest.warns(UserWarning, match="the limit is"):
        assert on_upload(str(png), 100)[2].startswith("Refused: scan.png is 0.0 MB")


def test_on_ask_answers_and_refuses(answerer, png):
    from clinkd.serve.answer import read_upload
    from clinkd.serve.app import on_ask

    kept = read_upload(png, MB)
    image, text, _raw, rows, sent, status = on_ask(
        answerer, kept, "GC: describe a region", "", "", "(0,0),(500,500)"
    )
    assert sent == "Describe the region <box>(0,0),(500,500)</box>." and rows[0][0] == "asked region"
    assert image.size == (300, 200) and text and status.startswith("Answered in") and "1 box drawn" in status
    with pytest.warns(UserWarning, match="type a question"):
        *_, status = on_ask(answerer, kept, FREE, "  ", "", "")
    assert status == "Refused: type a question, or choose a task"
    with pytest.warns(UserWarning, match="upload an image first"):
        assert on_ask(answerer, None, "MII: analyse the image", "", "", "")[-1].startswith("Refused: upload")


def test_build_app_header_and_components(answerer, tiny_student_dir):
    from clinkd.serve.app import build_app

    app = build_app(answerer, model_path=tiny_student_dir, max_upload_mb=3)
    blocks = {getattr(b, "elem_id", None): b for b in app.blocks.values()}
    header = blocks["clinkd-header"].value
    assert str(tiny_student_dir) in header and "RoPE scheme **mcg**" in header and "3 MB" in header
    assert set(blocks["clinkd-file"].file_types) >= {".png", ".jpg", ".jpeg", ".dcm", ".nii.gz"}
    assert [c[0] for c in blocks["clinkd-task"].choices] == list(TASKS)
    assert not app.analytics_enabled


class FakeApp:
    def __init__(self):
        self.kwargs = self.queue_kwargs = None

    def queue(self, **kwargs):
        self.queue_kwargs = kwargs

    def launch(self, **kwargs):
        self.kwargs = kwargs


def test_launch_is_local_and_offline():
    from clinkd.serve.app import launch

    app = FakeApp()
    launch(app, max_upload_mb=2)
    kw = app.kwargs
    assert kw["server_name"] == "127.0.0.1" and kw["server_port"] == 7860 and kw["max_file_size"] == 2 * MB
    assert (
        kw["share"] is False and kw["ssr_mode"] is False and kw["mcp_server"] is False and kw["auth"] is None
    )


def test_cli_serve_binds_loopback_by_default(monkeypatch, tiny_student_dir):
    import clinkd.serve.app
    from clinkd.cli.main import main

    seen = {}
    monkeypatch.setattr(clinkd.serve.app, "launch", lambda app, **kw: seen.update(kw, app=app))
    assert main(["serve", "--model", str(tiny_student_dir), "--port", "7999", "--max-upload-mb", "5"]) == 0
    assert (
        seen["host"] == "127.0.0.1" and seen["port"] == 7999 and seen["max_upload_mb"] == 5 and seen["block"]
    )
    assert (
        main(
            [
                "serve",
                "--model",
                str(tiny_student_dir),
                "--host",
                "0.0.0.0",
                "--auth",
                "ana:s3:cret",
                "--select",
                "sasg",
            ]
        )
        == 0
    )
    assert seen["host"] == "0.0.0.0" and seen["auth"] == ("ana", "s3:cret")


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--model", "no/such/dir"], "not a directory"),
        (["--model", ".", "--port", "0"], "--port must be between"),
        (["--model", ".", "--max-upload-mb", "0"], "--max-upload-mb must be positive"),
    ],
)
def test_cli_serve_refuses_bad_arguments(capsys, argv, message):
    from clinkd.cli.main import main

    assert main(["serve", *argv]) == 2
    assert message in capsys.readouterr().err


def test_cli_serve_help_lists_options(capsys):
    from clinkd.cli.main import main

    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    out = capsys.readouterr().out
    for option in (
        "--model",
        "--host",
        "--port",
        "--max-upload-mb",
        "--select",
        "--auth",
        "--insecure",
        "--max-question-chars",
        "--queue-size",
    ):
        assert option in out
