"""LUKS2 volumes against real cryptsetup and dm-crypt: create, mount, snapshot, remove."""

from __future__ import annotations

import json
import os
import stat

from lvmvol.names import crypt_mapping_name

from .helpers import lvm_json, run_command
from .lvmvol_fixtures import (  # noqa: F401
    all_lvs,
    filesystem_type,
    json_output,
    lv_names,
    lv_row,
    mount_root,
    mountpoints_of,
    read_file,
    thin_pool,
    write_file,
)

MiB = 1024 * 1024


def make_key_file(directory, name="volume.key", mode=0o600, content=None) -> str:
    path = os.path.join(str(directory), name)
    with open(path, "wb") as handle:
        handle.write(content if content is not None else os.urandom(64))
    os.chmod(path, mode)
    return path


def luks_dump(device: str) -> dict:
    return json.loads(run_command(["cryptsetup", "luksDump", "--dump-json-metadata", device]).stdout)


def key_opens(device: str, key_file: str) -> bool:
    result = run_command(
        ["cryptsetup", "open", "--test-passphrase", "--key-file", key_file, device], check=False
    )
    return result.returncode == 0



def test_create_luks_with_key_file(thin_pool, lvmvol, tmp_path):
    key = make_key_file(tmp_path)

    result = lvmvol("volume", "create", "secret", "--size", "64M", "--luks", "--key-file", key, "--json")

    assert json_output(result)["changed"] is True
    row = lv_row(thin_pool.vg, "secret")
    device = row["lv_dm_path"]
    assert filesystem_type(device) == "crypto_LUKS"
    assert luks_dump(device)["keyslots"]["0"]["kdf"]["type"] == "argon2id"
    assert key_opens(device, key)
    tags = row["lv_tags"].split(",")
    assert "lvmvol.crypt=luks2" in tags
    assert f"lvmvol.key={key}" in tags
    # Created, then closed: the mapping is open only while the volume is mounted.
    assert not os.path.exists(f"/dev/mapper/luks-{thin_pool.vg}-secret")
    again = lvmvol("volume", "create", "secret", "--size", "64M", "--luks", "--key-file", key, "--json")
    assert json_output(again)["changed"] is False


def test_create_luks_generates_key(thin_pool, lvmvol, lvmvol_config, tmp_path):
    key_dir = tmp_path / "keys"
    lvmvol_config["key_dir"] = str(key_dir)

    created = json_output(lvmvol("volume", "create", "gen", "--size", "64M", "--luks", "--json"))

    key_path = created["key_source"]
    assert key_path == str(key_dir / f"luks-{thin_pool.vg}-gen.key")
    assert stat.S_IMODE(os.stat(key_dir).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(key_path).st_mode) == 0o400
    assert os.path.getsize(key_path) >= 32
    device = lv_row(thin_pool.vg, "gen")["lv_dm_path"]
    slot = luks_dump(device)["keyslots"]["0"]["kdf"]
    assert slot["type"] == "pbkdf2"
    assert key_opens(device, key_path)
    again = json_output(lvmvol("volume", "create", "gen", "--size", "64M", "--luks", "--json"))
    assert again["changed"] is False


def test_mount_luks_writes_through_mapping(thin_pool, lvmvol, tmp_path):
    key = make_key_file(tmp_path)
    lvmvol("volume", "create", "vault", "--size", "64M", "--luks", "--key-file", key)

    target = lvmvol("volume", "mount", "vault").stdout.strip()
    write_file(target, "note", "classified")

    mapping = f"/dev/mapper/luks-{thin_pool.vg}-vault"
    assert os.path.exists(mapping)
    assert mountpoints_of(mapping) == [target]
    shown = json_output(lvmvol("volume", "show", "vault", "--json"))
    assert shown["encrypted"] is True
    assert shown["key_source"] == key
    assert shown["mapping"] == f"luks-{thin_pool.vg}-vault"
    assert shown["mountpoint"] == target
    assert json_output(lvmvol("volume", "mount", "vault", "--json"))["changed"] is False
    # The plaintext is not on the LV itself.
    raw = run_command(["grep", "-c", "classified", lv_row(thin_pool.vg, "vault")["lv_dm_path"]], check=False)
    assert raw.stdout.strip() == "0"

    lvmvol("volume", "umount", "vault")
    assert not os.path.exists(mapping)
    assert json_output(lvmvol("volume", "umount", "vault", "--json"))["changed"] is False
    target = lvmvol("volume", "mount", "vault").stdout.strip()
    assert read_file(target, "note") == "classified"
    lvmvol("volume", "umount", "vault")


