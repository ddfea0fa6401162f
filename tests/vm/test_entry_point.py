"""The installed entry points, started as real processes (the rest of the suite forks)."""

from __future__ import annotations

import json
import shutil
import sys

from .helpers import run_command
from .lvmvol_fixtures import mount_root, thin_pool  # noqa: F401


def test_module_entry_point_lists_volumes(thin_pool, lvmvol_config):
    argv = [sys.executable, "-m", "lvmvol", "--config", str(lvmvol_config.path)]
    run_command([*argv, "volume", "create", "entry", "--size", "32M"])

    listed = json.loads(run_command([*argv, "volume", "ls", "--json"]).stdout)

    assert "entry" in {volume["name"] for volume in listed}


def test_console_script_reports_errors(lvmvol_config):
    script = shutil.which("lvmvol")
    assert script is not None

    version = run_command([script, "--version"])
    bad = run_command([script, "--config", str(lvmvol_config.path), "volume", "create", "a b", "--size", "1M"], check=False)

    assert version.stdout.startswith("lvmvol, version ")
    assert bad.returncode == 2
    assert bad.stderr.startswith("lvmvol: error: invalid volume name 'a b'")
