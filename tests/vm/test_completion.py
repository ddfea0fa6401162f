"""Shell completion of live names and the one-name-a-line output, against a real pool."""

from __future__ import annotations

import sys

from .helpers import lvm_json, run_command
from .lvmvol_fixtures import mount_root, thin_pool  # noqa: F401

# What completion must leave unchanged. Not lv_attr: its open flag can be a udev probe.
LV_STATE = "lv_name,lv_active,lv_permissions,lv_skip_activation,lv_tags"


def complete(config_path: str, line: str) -> list[str]:
    """Run Click's bash completion protocol in a new ``python -m lvmvol`` and return the names offered."""
    words = line.split(" ")
    result = run_command(
        [sys.executable, "-m", "lvmvol"],
        env={
            "_LVMVOL_COMPLETE": "bash_complete",
            "COMP_WORDS": line,
            "COMP_CWORD": str(len(words) - 1),
            "LVMVOL_CONFIG": config_path,
        },
    )
    assert result.stderr == ""
    return [row.partition(",")[2] for row in result.stdout.splitlines() if row]


def test_completion_offers_live_names(thin_pool, lvmvol, lvmvol_config):
    lvmvol("volume", "create", "webdata", "--size", "32M")
    lvmvol("volume", "create", "weblogs", "--size", "32M")
    lvmvol("snapshot", "webdata", "webdata-snap")
    config = str(lvmvol_config.path)
    lvs_before = lvm_json("lvs", "-o", LV_STATE, thin_pool.vg)

    volumes = complete(config, "lvmvol volume mount web")
    snapshots = complete(config, "lvmvol volume restore ")
    pools = complete(config, f"lvmvol volume create x --pool {thin_pool.vg}/")

    assert sorted(volumes) == ["webdata", "webdata-snap", "weblogs"]
    assert snapshots == ["webdata-snap"]
    assert pools == [thin_pool.spec]
    assert lvm_json("lvs", "-o", LV_STATE, thin_pool.vg) == lvs_before


def test_volume_ls_prints_names(thin_pool, lvmvol):
    lvmvol("volume", "create", "names-a", "--size", "32M")
    lvmvol("volume", "create", "names-b", "--size", "32M")

    names = lvmvol("volume", "ls", "-o", "name").stdout.splitlines()
    pools = lvmvol("pool", "ls", "-o", "name").stdout.splitlines()

    assert sorted(names) == ["names-a", "names-b"]
    assert pools == ["pool"]
