"""Running the `nasprune` command line in-process, as a user would from a shell."""

from __future__ import annotations

import sys

import pytest

from nasprune.cli import main


def cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str
) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of ``nasprune ARGS...``."""
    monkeypatch.setattr(sys, "argv", ["nasprune", *args])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err
