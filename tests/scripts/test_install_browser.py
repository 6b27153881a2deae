"""scripts/install_browser.sh on made-up machines: stand-ins for id, sudo and apt-get on a PATH of their own.

Outside CI a browser that cannot be installed is a warning (exit 0: `make test` goes on and the browser test
skips); under CI it is an error. Nothing is installed: the apt-get stand-in writes stand-in binaries.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "install_browser.sh"
BASH = shutil.which("bash")
pytestmark = pytest.mark.skipif(BASH is None or shutil.which("tr") is None, reason="needs bash and coreutils")

STUBS = {
    "id": 'echo "$STUB_UID"',
    # sudo -n fails unless passwordless; otherwise run the command (logged)
    "sudo": 'if [ "$1" = -n ] && [ -z "$STUB_NOPASS" ]; then exit 1; fi\n[ "$*" = "-n true" ] && exit 0\n'
    'echo "sudo $*" >> "$STUB_LOG"\n[ "$1" = -n ] && shift\nexec "$@"',
    # apt-get install writes stand-in binaries into the stub folder, or fails when told to
    "apt-get": 'echo "apt-get $*" >> "$STUB_LOG"\n[ -n "$STUB_APT_FAIL" ] && exit 100\n'
    'case "$*" in *install*) for b in chromium chromedriver; do\n'
    '  printf \'#!/bin/sh\\necho %s 1.0\\n\' "$b" > "$STUB_BIN/$b"; chmod +x "$STUB_BIN/$b"; done;; esac\n'
    "exit 0",
}


def run(
    tmp_path: Path,
    *,
    uid=1000,
    sudo=False,
    nopass=False,
    apt=True,
    apt_fail=False,
    present=(),
    inert=(),
    **env,
):
    """Run the script with only the stand-ins and a few coreutils on PATH; return (status, stderr+stdout, log).

    ``present``: stand-in browsers already installed; ``inert``: files of those names that are not executable."""
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    for tool in ("tr", "date", "head", "env", "chmod"):
        (bin_ / tool).symlink_to(shutil.which(tool))
    for name, body in STUBS.items():
        if (name == "sudo" and not sudo) or (name == "apt-get" and not apt):
            continue
        (bin_ / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_ / name).chmod(0o755)
    for name in present:
        (bin_ / name).write_text(f"#!/bin/sh\necho {name} 9.9\n")
        (bin_ / name).chmod(0o755)
    for name in inert:
        (bin_ / name).write_text("not a program\n")
    log = tmp_path / "log"
    log.touch()
    environ = {
        "PATH": str(bin_),
        "STUB_UID": str(uid),
        "STUB_LOG": str(log),
        "STUB_BIN": str(bin_),
        "STUB_NOPASS": "1" if nopass else "",
        "STUB_APT_FAIL": "1" if apt_fail else "",
        **env,
    }
    proc = subprocess.run([BASH, str(SCRIPT)], env=environ, capture_output=True, text=True, timeout=60)
    return proc.returncode, proc.stderr + proc.stdout, log.read_text()


ENABLE = "To enable it, run `sudo bash scripts/install_browser.sh`, or set CLINKD_CHROMIUM=/path/to/chromium"


def test_nothing_to_do_when_both_are_there(tmp_path):
    status, out, log = run(tmp_path, present=("chromium", "chromedriver"))
    assert status == 0 and "already installed, nothing to do" in out and "chromium 9.9" in out and log == ""


def test_a_file_that_is_not_executable_is_not_a_browser(tmp_path):
    # bash's `command -v` names a non-executable file on PATH when nothing executable has the name
    status, out, _ = run(tmp_path, uid=0, present=("chromedriver",), inert=("chromium",), apt=False)
    assert status == 0 and "no apt-get here; install chromium " in out


@pytest.mark.parametrize("ci", ["", "true"])
def test_without_root_or_passwordless_sudo(tmp_path, ci):
    status, out, log = run(tmp_path, sudo=True, nopass=False, CI=ci)
    if ci:  # CI as before: sudo is asked (here it lets the stand-in through) and the browser installed
        assert (
            status == 0 and "sudo apt-get update -qq" in log and "installed chromium chromium-driver" in out
        )
    else:  # never a password prompt: a warning, and the test will skip
        assert status == 0 and "need root or passwordless sudo" in out and "will be skipped" in out
        assert ENABLE in out and log == ""


@pytest.mark.parametrize("ci", ["", "true"])
def test_without_root_and_without_sudo(tmp_path, ci):
    status, out, log = run(tmp_path, sudo=False, CI=ci)
    assert "need root or passwordless sudo to apt-get install chromium chromium-driver" in out and log == ""
    assert (status, "the browser test must run" in out, ENABLE in out) == (
        (1, True, False) if ci else (0, False, True)
    )


def test_passwordless_sudo_installs(tmp_path):
    status, out, log = run(tmp_path, sudo=True, nopass=True, present=("chromium",))
    assert status == 0 and "installed chromium-driver" in out and "chromedriver 1.0" in out
    assert (
        "sudo -n apt-get update -qq" in log
        and "sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install" in log
    )


def test_root_installs_without_sudo(tmp_path):
    status, out, log = run(tmp_path, uid=0)
    assert status == 0 and "installed chromium chromium-driver" in out and "sudo" not in log
    assert "chromium 1.0" in out and "chromedriver 1.0" in out
    assert "apt-get install -y -qq --no-install-recommends chromium chromium-driver" in log


@pytest.mark.parametrize("ci", ["", "true"])
@pytest.mark.parametrize(
    ("machine", "says"), [({"apt": False}, "no apt-get here"), ({"apt_fail": True}, "apt-get update failed")]
)
def test_no_apt_get_or_a_failing_one(tmp_path, ci, machine, says):
    status, out, _ = run(tmp_path, uid=0, CI=ci, **machine)
    assert says in out
    assert status == (1 if ci else 0) and (ENABLE in out) == (not ci)


@pytest.mark.parametrize("ci", ["", "true"])
def test_the_variables_name_the_binaries(tmp_path, ci):
    chrome = tmp_path / "opt-chrome"
    chrome.write_text("#!/bin/sh\necho custom chrome\n")
    chrome.chmod(0o755)
    status, out, log = run(tmp_path, present=("chromedriver",), CLINKD_CHROMIUM=str(chrome), CI=ci)
    assert status == 0 and "nothing to do" in out and "custom chrome" in out and log == ""
    (tmp_path / "again").mkdir()
    status, out, log = run(tmp_path / "again", CLINKD_CHROMIUM=str(tmp_path / "nowhere"), CI=ci)
    assert "CLINKD_CHROMIUM=" in out and "is not an executable file" in out and log == ""
    assert status == (1 if ci else 0)


def test_ci_values(tmp_path):
    for i, value in enumerate(("True", "1", "yes", "false", "0")):
        (tmp_path / str(i)).mkdir()
        status, _, _ = run(tmp_path / str(i), sudo=False, CI=value)
        assert status == (1 if value in ("True", "1", "yes") else 0), value
