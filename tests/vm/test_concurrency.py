"""The command lock and the root check, with real lvmvol processes started at once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

from lvmvol.lock import CommandLock

from .helpers import lvm_json, run_command
from .lvmvol_fixtures import lv_names, lv_row, mount_root, thin_pool  # noqa: F401

# Under software emulation a Python start-up alone takes 5 to 30 s, and the
# twelve commands below run one after another once started.
BURST_TIMEOUT = 1800


def test_parallel_creates_and_snapshots_succeed(thin_pool, lvmvol, lvmvol_config, tmp_path):
    lvmvol_config.update({"lock_dir": str(tmp_path / "lock"), "lock_timeout": BURST_TIMEOUT})
    lvmvol("volume", "create", "src0", "--size", "16M")
    lvmvol("volume", "create", "src1", "--size", "16M")
    base = [sys.executable, "-m", "lvmvol", "--config", str(lvmvol_config.path)]
    commands = [[*base, "volume", "create", f"par{index}", "--size", "16M"] for index in range(8)]
    commands += [[*base, "snapshot", f"src{index % 2}", f"snap{index}"] for index in range(4)]

    processes = [
        subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for argv in commands
    ]
    listings = 0
    deadline = time.monotonic() + BURST_TIMEOUT
    while any(process.poll() is None for process in processes) and time.monotonic() < deadline:
        listing = lvmvol("volume", "ls", "--json", check=False)
        assert listing.returncode == 0, listing.stderr
        assert isinstance(json.loads(listing.stdout), list)
        listings += 1
    results = [(argv, *process.communicate(timeout=60), process.returncode) for argv, process in zip(commands, processes)]

    for argv, stdout, stderr, returncode in results:
        assert returncode == 0, f"{argv}: exit {returncode}\n{stderr}"
    assert listings >= 1
    expected = {f"par{index}" for index in range(8)} | {f"snap{index}" for index in range(4)}
    assert expected <= lv_names(thin_pool.vg)
    for name in expected:
        row = lv_row(thin_pool.vg, name)
        assert "lvmvol.incomplete" not in row["lv_tags"], name
        assert row["lv_active"] == "active", name
    assert lv_row(thin_pool.vg, "snap1")["origin"] == "src1"


def test_lock_timeout_names_holder(thin_pool, lvmvol, lvmvol_config, tmp_path):
    lock_dir = tmp_path / "lock"
    lvmvol_config.update({"lock_dir": str(lock_dir), "lock_timeout": 2})
    holder = CommandLock(str(lock_dir), 1, argv=["lvmvol", "volume", "create", "holder-marker"])

    with holder:
        started = time.monotonic()
        blocked = lvmvol("volume", "create", "blocked", "--size", "16M", check=False)
        waited = time.monotonic() - started
        listing = lvmvol("volume", "ls", "--json", check=False)
        dry_run = lvmvol("--dry-run", "volume", "create", "blocked", "--size", "16M", check=False)

    assert blocked.returncode == 7, blocked.stderr
    assert f"pid {os.getpid()}" in blocked.stderr
    assert "holder-marker" in blocked.stderr
    assert len(blocked.stderr.strip().splitlines()) == 1
    assert waited >= 2
    assert lv_row(thin_pool.vg, "blocked") is None
    assert listing.returncode == 0, listing.stderr
    assert dry_run.returncode == 0, dry_run.stderr
    lvmvol("volume", "create", "blocked", "--size", "16M")
    assert lv_row(thin_pool.vg, "blocked") is not None


def test_lock_released_when_holder_is_killed(thin_pool, lvmvol, lvmvol_config, tmp_path):
    lock_dir = tmp_path / "lock"
    lvmvol_config.update({"lock_dir": str(lock_dir), "lock_timeout": 600})
    script = (
        "import sys, time\n"
        "from lvmvol.lock import CommandLock\n"
        "CommandLock(sys.argv[1], 5).acquire()\n"
        "print('locked', flush=True)\n"
        "time.sleep(3600)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", script, str(lock_dir)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        holder.kill()
        holder.wait()

        lvmvol("volume", "create", "afterkill", "--size", "16M")
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()

    assert lv_row(thin_pool.vg, "afterkill") is not None


def test_non_root_refused_before_any_change(thin_pool, lvmvol_config):
    # The unprivileged user must be able to read the config file.
    shared = tempfile.mkdtemp(prefix="lvmvol-nonroot-")
    os.chmod(shared, 0o755)
    config = os.path.join(shared, "config.toml")
    with open(config, "w") as handle:
        handle.write(lvmvol_config.path.read_text())
    os.chmod(config, 0o644)
    # The virtualenv's interpreter lives under /root, which uid 65534 cannot
    # enter, so the system Python of the same minor version runs lvmvol from
    # this checkout with the virtualenv's (pure Python) packages.
    packages = os.path.realpath(sysconfig.get_paths()["purelib"])
    checkout = str(Path(__file__).resolve().parents[2])
    environment = {"PYTHONPATH": f"{checkout}:{packages}"}
    as_nobody = [
        "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
        f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}", "-m", "lvmvol", "--config", config,
    ]
    before = lvm_json("lvs", "-o", "lv_name", thin_pool.vg)

    create = run_command([*as_nobody, "volume", "create", "nope", "--size", "16M"], check=False, env=environment)
    remove = run_command([*as_nobody, "pool", "rm", thin_pool.spec], check=False, env=environment)
    listing = run_command([*as_nobody, "volume", "ls", "--json"], check=False, env=environment)

    assert create.returncode == 77, create.stderr
    assert "must run as root, not as uid 65534" in create.stderr
    assert len(create.stderr.strip().splitlines()) == 1
    assert remove.returncode == 77, remove.stderr
    assert lvm_json("lvs", "-o", "lv_name", thin_pool.vg) == before
    # lvm2 decides what a listing may read without root; lvmvol does not refuse it.
    assert "must run as root" not in listing.stderr
    assert "Traceback" not in listing.stderr
