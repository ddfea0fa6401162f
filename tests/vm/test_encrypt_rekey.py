"""Encrypting plain volumes in place and replacing keys, against real cryptsetup, dm-crypt and lvm2.

In-place encryption rewrites every block of the volume. Under the VM's
software emulation that ran at about 0.7 MiB/s (128 MiB in about 4 minutes,
with two other VMs on the same 2-CPU host), so the volumes here are 128 MiB:
large enough to kill an encryption part way, small enough to keep each test
within minutes.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from .helpers import lvm_json, run_command
from .lvmvol_fixtures import (  # noqa: F401
    all_lvs,
    filesystem_type,
    json_output,
    lv_row,
    mount_root,
    mountpoints_of,
    thin_pool,
)

MiB = 1024 * 1024
VOLUME_SIZE = 128 * MiB
# What encrypt adds for the LUKS2 header: --reduce-device-size 32M.
GROWTH = 32 * MiB
# Seconds one in-place encryption of a test volume may take under emulation.
ENCRYPT_TIMEOUT = 1500


def make_key_file(directory, name: str, content: bytes | None = None) -> str:
    path = os.path.join(str(directory), name)
    with open(path, "wb") as handle:
        handle.write(content if content is not None else os.urandom(64))
    os.chmod(path, 0o600)
    return path


def key_file_opens(device: str, key_file: str) -> bool:
    result = run_command(["cryptsetup", "open", "--test-passphrase", "--key-file", key_file, device], check=False)
    return result.returncode == 0


def passphrase_opens(device: str, passphrase: str) -> bool:
    result = run_command(
        ["cryptsetup", "open", "--test-passphrase", "--key-file", "-", device], input=passphrase, check=False
    )
    return result.returncode == 0


def luks_metadata(device: str) -> dict:
    return json.loads(run_command(["cryptsetup", "luksDump", "--dump-json-metadata", device]).stdout)


def tags_of(vg: str, name: str) -> list[str]:
    return lv_row(vg, name)["lv_tags"].split(",")


def fill_volume(lvmvol, name: str, data_bytes: int = 24 * MiB) -> str:
    """Mount ``name``, write a file of random bytes and a text file, and unmount it.

    Returns the SHA-256 of the random file.
    """
    target = lvmvol("volume", "mount", name).stdout.strip()
    digest = hashlib.sha256()
    with open(os.path.join(target, "blob"), "wb") as handle:
        remaining = data_bytes
        while remaining:
            chunk = os.urandom(min(remaining, 4 * MiB))
            digest.update(chunk)
            handle.write(chunk)
            remaining -= len(chunk)
        handle.flush()
        os.fsync(handle.fileno())
    with open(os.path.join(target, "note"), "w") as handle:
        handle.write("kept through encryption\n")
    lvmvol("volume", "umount", name)
    return digest.hexdigest()


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(4 * MiB), b""):
            digest.update(chunk)
    return digest.hexdigest()


def filesystem_blocks(mountpoint: str) -> int:
    status = os.statvfs(mountpoint)
    return status.f_blocks * status.f_frsize


def test_encrypt_keeps_data(thin_pool, lvmvol, tmp_path):
    secret = b"IN-PLACE-KEY-MATERIAL-0123456789abcdef"
    key = make_key_file(tmp_path, "plain.key", secret)
    lvmvol("volume", "create", "plain", "--size", "128M")
    checksum = fill_volume(lvmvol, "plain")
    target = lvmvol("volume", "mount", "plain").stdout.strip()
    size_before = filesystem_blocks(target)
    lvmvol("volume", "umount", "plain")
    device = lv_row(thin_pool.vg, "plain")["lv_dm_path"]

    started = time.monotonic()
    result = lvmvol("--debug", "volume", "encrypt", "plain", "--key-file", key, "--json", timeout=ENCRYPT_TIMEOUT)
    print(f"encrypting {VOLUME_SIZE // MiB} MiB in place took {time.monotonic() - started:.0f} s")

    outcome = json_output(result)
    assert outcome["changed"] is True
    assert outcome["resumed"] is False
    assert outcome["size_bytes"] == VOLUME_SIZE + GROWTH
    assert lv_row(thin_pool.vg, "plain")["lv_size"] == str(VOLUME_SIZE + GROWTH)
    assert filesystem_type(device) == "crypto_LUKS"
    assert key_file_opens(device, key)
    metadata = luks_metadata(device)
    assert metadata["segments"]["0"]["offset"] == str(16 * MiB)
    assert "requirements" not in metadata["config"]
    tags = tags_of(thin_pool.vg, "plain")
    assert "lvmvol.crypt=luks2" in tags
    assert f"lvmvol.key={key}" in tags
    assert not any(tag.startswith("lvmvol.encrypting") for tag in tags)
    assert secret.decode() not in result.stdout + result.stderr

    target = lvmvol("volume", "mount", "plain").stdout.strip()
    assert mountpoints_of(f"/dev/mapper/luks-{thin_pool.vg}-plain") == [target]
    assert file_sha256(os.path.join(target, "blob")) == checksum
    with open(os.path.join(target, "note")) as handle:
        assert handle.read() == "kept through encryption\n"
    assert filesystem_blocks(target) == size_before
    run_command(["umount", target])
    fsck = run_command(["e2fsck", "-f", "-n", f"/dev/mapper/luks-{thin_pool.vg}-plain"], check=False)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    lvmvol("volume", "umount", "plain")


def test_encrypt_twice_unchanged(thin_pool, lvmvol, lvmvol_config, tmp_path):
    # No key option: a key file is generated, as for volume create --luks.
    key_dir = tmp_path / "keys"
    lvmvol_config["key_dir"] = str(key_dir)
    lvmvol("volume", "create", "twice", "--size", "128M", "--fs", "none")

    first = json_output(lvmvol("volume", "encrypt", "twice", "--json", timeout=ENCRYPT_TIMEOUT))
    lvs_after_first = all_lvs()
    second = lvmvol("volume", "encrypt", "twice", "--json")
    second_with_key = lvmvol("volume", "encrypt", "twice", "--key-file", first["key_source"], "--json")

    key_path = str(key_dir / f"luks-{thin_pool.vg}-twice.key")
    assert first["changed"] is True
    assert first["key_source"] == key_path
    assert os.stat(key_path).st_mode & 0o777 == 0o400
    device = lv_row(thin_pool.vg, "twice")["lv_dm_path"]
    assert luks_metadata(device)["keyslots"]["0"]["kdf"]["type"] == "pbkdf2"
    assert json_output(second)["changed"] is False
    assert json_output(second_with_key)["changed"] is False
    assert all_lvs() == lvs_after_first
    shown = json_output(lvmvol("volume", "show", "twice", "--json"))
    assert shown["encrypted"] is True
    assert shown["encrypting"] is False
    assert shown["key_source"] == key_path


def test_encrypt_refuses_mounted(thin_pool, lvmvol, tmp_path):
    lvmvol("volume", "create", "busy", "--size", "64M")
    target = lvmvol("volume", "mount", "busy").stdout.strip()
    before = all_lvs()
    tags_before = tags_of(thin_pool.vg, "busy")

    result = lvmvol("volume", "encrypt", "busy", "--key-file", make_key_file(tmp_path, "busy.key"), check=False)

    assert result.returncode == 4
    assert f"mounted at {target}" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert all_lvs() == before
    assert tags_of(thin_pool.vg, "busy") == tags_before
    assert filesystem_type(lv_row(thin_pool.vg, "busy")["lv_dm_path"]) == "ext4"
    lvmvol("volume", "umount", "busy")


def test_encrypt_refuses_leftover_luks_header(thin_pool, lvmvol, tmp_path):
    key = make_key_file(tmp_path, "old.key")
    lvmvol("volume", "create", "reused", "--size", "64M", "--fs", "none")
    lvmvol("volume", "create", "luks1", "--size", "64M", "--fs", "none")
    reused = lv_row(thin_pool.vg, "reused")["lv_dm_path"]
    luks1 = lv_row(thin_pool.vg, "luks1")["lv_dm_path"]
    fast_kdf = ["--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"]
    run_command(["cryptsetup", "luksFormat", "--type", "luks2", "--batch-mode", "--key-file", key, *fast_kdf, reused])
    run_command(["cryptsetup", "luksFormat", "--type", "luks1", "--batch-mode", "--key-file", key, luks1])
    # An old wipefs erased only the primary LUKS2 header; its secondary copy
    # at 16 KiB stays, and cryptsetup can restore the header from it.
    with open(reused, "r+b") as device:
        device.write(bytes(4096))
        device.flush()
        os.fsync(device.fileno())
    before = all_lvs()

    leftover = lvmvol("volume", "encrypt", "reused", "--key-file", key, check=False)
    full = lvmvol("volume", "encrypt", "luks1", "--key-file", key, check=False)

    assert leftover.returncode == 4
    assert "a LUKS2 secondary header at byte 16384" in leftover.stderr
    assert full.returncode == 4
    assert "a LUKS1 header at byte 0" in full.stderr
    assert all_lvs() == before
    assert not any(tag.startswith("lvmvol.crypt") for tag in tags_of(thin_pool.vg, "reused"))


@pytest.mark.parametrize("killed", ["lvmvol-and-cryptsetup", "lvmvol-only"])
def test_encrypt_resumes_after_kill(thin_pool, lvmvol, lvmvol_config, tmp_path, killed):
    key = make_key_file(tmp_path, "resume.key")
    lvmvol("volume", "create", "resume", "--size", "128M")
    checksum = fill_volume(lvmvol, "resume")
    device = lv_row(thin_pool.vg, "resume")["lv_dm_path"]

    argv = [sys.executable, "-m", "lvmvol", "--config", str(lvmvol_config.path), "volume", "encrypt", "resume", "--key-file", key]
    # A session of its own, so SIGKILL to its process group kills lvmvol and
    # cryptsetup at once, as a power cut would. Killing lvmvol alone leaves
    # cryptsetup to the parent-death signal, SIGTERM.
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        _wait_for_reencryption(process, device)
        time.sleep(5)
        assert process.poll() is None, "the encryption finished before the kill; use a larger volume"
    finally:
        if killed == "lvmvol-only":
            process.kill()
        else:
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
    _wait_until_closed(thin_pool.vg, "resume")

    assert luks_metadata(device)["config"]["requirements"]["mandatory"][0].startswith("online-reencrypt")
    listed = {volume["name"]: volume for volume in json_output(lvmvol("volume", "ls", "--json"))}
    assert listed["resume"]["encrypting"] is True
    assert "encrypting" in lvmvol("volume", "ls").stdout
    refused_mount = lvmvol("volume", "mount", "resume", check=False)
    assert refused_mount.returncode == 4
    assert "lvmvol volume encrypt resume" in refused_mount.stderr

    finished = json_output(lvmvol("volume", "encrypt", "resume", "--json", timeout=ENCRYPT_TIMEOUT))

    assert finished["changed"] is True
    assert finished["resumed"] is True
    assert "requirements" not in luks_metadata(device)["config"]
    assert not any(tag.startswith("lvmvol.encrypting") for tag in tags_of(thin_pool.vg, "resume"))
    target = lvmvol("volume", "mount", "resume").stdout.strip()
    assert file_sha256(os.path.join(target, "blob")) == checksum
    run_command(["umount", target])
    fsck = run_command(["e2fsck", "-f", "-n", f"/dev/mapper/luks-{thin_pool.vg}-resume"], check=False)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    lvmvol("volume", "umount", "resume")


def _wait_until_closed(vg: str, name: str, timeout: float = 120) -> None:
    """Wait until no process (cryptsetup stopping, udev probing) has the LV open."""
    deadline = time.monotonic() + timeout
    while lvm_json("lvs", "-o", "lv_device_open", f"{vg}/{name}")[0]["lv_device_open"] == "open":
        if time.monotonic() > deadline:
            raise AssertionError(f"{vg}/{name} is still open {timeout} s after the kill")
        time.sleep(0.5)


def _wait_for_reencryption(process: subprocess.Popen, device: str, timeout: float = 600) -> None:
    """Wait until cryptsetup has placed the LUKS2 header, which it does right before it moves data."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            stdout, stderr = process.communicate()
            raise AssertionError(f"lvmvol exited with {process.returncode} before the kill:\n{stdout!r}\n{stderr!r}")
        if run_command(["cryptsetup", "isLuks", device], check=False).returncode == 0:
            return
        time.sleep(0.5)
    raise AssertionError(f"no LUKS header on {device} after {timeout} s")


