"""The committed shell completion files match what Click generates from the commands."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

COMPLETIONS = Path(__file__).resolve().parents[2] / "completions"


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_file_current(shell: str) -> None:
    environment = dict(os.environ, _LVMVOL_COMPLETE=f"{shell}_source")
    generated = subprocess.run(
        [sys.executable, "-c", 'from lvmvol.cli import cli; cli(prog_name="lvmvol")'],
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    committed = (COMPLETIONS / f"lvmvol.{shell}").read_text()

    assert generated == committed, f"completions/lvmvol.{shell} is stale: run completions/generate.sh"
