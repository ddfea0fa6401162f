"""Snapshots of mounted volumes under a continuous writer are clean, and a frozen filesystem is always thawed.

ext4 clears its journal's needs_recovery flag when it is frozen, so a
snapshot without that flag proves the freeze, and ``e2fsck -fn`` checks it
as it is. XFS on Linux 6.1 leaves its log dirty after a freeze as well:
in this VM ``xfs_repair -n`` reports "valuable metadata changes in a log"
for frozen and unfrozen snapshots alike. So an XFS snapshot is mounted once
to replay its log, as any mount of it would, and then checked with
``xfs_repair -n``. A log that does not replay to a consistent filesystem
fails that check.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from lvmvol import fs
from lvmvol.runner import Runner

from .helpers import run_command
from .lvmvol_fixtures import big_thin_pool, json_output, lv_row, mount_root, thin_pool  # noqa: F401

# A writer that runs until the file $3 exists: it writes and fsyncs files
# of 4 to 64 KiB, renames them into subdirectories (journalled metadata
# that is not fsynced), and appends a line per iteration to the progress
# file $2. It stops between iterations, so no file on $1 stays open.
WRITER = r"""
i=0
while [ ! -e "$3" ]; do
    dd if=/dev/urandom of="$1/f$((i % 40))" bs=4k count=$((1 + i % 16)) conv=fsync status=none || exit 1
    mkdir -p "$1/d$((i % 7))"
    mv "$1/f$((i % 40))" "$1/d$((i % 7))/g$((i % 13))" || exit 1
    i=$((i + 1))
    echo "$i" >> "$2"
done
"""
SNAPSHOTS = 3


def progress(path) -> int:
    try:
        with open(path) as handle:
            return len(handle.read().splitlines())
    except FileNotFoundError:
        return 0


def wait_for_progress(path, beyond: int, timeout: float = 120) -> int:
    """Wait until the writer has finished more than ``beyond`` iterations; return the count."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        count = progress(path)
        if count > beyond:
            return count
        time.sleep(0.2)
    raise AssertionError(f"the writer made no progress beyond {beyond} iterations in {timeout} s")


def open_snapshot(volume: dict, name: str, vg: str, read_only: bool) -> tuple[str, str | None]:
    """Return the device that contains the snapshot's filesystem, and the mapping opened for it."""
    device = lv_row(vg, name)["lv_dm_path"]
    if not volume["encrypted"]:
        return device, None
    mapping = f"check-{name}"
    argv = ["cryptsetup", "open", "--key-file", volume["key_source"], device, mapping]
    if read_only:
        argv.insert(2, "--readonly")
    run_command(argv)
    return f"/dev/mapper/{mapping}", mapping


def check_ext4(device: str) -> None:
    header = run_command(["dumpe2fs", "-h", device]).stdout
    features = [line for line in header.splitlines() if line.startswith("Filesystem features:")][0]
    assert "needs_recovery" not in features, f"{device} was not frozen: {features}"
    result = run_command(["e2fsck", "-fn", device], check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def check_xfs(device: str, mountpoint: str) -> None:
    os.makedirs(mountpoint, exist_ok=True)
    run_command(["mount", "-t", "xfs", "-o", "nouuid", device, mountpoint])
    run_command(["umount", mountpoint])
    result = run_command(["xfs_repair", "-n", device], check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("filesystem", "encrypted"),
    [("ext4", False), ("ext4", True), ("xfs", False), ("xfs", True)],
    ids=["ext4", "ext4-luks", "xfs", "xfs-luks"],
)
def test_snapshots_under_writer_clean(big_thin_pool, lvmvol, lvmvol_config, tmp_path, filesystem, encrypted):
    lvmvol_config["key_dir"] = str(tmp_path / "keys")
    # mkfs.xfs zeroes a 64 MiB log through dm-crypt, which can take minutes under emulation (an estimate).
    lvmvol_config["command_timeout"] = 600
    # XFS needs 300 MiB for itself, plus 16 MiB for the LUKS2 header.
    size = "320M" if filesystem == "xfs" else "64M"
    create = ["volume", "create", "live", "--size", size, "--fs", filesystem, "--json"]
    if encrypted:
        create.append("--luks")
    volume = json_output(lvmvol(*create))
    origin = lvmvol("volume", "mount", "live").stdout.strip()
    progress_file = tmp_path / "progress"
    stop_file = tmp_path / "stop"
    writer = subprocess.Popen(["bash", "-c", WRITER, "writer", origin, str(progress_file), str(stop_file)])
    try:
        wait_for_progress(progress_file, 5)
        for number in range(1, SNAPSHOTS + 1):
            before = progress(progress_file)
            result = lvmvol("snapshot", "live", f"live-s{number}")
            assert result.stdout == f"live-s{number}\n"
            # The writer goes on after each snapshot, so the filesystem was thawed.
            wait_for_progress(progress_file, before)
        assert writer.poll() is None, "the writer stopped"
    finally:
        stop_file.touch()
        writer.wait(timeout=120)

    lvmvol("volume", "umount", "live")
    for number in range(1, SNAPSHOTS + 1):
        name = f"live-s{number}"
        device, mapping = open_snapshot(volume, name, big_thin_pool.vg, read_only=filesystem == "ext4")
        try:
            if filesystem == "ext4":
                check_ext4(device)
            else:
                check_xfs(device, str(tmp_path / "check"))
        finally:
            if mapping:
                run_command(["cryptsetup", "close", mapping])


@pytest.fixture
def mounted_ext4(thin_pool, lvmvol) -> str:
    lvmvol("volume", "create", "frz", "--size", "32M")
    return lvmvol("volume", "mount", "frz").stdout.strip()


def is_frozen(mountpoint: str) -> bool:
    """Return True when the filesystem is frozen: a second freeze then fails with EBUSY."""
    if run_command(["fsfreeze", "--freeze", mountpoint], check=False).returncode != 0:
        return True
    run_command(["fsfreeze", "--unfreeze", mountpoint])
    return False


def wait_until_thawed(mountpoint: str, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if not is_frozen(mountpoint):
            return time.monotonic() - started
        time.sleep(0.2)
    run_command(["fsfreeze", "--unfreeze", mountpoint], check=False)
    raise AssertionError(f"{mountpoint} was still frozen {timeout} s after lvmvol died")


def test_thaw_guard_thaws_after_kill(mounted_ext4, lvmvol):
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:
        # The child plays lvmvol between fsfreeze and its own thaw.
        try:
            os.close(read_end)
            runner = Runner()
            fs.start_thaw_guard(runner, mounted_ext4, 600)
            fs.freeze(runner, mounted_ext4)
            os.write(write_end, b"frozen")
            time.sleep(600)
        finally:
            os._exit(1)
    os.close(write_end)
    try:
        assert os.read(read_end, 16) == b"frozen"
        assert is_frozen(mounted_ext4)
    finally:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)
        os.close(read_end)

    waited = wait_until_thawed(mounted_ext4, timeout=30)

    assert waited < 30
    lvmvol("volume", "umount", "frz")


def test_thaw_guard_timeout_thaws(mounted_ext4, lvmvol):
    runner = Runner()
    # The guard's clock starts when it does, and a freeze can take seconds under emulation.
    started = time.monotonic()
    guard = fs.start_thaw_guard(runner, mounted_ext4, 10)
    fs.freeze(runner, mounted_ext4)
    try:
        waited = wait_until_thawed(mounted_ext4, timeout=60)
    finally:
        guard.finish()

    assert time.monotonic() - started >= 10
    assert waited < 60
    lvmvol("volume", "umount", "frz")