def test_snapshot_of_luks_opens_with_origin_key(thin_pool, lvmvol, tmp_path):
    key = make_key_file(tmp_path)
    lvmvol("volume", "create", "db", "--size", "64M", "--luks", "--key-file", key)
    origin = lvmvol("volume", "mount", "db").stdout.strip()
    write_file(origin, "row", "old")

    lvmvol("snapshot", "db", "db-snap")
    write_file(origin, "row", "new")
    snapshot = lvmvol("volume", "mount", "db-snap", str(tmp_path / "snap")).stdout.strip()

    assert read_file(snapshot, "row") == "old"
    assert read_file(origin, "row") == "new"
    # Device-mapper names double each hyphen: luks-VG-db--snap.
    assert os.path.exists(f"/dev/mapper/{crypt_mapping_name(thin_pool.vg, 'db')}")
    assert os.path.exists(f"/dev/mapper/{crypt_mapping_name(thin_pool.vg, 'db-snap')}")
    assert json_output(lvmvol("volume", "show", "db-snap", "--json"))["key_source"] == key
    tree = lvmvol("tree").stdout
    assert crypt_mapping_name(thin_pool.vg, "db-snap") in tree
    lvmvol("volume", "umount", "db-snap")
    lvmvol("volume", "umount", "db")


def test_mount_key_file_override(thin_pool, lvmvol, tmp_path):
    key = make_key_file(tmp_path, "original.key")
    lvmvol("volume", "create", "moved", "--size", "64M", "--luks", "--key-file", key)
    copy = make_key_file(tmp_path, "copy.key", content=open(key, "rb").read())
    os.unlink(key)

    missing = lvmvol("volume", "mount", "moved", check=False)
    mounted = lvmvol("volume", "mount", "moved", "--key-file", copy)

    assert missing.returncode == 3
    assert key in missing.stderr
    assert mounted.returncode == 0
    lvmvol("volume", "umount", "moved")


def test_wrong_key_leaves_nothing_open(thin_pool, lvmvol, tmp_path):
    key = make_key_file(tmp_path, "right.key")
    wrong = make_key_file(tmp_path, "wrong.key")
    lvmvol("volume", "create", "locked", "--size", "64M", "--luks", "--key-file", key)

    result = lvmvol("volume", "mount", "locked", "--key-file", wrong, check=False)

    assert result.returncode == 2
    assert f"key file {wrong} does not open volume {thin_pool.vg}/locked" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not os.path.exists(f"/dev/mapper/luks-{thin_pool.vg}-locked")


def test_unsafe_key_files_rejected_first(thin_pool, lvmvol, tmp_path):
    before = all_lvs()
    readable = make_key_file(tmp_path, "readable.key", mode=0o644)
    empty = make_key_file(tmp_path, "empty.key", content=b"")
    directory = tmp_path / "dir.key"
    directory.mkdir()

    cases = [
        (readable, 2, "chmod 600"),
        (empty, 2, "empty"),
        (str(directory), 2, "not a regular file"),
        (str(tmp_path / "missing.key"), 3, "not found"),
    ]
    for path, code, text in cases:
        result = lvmvol("volume", "create", "k", "--size", "64M", "--luks", "--key-file", path, check=False)
        assert result.returncode == code, (path, result.stderr)
        assert text in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert all_lvs() == before


def test_passphrase_stdin(thin_pool, lvmvol):
    lvmvol("volume", "create", "pw", "--size", "64M", "--passphrase-stdin", input="correct horse\n")

    no_passphrase = lvmvol("volume", "mount", "pw", check=False)
    wrong = lvmvol("volume", "mount", "pw", "--passphrase-stdin", input="wrong\n", check=False)
    target = lvmvol("volume", "mount", "pw", "--passphrase-stdin", input="correct horse\n").stdout.strip()

    assert no_passphrase.returncode == 2
    assert "--passphrase" in no_passphrase.stderr
    assert wrong.returncode == 2
    assert f"the passphrase does not open volume {thin_pool.vg}/pw" in wrong.stderr
    assert mountpoints_of(f"/dev/mapper/luks-{thin_pool.vg}-pw") == [target]
    assert json_output(lvmvol("volume", "show", "pw", "--json"))["key_source"] == "passphrase"
    lvmvol("volume", "umount", "pw")


