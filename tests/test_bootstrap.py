"""The set-up script works from a fresh checkout with the interpreter a newcomer has, and
says in one line what to install when it cannot."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from service.config import PROJECT_ROOT

SYSTEM_PYTHON = Path("/usr/bin/python3")


def checkout(target: Path) -> Path:
    """The repository's files as a fresh clone has them (tracked and new, never .venv)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, (item.decode() for item in listed)):
        source = PROJECT_ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def run_bootstrap(clone: Path, path: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("UV_")}
    env["PATH"] = path
    env.pop("VIRTUAL_ENV", None)
    return subprocess.run(
        ["bash", "scripts/bootstrap"], cwd=clone, env=env, capture_output=True, text=True
    )


def stub_python(folder: Path, body: str) -> str:
    """A `python3` on PATH that behaves as `body` says, the real one otherwise."""
    folder.mkdir()
    stub = folder / "python3"
    stub.write_text(f'#!/bin/sh\n{body}\nexec {sys.executable} "$@"\n')
    stub.chmod(0o755)
    return f"{folder}:/usr/bin:/bin"


def externally_managed(python: Path) -> bool:
    probe = "import sysconfig; print(sysconfig.get_path('stdlib'))"
    stdlib = subprocess.run([python, "-c", probe], capture_output=True, text=True, check=True)
    return (Path(stdlib.stdout.strip()) / "EXTERNALLY-MANAGED").exists()


@pytest.mark.skipif(
    not SYSTEM_PYTHON.exists() or not externally_managed(SYSTEM_PYTHON),
    reason="needs an externally managed system Python at /usr/bin/python3",
)
def test_fresh_clone_sets_up_with_the_system_python(tmp_path: Path) -> None:
    clone = checkout(tmp_path / "clone")

    first = run_bootstrap(clone, "/usr/bin:/bin")

    assert first.returncode == 0, first.stderr
    assert "externally-managed" not in first.stderr
    cli = subprocess.run(
        [clone / ".venv/bin/contentapi", "--help"], capture_output=True, text=True, check=False
    )
    assert cli.returncode == 0, cli.stderr
    assert "seed" in cli.stdout
    interpreter = (clone / ".venv/pyvenv.cfg").read_text()
    assert "3.11" in interpreter or "3.12" in interpreter or "3.13" in interpreter
    # the second run finds everything in place and says nothing
    second = run_bootstrap(clone, "/usr/bin:/bin")
    assert second.returncode == 0, second.stderr
    assert second.stdout == ""


def test_missing_venv_module_is_one_line_naming_the_package(tmp_path: Path) -> None:
    clone = checkout(tmp_path / "clone")
    path = stub_python(
        tmp_path / "bin",
        'case "$*" in *venv*|*ensurepip*) '
        "echo \"ModuleNotFoundError: No module named 'ensurepip'\" >&2; exit 1;; esac",
    )

    result = run_bootstrap(clone, path)

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert "apt install python3-venv" in result.stderr
    assert not (clone / ".venv").exists()


def test_python_older_than_3_11_is_refused_with_what_to_install(tmp_path: Path) -> None:
    clone = checkout(tmp_path / "clone")
    path = stub_python(
        tmp_path / "bin",
        'case "$*" in *version_info*) exit 1;; *python_version*) echo 3.9.2; exit 0;; esac',
    )

    result = run_bootstrap(clone, path)

    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Python 3.9.2" in result.stderr
    assert "needs 3.11 or newer" in result.stderr
    assert not (clone / ".venv").exists()