def test_rekey_key_file_while_mounted(thin_pool, lvmvol, tmp_path):
    old = make_key_file(tmp_path, "old.key")
    new = make_key_file(tmp_path, "new.key", b"NEW-KEY-MATERIAL-FOR-REKEY-0123456789")
    lvmvol("volume", "create", "vault", "--size", "64M", "--luks", "--key-file", old)
    target = lvmvol("volume", "mount", "vault").stdout.strip()
    with open(os.path.join(target, "row"), "w") as handle:
        handle.write("before rekey")
    device = lv_row(thin_pool.vg, "vault")["lv_dm_path"]

    result = lvmvol("--debug", "volume", "rekey", "vault", "--new-key-file", new, "--json")
    again = lvmvol("volume", "rekey", "vault", "--new-key-file", new, "--json")

    assert json_output(result)["changed"] is True
    assert json_output(again)["changed"] is False
    assert not key_file_opens(device, old)
    assert key_file_opens(device, new)
    assert mountpoints_of(f"/dev/mapper/luks-{thin_pool.vg}-vault") == [target]
    assert "NEW-KEY-MATERIAL" not in result.stdout + result.stderr
    listed = {volume["name"]: volume for volume in json_output(lvmvol("volume", "ls", "--json"))}
    assert listed["vault"]["key_source"] == new
    slots = [slot for slot in luks_metadata(device)["keyslots"].values() if slot["type"] == "luks2"]
    assert len(slots) == 1

    lvmvol("volume", "umount", "vault")
    target = lvmvol("volume", "mount", "vault").stdout.strip()
    with open(os.path.join(target, "row")) as handle:
        assert handle.read() == "before rekey"
    lvmvol("volume", "umount", "vault")