def test_rm_erases_key_slots_first(thin_pool, lvmvol, tmp_path):
    key = make_key_file(tmp_path)
    lvmvol("volume", "create", "doomed", "--size", "64M", "--luks", "--key-file", key)
    lvmvol("volume", "mount", "doomed")
    device = lv_row(thin_pool.vg, "doomed")["lv_dm_path"]
    # A snapshot shares the origin's blocks; take it below the encryption to
    # read the origin's header as it was right before lvremove.
    refused = lvmvol("volume", "rm", "doomed", check=False)
    assert refused.returncode == 4

    result = lvmvol("--verbose", "volume", "rm", "doomed", "--force", "--yes", "--json")

    assert "doomed" not in lv_names(thin_pool.vg)
    assert not os.path.exists(f"/dev/mapper/luks-{thin_pool.vg}-doomed")
    stderr = result.stderr
    assert stderr.index("cryptsetup erase") < stderr.index("lvremove")
    assert json_output(result)[0]["key_slots_erased"] is True
    assert not os.path.exists(device)


def test_rm_keeps_generated_key_used_by_snapshot(thin_pool, lvmvol, lvmvol_config, tmp_path):
    lvmvol_config["key_dir"] = str(tmp_path / "keys")
    key_path = json_output(lvmvol("volume", "create", "gen", "--size", "64M", "--luks", "--json"))["key_source"]
    lvmvol("snapshot", "gen", "gen-snap")

    lvmvol("volume", "rm", "gen")
    assert os.path.exists(key_path)
    target = lvmvol("volume", "mount", "gen-snap").stdout.strip()
    assert os.path.isdir(target)
    lvmvol("volume", "umount", "gen-snap")

    lvmvol("volume", "rm", "gen-snap")
    assert not os.path.exists(key_path)


def test_no_key_bytes_in_verbose_log(thin_pool, lvmvol, tmp_path):
    secret = b"VERY-SECRET-KEY-MATERIAL-1234567890"
    key = make_key_file(tmp_path, content=secret)
    passphrase = "another secret phrase"

    outputs = [
        lvmvol("--debug", "volume", "create", "quiet", "--size", "64M", "--luks", "--key-file", key, "--json"),
        lvmvol("--debug", "volume", "mount", "quiet", "--json"),
        lvmvol("--debug", "volume", "umount", "quiet"),
        lvmvol("--debug", "volume", "create", "quiet2", "--size", "64M", "--passphrase-stdin", input=passphrase),
        lvmvol("--debug", "volume", "mount", "quiet2", "--passphrase-stdin", "--json", input=passphrase),
        lvmvol("--debug", "volume", "ls", "--json"),
        lvmvol("--debug", "volume", "umount", "quiet2"),
    ]

    for result in outputs:
        text = result.stdout + result.stderr
        assert secret.decode() not in text
        assert passphrase not in text
    for row in all_lvs():
        assert secret.decode() not in row[1]


def test_allow_discards_recorded_and_used(thin_pool, lvmvol, tmp_path):
    key = make_key_file(tmp_path)
    lvmvol("volume", "create", "trim", "--size", "64M", "--luks", "--key-file", key, "--allow-discards")
    lvmvol("volume", "create", "notrim", "--size", "64M", "--luks", "--key-file", make_key_file(tmp_path, "b.key"))

    lvmvol("volume", "mount", "trim")
    lvmvol("volume", "mount", "notrim")

    trim_table = run_command(["dmsetup", "table", f"luks-{thin_pool.vg}-trim"]).stdout
    notrim_table = run_command(["dmsetup", "table", f"luks-{thin_pool.vg}-notrim"]).stdout
    assert "allow_discards" in trim_table
    assert "allow_discards" not in notrim_table
    assert json_output(lvmvol("volume", "show", "trim", "--json"))["allow_discards"] is True
    lvmvol("volume", "umount", "trim")
    lvmvol("volume", "umount", "notrim")


