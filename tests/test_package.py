"""The package as installed: ``python -m clinkd`` is the ``clinkd`` command, the version is written once, the
license file is the one the metadata declares."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest

import clinkd

ROOT = Path(__file__).resolve().parents[1]
CONSOLE_SCRIPT = Path(sys.executable).with_name("clinkd")  # the `clinkd` command installed beside this python


def run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=ROOT)


@pytest.mark.parametrize(
    "args", [("--version",), ("data", "synth", "--help"), ("data", "check", "/nonexistent")]
)
def test_python_m_clinkd_is_the_clinkd_command(args):
    module = run(sys.executable, "-m", "clinkd", *args)
    if args == ("--version",):
        assert module.returncode == 0 and module.stdout == f"clinkd {clinkd.__version__}\n"
    elif args[-1] == "--help":
        assert module.returncode == 0 and module.stdout.startswith("usage: clinkd data synth ")
    else:  # a command's own exit status comes through
        assert (
            module.returncode == 1 and "/nonexistent: no such file or folder" in module.stdout + module.stderr
        )
    if CONSOLE_SCRIPT.exists():
        command = run(str(CONSOLE_SCRIPT), *args)
        assert (command.returncode, command.stdout) == (module.returncode, module.stdout)


def test_the_version_is_written_once():
    assert importlib.metadata.version("clinkd") == clinkd.__version__
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in pyproject["project"] and "version" in pyproject["project"]["dynamic"]
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "clinkd.__version__"}


def test_the_license_file_is_the_declared_license():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0" and project["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert (
        text.split()[:4] == ["Apache", "License", "Version", "2.0,"] and "END OF TERMS AND CONDITIONS" in text
    )
    assert importlib.metadata.metadata("clinkd")["License-Expression"] == "Apache-2.0"