def test_rekey_passphrases(thin_pool, lvmvol):
    lvmvol("volume", "create", "pw", "--size", "64M", "--passphrase-stdin", input="old words\n")
    device = lv_row(thin_pool.vg, "pw")["lv_dm_path"]

    result = lvmvol(
        "--debug", "volume", "rekey", "pw", "--passphrase-stdin", "--new-passphrase-stdin", "--json",
        input="old words\nnew words\n",
    )
    again = lvmvol(
        "volume", "rekey", "pw", "--passphrase-stdin", "--new-passphrase-stdin", "--json",
        input="old words\nnew words\n",
    )

    assert json_output(result)["changed"] is True
    assert json_output(again)["changed"] is False
    assert not passphrase_opens(device, "old words")
    assert passphrase_opens(device, "new words")
    assert "old words" not in result.stdout + result.stderr
    assert "new words" not in result.stdout + result.stderr
    target = lvmvol("volume", "mount", "pw", "--passphrase-stdin", input="new words\n").stdout.strip()
    assert os.path.isdir(target)
    lvmvol("volume", "umount", "pw")


def test_rekey_generated_key_removed(thin_pool, lvmvol, lvmvol_config, tmp_path):
    lvmvol_config["key_dir"] = str(tmp_path / "keys")
    new = make_key_file(tmp_path, "new.key")
    generated = json_output(lvmvol("volume", "create", "gen", "--size", "64M", "--luks", "--json"))["key_source"]
    shared = json_output(lvmvol("volume", "create", "gen2", "--size", "64M", "--luks", "--json"))["key_source"]
    lvmvol("snapshot", "gen2", "gen2-snap")

    alone = json_output(lvmvol("volume", "rekey", "gen", "--new-key-file", new, "--json"))
    with_snapshot = json_output(lvmvol("volume", "rekey", "gen2", "--new-key-file", new, "--json"))

    assert alone["key_file_removed"] is True
    assert not os.path.exists(generated)
    assert not any(tag.startswith("lvmvol.keygen") for tag in tags_of(thin_pool.vg, "gen"))
    # The snapshot shares the old header, so it still needs the old key file.
    assert with_snapshot["key_file_removed"] is False
    assert os.path.exists(shared)
    snapshot_device = lv_row(thin_pool.vg, "gen2-snap")["lv_dm_path"]
    assert key_file_opens(snapshot_device, shared)
    assert not key_file_opens(snapshot_device, new)
    assert f"lvmvol.key={shared}" in tags_of(thin_pool.vg, "gen2-snap")


def test_rekey_wrong_current_key_changes_nothing(thin_pool, lvmvol, tmp_path):
    right = make_key_file(tmp_path, "right.key")
    wrong = make_key_file(tmp_path, "wrong.key")
    new = make_key_file(tmp_path, "new.key")
    lvmvol("volume", "create", "locked", "--size", "64M", "--luks", "--key-file", right)
    device = lv_row(thin_pool.vg, "locked")["lv_dm_path"]

    result = lvmvol("volume", "rekey", "locked", "--new-key-file", new, "--key-file", wrong, check=False)

    assert result.returncode == 2
    assert f"the current key {wrong} does not open" in result.stderr
    assert key_file_opens(device, right)
    assert not key_file_opens(device, new)
    assert f"lvmvol.key={right}" in tags_of(thin_pool.vg, "locked")