def allocated_bytes(vg: str, name: str) -> float:
    """Return how many bytes of the thin LV ``vg/name`` the pool has allocated."""
    row = lvm_json("lvs", "-o", "lv_size,data_percent", f"{vg}/{name}")[0]
    return int(row["lv_size"]) * float(row["data_percent"]) / 100


def test_discards_return_freed_blocks(thin_pool, lvmvol, tmp_path):
    lvmvol("volume", "create", "trim", "--size", "96M", "--luks", "--allow-discards",
           "--key-file", make_key_file(tmp_path))
    lvmvol("volume", "create", "notrim", "--size", "96M", "--luks",
           "--key-file", make_key_file(tmp_path, "b.key"))
    allocated = {}
    for name in ("trim", "notrim"):
        mountpoint = lvmvol("volume", "mount", name).stdout.strip()
        with open(os.path.join(mountpoint, "data"), "wb") as handle:
            handle.write(os.urandom(40 * MiB))
            os.fsync(handle.fileno())
        full = allocated_bytes(thin_pool.vg, name)
        os.unlink(os.path.join(mountpoint, "data"))
        os.sync()
        trimmed = run_command(["fstrim", "-v", mountpoint], check=False)
        allocated[name] = (full, allocated_bytes(thin_pool.vg, name), trimmed.returncode)
        lvmvol("volume", "umount", name)

    full, after, status = allocated["trim"]
    assert status == 0
    assert full - after > 30 * MiB
    full, after, status = allocated["notrim"]
    assert status != 0  # dm-crypt without allow_discards rejects the discard
    assert full - after < 1 * MiB


def run_on_terminal(argv: list[str], answers: list[tuple[str, str]], timeout: float = 300) -> tuple[int, str]:
    """Run ``argv`` on a new pseudo-terminal, typing each answer once its prompt appears.

    Returns the exit code and everything the terminal showed.
    """
    import fcntl
    import select
    import subprocess
    import termios
    import time

    main_fd, terminal_fd = os.openpty()

    def become_terminal_owner() -> None:
        os.setsid()
        fcntl.ioctl(terminal_fd, termios.TIOCSCTTY, 0)

    process = subprocess.Popen(
        argv, stdin=terminal_fd, stdout=terminal_fd, stderr=terminal_fd, preexec_fn=become_terminal_owner
    )
    os.close(terminal_fd)
    shown = ""
    answered_up_to = 0
    pending = list(answers)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([main_fd], [], [], 1.0)
        if ready:
            try:
                chunk = os.read(main_fd, 4096).decode("utf-8", errors="replace")
            except OSError:  # the terminal closed because the process ended
                break
            if not chunk:
                break
            shown += chunk
        elif process.poll() is not None:
            break
        if pending and pending[0][0] in shown[answered_up_to:]:
            _, answer = pending.pop(0)
            answered_up_to = len(shown)
            os.write(main_fd, (answer + "\n").encode())
    os.close(main_fd)
    return process.wait(timeout=60), shown


def test_passphrase_asked_twice_on_terminal(thin_pool, lvmvol_config):
    import sys

    base = [sys.executable, "-m", "lvmvol", "--config", str(lvmvol_config.path)]

    code, shown = run_on_terminal(
        [*base, "volume", "create", "typed", "--size", "64M", "--passphrase"],
        [("Passphrase:", "typed secret"), ("Repeat for confirmation:", "typed secret")],
    )

    assert code == 0, shown
    assert "typed secret" not in shown
    device = lv_row(thin_pool.vg, "typed")["lv_dm_path"]
    check = run_command(["cryptsetup", "open", "--test-passphrase", "--key-file", "-", device], input="typed secret", check=False)
    assert check.returncode == 0
    code, shown = run_on_terminal(
        [*base, "volume", "mount", "typed", "--passphrase"], [("Passphrase:", "typed secret")]
    )
    assert code == 0, shown
    assert os.path.exists(f"/dev/mapper/luks-{thin_pool.vg}-typed")
    run_command([*base, "volume", "umount", "typed"])
