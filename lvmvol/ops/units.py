"""The systemd units shipped with lvmvol, and writing them where systemd reads them."""

from __future__ import annotations

import os
import sys
from importlib import resources

from lvmvol.errors import NotFound
from lvmvol.ops.context import Context, Outcome

UNIT_NAMES = ("lvmvol-activate.service", "lvmvol-docker.socket", "lvmvol-docker.service")
DEFAULT_UNIT_DIR = "/etc/systemd/system"
# The start of the ExecStart lines of the shipped units; they name the path
# the README's install steps link lvmvol to.
SHIPPED_EXEC_START = "ExecStart=/usr/local/sbin/lvmvol "


def unit_text(name: str, python: str | None = None) -> str:
    """Return the text of unit ``name``, starting lvmvol with the ``python`` interpreter.

    By default that is the interpreter running now, so the unit starts the
    same installation that wrote it, wherever its virtualenv is.
    """
    text = (resources.files("lvmvol") / "data" / name).read_text(encoding="utf-8")
    python = python or sys.executable
    return text.replace(SHIPPED_EXEC_START, f"ExecStart={python} -m lvmvol ")


def install_units(ctx: Context, directory: str = DEFAULT_UNIT_DIR) -> Outcome:
    """Write the units into ``directory``; a unit that already has the same text is left alone."""
    if not os.path.isdir(directory):
        raise NotFound(f"unit directory {directory} not found", "create it or pass another --dir")

    written = []
    paths = []
    for name in UNIT_NAMES:
        path = os.path.join(directory, name)
        paths.append(path)
        text = unit_text(name)
        try:
            with open(path, encoding="utf-8") as handle:
                if handle.read() == text:
                    continue
        except FileNotFoundError:
            pass
        if not ctx.dry_run:
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.chmod(path, 0o644)
        written.append(path)
    return Outcome("units", bool(written), {"units": paths, "written": written})
