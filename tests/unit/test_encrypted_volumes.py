"""Encrypted volumes with a fake runner: create, mount, umount and rm on LUKS2.

``FakeKernel`` (luks_fakes.py) fakes the dm-crypt mappings and mounts.
lvmvol sees a mapping from the fake runner's ``cryptsetup open`` until a
``cryptsetup close`` removes it.
"""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from lvmvol import crypt
from lvmvol.crypt import Key
from lvmvol.errors import CommandError, Conflict, InvalidInput, NotFound
from lvmvol.mounts import parse_mountinfo
from lvmvol.ops import removal
from lvmvol.ops.context import Context
from lvmvol.ops.mounting import mount_volume, umount_volume
from lvmvol.ops.removal import remove_volumes
from lvmvol.ops.volumes import create_volume

from .conftest import MOUNTINFO
from .fakes import FakeRunner, Reply, lv_row, lvs_output, read_data, report_rows
from .luks_fakes import FakeKernel, encrypted_row, write_key_file

MiB = 1024 * 1024
PASSPHRASE = b"correct horse battery staple"
LV_DEVICE = "/dev/mapper/smokevg-web"
MAPPING = "luks-smokevg-web"
MAPPING_DEVICE = "/dev/mapper/luks-smokevg-web"
VOL1_DEVICE = "/dev/mapper/smokevg-vol1"
VOL1_MAPPING = "luks-smokevg-vol1"
VOL1_MAPPING_DEVICE = "/dev/mapper/luks-smokevg-vol1"
SNAP1_MAPPING = "luks-smokevg-snap1"
ACTIVATE_VOL1 = ["lvchange", "--activate", "y", "--ignoreactivationskip", "smokevg/vol1"]


@pytest.fixture
def kernel(fake_runner: FakeRunner, device_waits: list[str], monkeypatch: pytest.MonkeyPatch) -> FakeKernel:
    """The fake mappings and mounts, starting with the conftest mount table and nothing open.

    Holders are only looked up for removal checks and busy mappings, so
    they read as none here, not from the host's sysfs.
    """
    monkeypatch.setattr(removal, "mounts_in_other_namespaces", lambda major, minor: [])
    monkeypatch.setattr(removal.devices, "holders", lambda device: [])
    return FakeKernel(fake_runner, monkeypatch, parse_mountinfo(MOUNTINFO))


@pytest.fixture
def luks_ctx(ctx: Context, tmp_path: Path) -> Context:
    """The context with key_dir and mount_root in tmp_path, so no test touches /etc or /var."""
    ctx.config.key_dir = str(tmp_path / "keys")
    ctx.config.mount_root = str(tmp_path / "mnt")
    return ctx


@pytest.fixture
def smoke_runner(fake_runner: FakeRunner, kernel: FakeKernel) -> FakeRunner:
    fake_runner.reply_report("lvs", "lvs_smokevg.json")
    return fake_runner


@pytest.fixture
def user_key(tmp_path: Path) -> str:
    """A key file that an administrator brought: mode 0600, owned by the test user."""
    return write_key_file(tmp_path / "web.key")


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record close retries' delays instead of sleeping. Only lvmvol.crypt's ``time`` is replaced."""
    recorded: list[float] = []
    monkeypatch.setattr(crypt, "time", SimpleNamespace(sleep=recorded.append))
    return recorded


def serve_lvs(runner: FakeRunner, *rows: dict[str, str]) -> None:
    """Make lvs report the pool and ``rows``."""
    runner.reply("lvs", Reply(stdout=lvs_output(lv_row("pool"), *rows)))


def key_dir_key(ctx: Context, mapping: str = MAPPING) -> Path:
    return Path(ctx.config.key_dir) / f"{mapping}.key"


def added_tags(argv: list[str]) -> list[str]:
    return [argv[index + 1] for index, arg in enumerate(argv) if arg == "--addtag"]


# create


def test_create_luks_commands(luks_ctx: Context, smoke_runner: FakeRunner, user_key: str) -> None:
    create_volume(luks_ctx, "web", 100 * MiB, encrypt=True, key=Key(path=user_key))
    argvs = smoke_runner.executed_mutating()
    assert [argv[0] for argv in argvs] == ["lvcreate", "cryptsetup", "cryptsetup", "mkfs.ext4", "cryptsetup", "lvchange"]
    assert argvs[1] == [
        "cryptsetup", "luksFormat", "--type", "luks2", "--batch-mode", "--key-file", user_key, LV_DEVICE,
    ]
    assert argvs[2] == [
        "cryptsetup", "open", "--type", "luks2", "--batch-mode", "--key-file", user_key, LV_DEVICE, MAPPING,
    ]
    assert argvs[3] == ["mkfs.ext4", "-q", "-F", "-E", "nodiscard", MAPPING_DEVICE]
    assert argvs[4] == ["cryptsetup", "close", MAPPING]
    assert argvs[5] == ["lvchange", "--deltag", "lvmvol.incomplete", "smokevg/web"]


def test_create_luks_lvcreate_tags(luks_ctx: Context, smoke_runner: FakeRunner, user_key: str) -> None:
    create_volume(luks_ctx, "web", 100 * MiB, encrypt=True, key=Key(path=user_key))
    assert added_tags(smoke_runner.calls_of("lvcreate")[0].argv) == [
        "lvmvol.volume", "lvmvol.incomplete", "lvmvol.fs=ext4", "lvmvol.crypt=luks2", f"lvmvol.key={user_key}",
    ]


def test_create_luks_waits(luks_ctx: Context, smoke_runner: FakeRunner, user_key: str, device_waits: list[str]) -> None:
    create_volume(luks_ctx, "web", 100 * MiB, encrypt=True, key=Key(path=user_key))
    assert device_waits == [LV_DEVICE, MAPPING_DEVICE]


def test_create_luks_leaves_mapping_closed(
    luks_ctx: Context, smoke_runner: FakeRunner, kernel: FakeKernel, user_key: str
) -> None:
    create_volume(luks_ctx, "web", 100 * MiB, encrypt=True, key=Key(path=user_key))
    assert kernel.mappings == {}


def test_create_luks_details(luks_ctx: Context, smoke_runner: FakeRunner, user_key: str) -> None:
    outcome = create_volume(luks_ctx, "web", 100 * MiB, encrypt=True, key=Key(path=user_key))
    assert outcome.changed is True
    assert outcome.details["encrypted"] is True
    assert outcome.details["key_source"] == user_key
    assert outcome.details["device"] == LV_DEVICE


def test_create_luks_user_key_default_pbkdf(luks_ctx: Context, smoke_runner: FakeRunner, user_key: str) -> None:
    create_volume(luks_ctx, "web", 100 * MiB, encrypt=True, key=Key(path=user_key))
    assert "--pbkdf" not in smoke_runner.executed_mutating()[1]


def test_create_luks_generated_key(luks_ctx: Context, smoke_runner: FakeRunner) -> None:
    outcome = create_volume(luks_ctx, "web", 100 * MiB, encrypt=True)
    key_file = key_dir_key(luks_ctx)
    assert key_file.is_file()
    assert len(key_file.read_bytes()) == 64
    assert (key_file.stat().st_mode & 0o777) == 0o400
    assert (key_file.parent.stat().st_mode & 0o777) == 0o700
    assert outcome.details["key_source"] == str(key_file)


def test_create_luks_generated_key_tags(luks_ctx: Context, smoke_runner: FakeRunner) -> None:
    create_volume(luks_ctx, "web", 100 * MiB, encrypt=True)
    volume_tags = added_tags(smoke_runner.calls_of("lvcreate")[0].argv)
    assert f"lvmvol.key={key_dir_key(luks_ctx)}" in volume_tags
    assert "lvmvol.keygen=1" in volume_tags


def test_create_luks_generated_key_pbkdf(luks_ctx: Context, smoke_runner: FakeRunner) -> None:
    create_volume(luks_ctx, "web", 100 * MiB, encrypt=True)
    luks_format = smoke_runner.executed_mutating()[1]
    assert luks_format == [
        "cryptsetup", "luksFormat", "--type", "luks2", "--batch-mode", "--key-file", str(key_dir_key(luks_ctx)),
        "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000", LV_DEVICE,
    ]


def test_create_luks_allow_discards(luks_ctx: Context, smoke_runner: FakeRunner, user_key: str) -> None:
    create_volume(luks_ctx, "web", 100 * MiB, encrypt=True, key=Key(path=user_key), allow_discards=True)
    assert "lvmvol.discards=1" in added_tags(smoke_runner.calls_of("lvcreate")[0].argv)
    assert smoke_runner.executed_mutating()[2] == [
        "cryptsetup", "open", "--type", "luks2", "--batch-mode", "--key-file", user_key, "--allow-discards",
        LV_DEVICE, MAPPING,
    ]


def test_create_luks_no_discards_default(luks_ctx: Context, smoke_runner: FakeRunner, user_key: str) -> None:
    create_volume(luks_ctx, "web", 100 * MiB, encrypt=True, key=Key(path=user_key))
    assert "lvmvol.discards=1" not in added_tags(smoke_runner.calls_of("lvcreate")[0].argv)
    assert "--allow-discards" not in smoke_runner.executed_mutating()[2]


def test_create_luks_passphrase_stdin(luks_ctx: Context, smoke_runner: FakeRunner) -> None:
    create_volume(luks_ctx, "web", 100 * MiB, encrypt=True, key=Key(passphrase=PASSPHRASE))
    with_input = [(call.argv[1], call.input) for call in smoke_runner.calls if call.input is not None]
    assert with_input == [("luksFormat", PASSPHRASE), ("open", PASSPHRASE)]
    assert smoke_runner.calls_of("cryptsetup")[0].argv[5:7] == ["--key-file", "-"]


def test_create_luks_passphrase_not_in_argv(luks_ctx: Context, smoke_runner: FakeRunner) -> None:
    create_volume(luks_ctx, "web", 100 * MiB, encrypt=True, key=Key(passphrase=PASSPHRASE))
    for call in smoke_runner.calls:
        assert "horse" not in " ".join(call.argv)
    for result in smoke_runner.history:
        assert "horse" not in " ".join(result.argv)


def test_create_luks_passphrase_tags(luks_ctx: Context, smoke_runner: FakeRunner) -> None:
    create_volume(luks_ctx, "web", 100 * MiB, encrypt=True, key=Key(passphrase=PASSPHRASE))
    volume_tags = added_tags(smoke_runner.calls_of("lvcreate")[0].argv)
    assert "lvmvol.key=passphrase" in volume_tags
    assert "lvmvol.keygen=1" not in volume_tags


def test_create_luks_passphrase_no_key_file(luks_ctx: Context, smoke_runner: FakeRunner) -> None:
    create_volume(luks_ctx, "web", 100 * MiB, encrypt=True, key=Key(passphrase=PASSPHRASE))
    assert not Path(luks_ctx.config.key_dir).exists()


def test_create_luks_mkfs_failure_undoes(luks_ctx: Context, smoke_runner: FakeRunner, kernel: FakeKernel) -> None:
    smoke_runner.reply("mkfs.ext4", Reply(returncode=1, stderr="mkfs.ext4: Device size reported to be zero.\n"))
    with pytest.raises(CommandError):
        create_volume(luks_ctx, "web", 100 * MiB, encrypt=True)
    argvs = [call.argv for call in smoke_runner.calls]
    assert argvs[-3][0] == "mkfs.ext4"
    assert argvs[-2] == ["cryptsetup", "close", MAPPING]
    assert argvs[-1] == ["lvremove", "--yes", "smokevg/web"]
    assert kernel.mappings == {}


def test_create_luks_mkfs_failure_deletes_key(luks_ctx: Context, smoke_runner: FakeRunner) -> None:
    smoke_runner.reply("mkfs.ext4", Reply(returncode=1))
    with pytest.raises(CommandError):
        create_volume(luks_ctx, "web", 100 * MiB, encrypt=True)
    assert not key_dir_key(luks_ctx).exists()


def test_create_luks_mkfs_failure_keeps_user_key(luks_ctx: Context, smoke_runner: FakeRunner, user_key: str) -> None:
    smoke_runner.reply("mkfs.ext4", Reply(returncode=1))
    with pytest.raises(CommandError):
        create_volume(luks_ctx, "web", 100 * MiB, encrypt=True, key=Key(path=user_key))
    assert Path(user_key).is_file()
    assert "lvremove" in smoke_runner.commands()


def test_create_luks_format_failure_undoes(luks_ctx: Context, smoke_runner: FakeRunner) -> None:
    smoke_runner.reply("cryptsetup", Reply(returncode=1, stderr="Cannot format device smokevg-web in use.\n"))
    with pytest.raises(CommandError):
        create_volume(luks_ctx, "web", 100 * MiB, encrypt=True)
    # No mapping was opened, so there is none to close.
    assert [call.argv[:2] for call in smoke_runner.calls[1:]] == [
        ["lvcreate", "--type"],
        ["cryptsetup", "luksFormat"],
        ["lvremove", "--yes"],
    ]
    assert not key_dir_key(luks_ctx).exists()


def test_create_key_without_encrypt(luks_ctx: Context, smoke_runner: FakeRunner, user_key: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        create_volume(luks_ctx, "web", 100 * MiB, key=Key(path=user_key))
    assert "a key file or passphrase needs --luks" in str(raised.value)
    assert smoke_runner.calls == []


def test_create_discards_without_encrypt(luks_ctx: Context, smoke_runner: FakeRunner) -> None:
    with pytest.raises(InvalidInput) as raised:
        create_volume(luks_ctx, "web", 100 * MiB, allow_discards=True)
    assert "--allow-discards applies to encrypted volumes; pass --luks too" in str(raised.value)
    assert smoke_runner.calls == []


def test_create_luks_xfs_header_room(luks_ctx: Context, smoke_runner: FakeRunner) -> None:
    # The LUKS2 header takes 16 MiB, so 300 MiB leaves XFS 284 MiB, below its minimum.
    with pytest.raises(InvalidInput) as raised:
        create_volume(luks_ctx, "web", 300 * MiB, filesystem="xfs", encrypt=True)
    assert "the volume would be 284.0 MiB" in str(raised.value)
    assert smoke_runner.calls == []
    assert not Path(luks_ctx.config.key_dir).exists()


def test_create_luks_xfs_fits(luks_ctx: Context, smoke_runner: FakeRunner) -> None:
    create_volume(luks_ctx, "web", 316 * MiB, filesystem="xfs", encrypt=True)
    assert smoke_runner.calls_of("mkfs.xfs")[0].argv[-1] == MAPPING_DEVICE


def test_create_luks_same_spec_unchanged(luks_ctx: Context, fake_runner: FakeRunner, kernel: FakeKernel, user_key: str) -> None:
    serve_lvs(fake_runner, encrypted_row("vol1", user_key))
    outcome = create_volume(luks_ctx, "vol1", 300 * MiB, encrypt=True)
    assert outcome.changed is False
    assert outcome.details["key_source"] == user_key
    assert fake_runner.commands() == ["lvs"]


def test_create_luks_same_key_unchanged(luks_ctx: Context, fake_runner: FakeRunner, kernel: FakeKernel, user_key: str) -> None:
    serve_lvs(fake_runner, encrypted_row("vol1", user_key))
    outcome = create_volume(luks_ctx, "vol1", 300 * MiB, encrypt=True, key=Key(path=user_key))
    assert outcome.changed is False
    assert fake_runner.commands() == ["lvs"]


def test_create_luks_same_spec_no_key_file(luks_ctx: Context, fake_runner: FakeRunner, kernel: FakeKernel, user_key: str) -> None:
    serve_lvs(fake_runner, encrypted_row("vol1", user_key))
    create_volume(luks_ctx, "vol1", 300 * MiB, encrypt=True)
    assert not Path(luks_ctx.config.key_dir).exists()


def test_create_luks_other_key_conflict(
    luks_ctx: Context, fake_runner: FakeRunner, kernel: FakeKernel, user_key: str, tmp_path: Path
) -> None:
    other_key = write_key_file(tmp_path / "other.key")
    serve_lvs(fake_runner, encrypted_row("vol1", user_key))
    with pytest.raises(Conflict) as raised:
        create_volume(luks_ctx, "vol1", 300 * MiB, encrypt=True, key=Key(path=other_key))
    assert f"key {user_key}, not {other_key}" in str(raised.value)
    assert fake_runner.executed_mutating() == []


def test_create_luks_passphrase_over_key_file(luks_ctx: Context, fake_runner: FakeRunner, kernel: FakeKernel, user_key: str) -> None:
    serve_lvs(fake_runner, encrypted_row("vol1", user_key))
    with pytest.raises(Conflict) as raised:
        create_volume(luks_ctx, "vol1", 300 * MiB, encrypt=True, key=Key(passphrase=PASSPHRASE))
    assert f"key {user_key}, not passphrase" in str(raised.value)
    assert fake_runner.executed_mutating() == []


def test_create_luks_over_plain_conflict(luks_ctx: Context, smoke_runner: FakeRunner) -> None:
    with pytest.raises(Conflict) as raised:
        create_volume(luks_ctx, "vol1", 300 * MiB, encrypt=True)
    assert "not encrypted" in str(raised.value)
    assert smoke_runner.executed_mutating() == []
    assert not Path(luks_ctx.config.key_dir).exists()


def test_create_plain_over_luks_conflict(luks_ctx: Context, fake_runner: FakeRunner, kernel: FakeKernel, user_key: str) -> None:
    serve_lvs(fake_runner, encrypted_row("vol1", user_key))
    with pytest.raises(Conflict) as raised:
        create_volume(luks_ctx, "vol1", 300 * MiB)
    assert "exists with another specification: encrypted" in str(raised.value)
    assert fake_runner.executed_mutating() == []


def test_create_luks_dry_run(luks_ctx: Context, smoke_runner: FakeRunner, device_waits: list[str]) -> None:
    smoke_runner.dry_run = True
    outcome = create_volume(luks_ctx, "web", 100 * MiB, encrypt=True)
    assert outcome.changed is True
    assert smoke_runner.executed_mutating() == []
    skipped = [call.argv[:2] for call in smoke_runner.calls if call.dry_run]
    assert skipped == [
        ["lvcreate", "--type"],
        ["cryptsetup", "luksFormat"],
        ["cryptsetup", "open"],
        ["mkfs.ext4", "-q"],
        ["cryptsetup", "close"],
        ["lvchange", "--deltag"],
    ]
    assert device_waits == []


def test_create_luks_dry_run_no_key_file(luks_ctx: Context, smoke_runner: FakeRunner) -> None:
    smoke_runner.dry_run = True
    outcome = create_volume(luks_ctx, "web", 100 * MiB, encrypt=True)
    assert not Path(luks_ctx.config.key_dir).exists()
    # The path the key would get is still reported and recorded.
    assert outcome.details["key_source"] == str(key_dir_key(luks_ctx))


def test_create_luks_dry_run_hides_passphrase(
    luks_ctx: Context, smoke_runner: FakeRunner, caplog: pytest.LogCaptureFixture
) -> None:
    smoke_runner.dry_run = True
    caplog.set_level(logging.DEBUG, logger="lvmvol")
    create_volume(luks_ctx, "web", 100 * MiB, encrypt=True, key=Key(passphrase=PASSPHRASE))
    assert "would run: cryptsetup luksFormat --type luks2 --batch-mode --key-file - " in caplog.text
    assert "horse" not in caplog.text


def test_create_reuses_unrecorded_key(luks_ctx: Context, smoke_runner: FakeRunner) -> None:
    # A create interrupted after it wrote the key file and before lvcreate
    # left this file, and no volume records it.
    Path(luks_ctx.config.key_dir).mkdir(mode=0o700)
    left_over = write_key_file(key_dir_key(luks_ctx), mode=0o400, data=b"x" * 64)
    outcome = create_volume(luks_ctx, "web", 100 * MiB, encrypt=True)
    assert outcome.details["key_source"] == left_over
    assert Path(left_over).read_bytes() == b"x" * 64
    assert "lvmvol.keygen=1" in added_tags(smoke_runner.calls_of("lvcreate")[0].argv)


def test_create_key_recorded_by_snapshot(luks_ctx: Context, fake_runner: FakeRunner, kernel: FakeKernel) -> None:
    # The snapshot of a removed volume "web" still records web's generated key.
    Path(luks_ctx.config.key_dir).mkdir(mode=0o700)
    recorded = write_key_file(key_dir_key(luks_ctx), mode=0o400, data=b"x" * 64)
    serve_lvs(fake_runner, encrypted_row("snap1", recorded, generated=True))
    with pytest.raises(Conflict) as raised:
        create_volume(luks_ctx, "web", 100 * MiB, encrypt=True)
    assert "never overwrites a key" in str(raised.value)
    assert fake_runner.executed_mutating() == []
    assert Path(recorded).read_bytes() == b"x" * 64


def test_create_open_key_dir_refused(luks_ctx: Context, smoke_runner: FakeRunner) -> None:
    Path(luks_ctx.config.key_dir).mkdir(mode=0o755)
    Path(luks_ctx.config.key_dir).chmod(0o755)
    with pytest.raises(InvalidInput) as raised:
        create_volume(luks_ctx, "web", 100 * MiB, encrypt=True)
    assert "chmod 700" in str(raised.value)
    assert smoke_runner.executed_mutating() == []


def test_create_finishes_incomplete_luks(
    luks_ctx: Context, fake_runner: FakeRunner, kernel: FakeKernel, device_waits: list[str]
) -> None:
    Path(luks_ctx.config.key_dir).mkdir(mode=0o700)
    key_file = write_key_file(key_dir_key(luks_ctx, VOL1_MAPPING), mode=0o400)
    serve_lvs(fake_runner, encrypted_row("vol1", key_file, generated=True, incomplete=True))
    outcome = create_volume(luks_ctx, "vol1", 300 * MiB, encrypt=True)
    assert outcome.changed is True
    # isLuks finds the header, so it is not written again.
    assert [call.argv for call in fake_runner.calls[1:]] == [
        ACTIVATE_VOL1,
        ["cryptsetup", "isLuks", VOL1_DEVICE],
        ["cryptsetup", "open", "--type", "luks2", "--batch-mode", "--key-file", key_file, VOL1_DEVICE, VOL1_MAPPING],
        ["mkfs.ext4", "-q", "-F", "-E", "nodiscard", VOL1_MAPPING_DEVICE],
        ["cryptsetup", "close", VOL1_MAPPING],
        ["lvchange", "--deltag", "lvmvol.incomplete", "smokevg/vol1"],
    ]
    assert kernel.mappings == {}


def test_create_incomplete_without_header(luks_ctx: Context, fake_runner: FakeRunner, kernel: FakeKernel) -> None:
    Path(luks_ctx.config.key_dir).mkdir(mode=0o700)
    key_file = write_key_file(key_dir_key(luks_ctx, VOL1_MAPPING), mode=0o400)
    serve_lvs(fake_runner, encrypted_row("vol1", key_file, generated=True, incomplete=True))
    fake_runner.reply("cryptsetup", Reply(returncode=1), Reply(returncode=0))
    create_volume(luks_ctx, "vol1", 300 * MiB, encrypt=True)
    assert fake_runner.calls_of("cryptsetup")[1].argv == [
        "cryptsetup", "luksFormat", "--type", "luks2", "--batch-mode", "--key-file", key_file,
        "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000", VOL1_DEVICE,
    ]


def test_create_incomplete_passphrase_needs_key(luks_ctx: Context, fake_runner: FakeRunner, kernel: FakeKernel) -> None:
    serve_lvs(fake_runner, encrypted_row("vol1", "passphrase", incomplete=True))
    with pytest.raises(InvalidInput) as raised:
        create_volume(luks_ctx, "vol1", 300 * MiB, encrypt=True)
    assert "--passphrase" in str(raised.value)
    assert fake_runner.executed_mutating() == []


def test_create_incomplete_failure_keeps_key(luks_ctx: Context, fake_runner: FakeRunner, kernel: FakeKernel) -> None:
    Path(luks_ctx.config.key_dir).mkdir(mode=0o700)
    key_file = write_key_file(key_dir_key(luks_ctx, VOL1_MAPPING), mode=0o400)
    serve_lvs(fake_runner, encrypted_row("vol1", key_file, generated=True, incomplete=True))
    fake_runner.reply("mkfs.ext4", Reply(returncode=1))
    with pytest.raises(CommandError):
        create_volume(luks_ctx, "vol1", 300 * MiB, encrypt=True)
    # A re-run does not undo, so the volume and its recorded key stay for the next try.
    assert "lvremove" not in fake_runner.commands()
    assert Path(key_file).is_file()


# mount


def test_mount_luks_recorded_key(
    luks_ctx: Context, fake_runner: FakeRunner, kernel: FakeKernel, user_key: str, tmp_path: Path
) -> None:
    serve_lvs(fake_runner, encrypted_row("vol1", user_key))
    outcome = mount_volume(luks_ctx, "vol1")
    target = str(tmp_path / "mnt" / "vol1")
    assert outcome.changed is True
    assert fake_runner.executed_mutating() == [
        ACTIVATE_VOL1,
        ["cryptsetup", "open", "--type", "luks2", "--batch-mode", "--key-file", user_key, VOL1_DEVICE, VOL1_MAPPING],
        ["mount", "-t", "ext4", "-o", "nodev,nosuid,rw", VOL1_MAPPING_DEVICE, target],
    ]
    assert list(kernel.mappings) == [VOL1_MAPPING]


def test_mount_luks_waits(luks_ctx: Context, fake_runner: FakeRunner, kernel: FakeKernel, user_key: str, device_waits: list[str]) -> None:
    serve_lvs(fake_runner, encrypted_row("vol1", user_key))
    mount_volume(luks_ctx, "vol1")
    assert device_waits == [VOL1_DEVICE, VOL1_MAPPING_DEVICE]


def test_mount_luks_generated_key(luks_ctx: Context, fake_runner: FakeRunner, kernel: FakeKernel) -> None:
    Path(luks_ctx.config.key_dir).mkdir(mode=0o700)
    key_file = write_key_file(key_dir_key(luks_ctx, VOL1_MAPPING), mode=0o400)
    serve_lvs(fake_runner, encrypted_row("vol1", key_file, generated=True))
    mount_volume(luks_ctx, "vol1")
    open_argv = fake_runner.calls_of("cryptsetup")[0].argv
    assert open_argv[5:7] == ["--key-file", key_file]
    assert "--pbkdf" not in open_argv


def test_mount_luks_recorded_discards(luks_ctx: Context, fake_runner: FakeRunner, kernel: FakeKernel, user_key: str) -> None:
    serve_lvs(fake_runner, encrypted_row("vol1", user_key, discards=True))
    mount_volume(luks_ctx, "vol1")
    assert "--allow-discards" in fake_runner.calls_of("cryptsetup")[0].argv


def test_mount_luks_discards_option(luks_ctx: Context, fake_runner: FakeRunner, kernel: FakeKernel, user_key: str) -> None:
    serve_lvs(fake_runner, encrypted_row("vol1", user_key))
    mount_volume(luks_ctx, "vol1", allow_discards=True)
    assert "--allow-discards" in fake_runner.calls_of("cryptsetup")[0].argv


def test_mount_luks_no_discards_default(luks_ctx: Context, fake_runner: FakeRunner, kernel: FakeKernel, user_key: str) -> None:
    serve_lvs(fake_runner, encrypted_row("vol1", user_key))
    mount_volume(luks_ctx, "vol1")
    assert "--allow-discards" not in fake_runner.calls_of("cryptsetup")[0].argv


def test_mount_luks_read_only_lv(luks_ctx: Context, fake_runner: FakeRunner, kernel: FakeKernel, user_key: str) -> None:
    row = encrypted_row("vol1", user_key)
    row["lv_attr"] = "Vri---tz-k"
    serve_lvs(fake_runner, row)
    mount_volume(luks_ctx, "vol1")
    assert "--readonly" in fake_runner.calls_of("cryptsetup")[0].argv


def test_mount_luks_passphrase(luks_ctx: Context, fake_runner: FakeRunner, kernel: FakeKernel) -> None:
    serve_lvs(fake_runner, encrypted_row("vol1", "passphrase"))
    mount_volume(luks_ctx, "vol1", key=Key(passphrase=PASSPHRASE))
    open_call = fake_runner.calls_of("cryptsetup")[0]
    assert open_call.argv[5:7] == ["--key-file", "-"]
    assert open_call.input == PASSPHRASE


def test_mount_luks_key_file_override(
    luks_ctx: Context, fake_runner: FakeRunner, kernel: FakeKernel, user_key: str, tmp_path: Path
) -> None:
    other_key = write_key_file(tmp_path / "other.key")
    serve_lvs(fake_runner, encrypted_row("vol1", user_key))
    mount_volume(luks_ctx, "vol1", key=Key(path=other_key))
    assert fake_runner.calls_of("cryptsetup")[0].argv[5:7] == ["--key-file", other_key]


def test_mount_passphrase_volume_needs_key(luks_ctx: Context, fake_runner: FakeRunner, kernel: FakeKernel) -> None:
    # snap1 is active, so no activation comes before the key check.
    serve_lvs(fake_runner, encrypted_row("snap1", "passphrase"))
    with pytest.raises(InvalidInput) as raised:
        mount_volume(luks_ctx, "snap1")
    message = str(raised.value)
    assert "volume smokevg/snap1 is encrypted with a passphrase" in message
    assert "--passphrase" in message
    assert "--passphrase-stdin" in message
    assert fake_runner.executed_mutating() == []


def test_mount_missing_key_changes_nothing(luks_ctx: Context, fake_runner: FakeRunner, kernel: FakeKernel) -> None:
    serve_lvs(fake_runner, encrypted_row("vol1", "passphrase"))
    with pytest.raises(InvalidInput):
        mount_volume(luks_ctx, "vol1")
    assert fake_runner.executed_mutating() == []


def test_mount_recorded_key_missing(luks_ctx: Context, fake_runner: FakeRunner, kernel: FakeKernel, tmp_path: Path) -> None:
    missing = str(tmp_path / "gone.key")
    serve_lvs(fake_runner, encrypted_row("snap1", missing))
    with pytest.raises(NotFound) as raised:
        mount_volume(luks_ctx, "snap1")
    assert f"key file {missing} not found" in str(raised.value)
    assert fake_runner.executed_mutating() == []


def test_mount_recorded_key_unsafe(luks_ctx: Context, fake_runner: FakeRunner, kernel: FakeKernel, tmp_path: Path) -> None:
    readable = write_key_file(tmp_path / "readable.key", mode=0o644)
    serve_lvs(fake_runner, encrypted_row("snap1", readable))
    with pytest.raises(InvalidInput) as raised:
        mount_volume(luks_ctx, "snap1")
    assert f"run: chmod 600 {readable}" in str(raised.value)
    assert fake_runner.executed_mutating() == []


def test_mount_key_on_plain_volume(luks_ctx: Context, smoke_runner: FakeRunner, user_key: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        mount_volume(luks_ctx, "vol1", key=Key(path=user_key))
    assert "volume smokevg/vol1 is not encrypted" in str(raised.value)
    assert smoke_runner.executed_mutating() == []


def test_mount_discards_on_plain_volume(luks_ctx: Context, smoke_runner: FakeRunner) -> None:
    with pytest.raises(InvalidInput):
        mount_volume(luks_ctx, "vol1", allow_discards=True)
    assert smoke_runner.executed_mutating() == []


def test_mount_failure_closes_mapping(
    luks_ctx: Context, fake_runner: FakeRunner, kernel: FakeKernel, user_key: str, device_waits: list[str]
) -> None:
    serve_lvs(fake_runner, encrypted_row("vol1", user_key))
    fake_runner.reply("mount", Reply(returncode=32, stderr="mount: wrong fs type, bad option, bad superblock\n"))
    with pytest.raises(CommandError) as raised:
        mount_volume(luks_ctx, "vol1")
    assert raised.value.returncode == 32
    assert fake_runner.executed_mutating()[-1] == ["cryptsetup", "close", VOL1_MAPPING]
    assert kernel.mappings == {}
    assert device_waits[-1] == VOL1_MAPPING_DEVICE


def test_mount_failure_keeps_open_mapping(luks_ctx: Context, fake_runner: FakeRunner, kernel: FakeKernel, user_key: str) -> None:
    # The mapping was open before this mount, so the failed mount leaves it open.
    kernel.open_mapping(SNAP1_MAPPING)
    serve_lvs(fake_runner, encrypted_row("snap1", user_key))
    fake_runner.reply("mount", Reply(returncode=32))
    with pytest.raises(CommandError):
        mount_volume(luks_ctx, "snap1")
    assert "cryptsetup" not in fake_runner.commands()
    assert list(kernel.mappings) == [SNAP1_MAPPING]


def test_mount_open_mapping_reused(luks_ctx: Context, fake_runner: FakeRunner, kernel: FakeKernel, user_key: str, tmp_path: Path) -> None:
    kernel.open_mapping(SNAP1_MAPPING)
    serve_lvs(fake_runner, encrypted_row("snap1", user_key))
    mount_volume(luks_ctx, "snap1")
    assert fake_runner.executed_mutating() == [
        ["mount", "-t", "ext4", "-o", "nodev,nosuid,ro", "/dev/mapper/luks-smokevg-snap1", str(tmp_path / "mnt" / "snap1")],
    ]


def test_mount_luks_already_mounted(luks_ctx: Context, fake_runner: FakeRunner, kernel: FakeKernel, user_key: str, tmp_path: Path) -> None:
    target = str(tmp_path / "mnt" / "snap1")
    kernel.mount_mapping(SNAP1_MAPPING, target)
    serve_lvs(fake_runner, encrypted_row("snap1", user_key))
    outcome = mount_volume(luks_ctx, "snap1")
    assert outcome.changed is False
    assert fake_runner.executed_mutating() == []


def test_mount_luks_dry_run(luks_ctx: Context, fake_runner: FakeRunner, kernel: FakeKernel, user_key: str) -> None:
    fake_runner.dry_run = True
    serve_lvs(fake_runner, encrypted_row("vol1", user_key))
    mount_volume(luks_ctx, "vol1")
    skipped = [call.argv[:2] for call in fake_runner.calls if call.dry_run]
    assert skipped == [["lvchange", "--activate"], ["cryptsetup", "open"], ["mount", "-t"]]
    assert kernel.mappings == {}


# umount


def test_umount_luks_closes_mapping(
    luks_ctx: Context, fake_runner: FakeRunner, kernel: FakeKernel, user_key: str, tmp_path: Path, device_waits: list[str]
) -> None:
    target = str(tmp_path / "mnt" / "snap1")
    kernel.mount_mapping(SNAP1_MAPPING, target)
    serve_lvs(fake_runner, encrypted_row("snap1", user_key))
    outcome = umount_volume(luks_ctx, "snap1")
    assert fake_runner.executed_mutating() == [["umount", target], ["cryptsetup", "close", SNAP1_MAPPING]]
    assert outcome.changed is True
    assert outcome.details == {"mountpoints": [target], "persistent_mountpoint": None, "mapping_closed": True}
    assert kernel.mappings == {}
    assert device_waits == ["/dev/mapper/luks-smokevg-snap1"]


def test_umount_luks_open_not_mounted(luks_ctx: Context, fake_runner: FakeRunner, kernel: FakeKernel, user_key: str) -> None:
    kernel.open_mapping(SNAP1_MAPPING)
    serve_lvs(fake_runner, encrypted_row("snap1", user_key))
    outcome = umount_volume(luks_ctx, "snap1")
    assert fake_runner.executed_mutating() == [["cryptsetup", "close", SNAP1_MAPPING]]
    assert outcome.changed is True


def test_umount_luks_closed_unchanged(luks_ctx: Context, fake_runner: FakeRunner, kernel: FakeKernel, user_key: str) -> None:
    serve_lvs(fake_runner, encrypted_row("snap1", user_key))
    outcome = umount_volume(luks_ctx, "snap1")
    assert outcome.changed is False
    assert outcome.details["mapping_closed"] is False
    assert fake_runner.executed_mutating() == []


def test_umount_luks_busy_mapping(
    luks_ctx: Context,
    fake_runner: FakeRunner,
    kernel: FakeKernel,
    user_key: str,
    sleeps: list[float],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kernel.open_mapping(SNAP1_MAPPING)
    serve_lvs(fake_runner, encrypted_row("snap1", user_key))
    fake_runner.reply("cryptsetup", Reply(returncode=5, stderr="Device luks-smokevg-snap1 is still in use.\n"))
    monkeypatch.setattr(removal.devices, "holders", lambda device: ["dm-30"])
    with pytest.raises(Conflict) as raised:
        umount_volume(luks_ctx, "snap1")
    message = str(raised.value)
    assert "dm-crypt mapping luks-smokevg-snap1 of volume smokevg/snap1 is busy (held by dm-30)" in message
    assert "fuser -vm /dev/mapper/luks-smokevg-snap1" in message
    assert len(fake_runner.calls_of("cryptsetup")) == crypt.CLOSE_ATTEMPTS
    assert list(kernel.mappings) == [SNAP1_MAPPING]


# rm


def test_remove_luks_erases_first(luks_ctx: Context, fake_runner: FakeRunner, kernel: FakeKernel, user_key: str) -> None:
    serve_lvs(fake_runner, encrypted_row("vol1", user_key))
    outcomes = remove_volumes(luks_ctx, ["vol1"])
    assert fake_runner.executed_mutating() == [
        ACTIVATE_VOL1,
        ["cryptsetup", "erase", "--batch-mode", VOL1_DEVICE],
        ["lvremove", "--yes", "smokevg/vol1"],
    ]
    assert outcomes[0].details["key_slots_erased"] is True


def test_remove_luks_checks_header(luks_ctx: Context, fake_runner: FakeRunner, kernel: FakeKernel, user_key: str) -> None:
    serve_lvs(fake_runner, encrypted_row("vol1", user_key))
    remove_volumes(luks_ctx, ["vol1"])
    assert [call.argv for call in fake_runner.calls_of("cryptsetup")][0] == ["cryptsetup", "isLuks", VOL1_DEVICE]


def test_remove_luks_no_header(luks_ctx: Context, fake_runner: FakeRunner, kernel: FakeKernel, user_key: str) -> None:
    # A create that stopped before luksFormat left no header to erase.
    serve_lvs(fake_runner, encrypted_row("vol1", user_key))
    fake_runner.reply("cryptsetup", Reply(returncode=1))
    outcomes = remove_volumes(luks_ctx, ["vol1"])
    assert fake_runner.executed_mutating() == [ACTIVATE_VOL1, ["lvremove", "--yes", "smokevg/vol1"]]
    assert "key_slots_erased" not in outcomes[0].details


def test_remove_luks_closes_mapping(luks_ctx: Context, fake_runner: FakeRunner, kernel: FakeKernel, user_key: str) -> None:
    kernel.open_mapping(SNAP1_MAPPING)
    serve_lvs(fake_runner, encrypted_row("snap1", user_key))
    remove_volumes(luks_ctx, ["snap1"])
    assert fake_runner.executed_mutating() == [
        ["cryptsetup", "close", SNAP1_MAPPING],
        ["cryptsetup", "erase", "--batch-mode", "/dev/mapper/smokevg-snap1"],
        ["lvremove", "--yes", "smokevg/snap1"],
    ]
    assert kernel.mappings == {}


def test_remove_luks_mounted_refused(luks_ctx: Context, fake_runner: FakeRunner, kernel: FakeKernel, user_key: str, tmp_path: Path) -> None:
    target = str(tmp_path / "mnt" / "snap1")
    kernel.mount_mapping(SNAP1_MAPPING, target)
    serve_lvs(fake_runner, encrypted_row("snap1", user_key))
    with pytest.raises(Conflict) as raised:
        remove_volumes(luks_ctx, ["snap1"])
    assert f"volume smokevg/snap1 is in use: mounted at {target}" in str(raised.value)
    assert fake_runner.executed_mutating() == []


def test_remove_luks_force(luks_ctx: Context, fake_runner: FakeRunner, kernel: FakeKernel, user_key: str, tmp_path: Path) -> None:
    target = str(tmp_path / "mnt" / "snap1")
    kernel.mount_mapping(SNAP1_MAPPING, target)
    serve_lvs(fake_runner, encrypted_row("snap1", user_key))
    remove_volumes(luks_ctx, ["snap1"], force=True, confirm=lambda question: True)
    assert fake_runner.executed_mutating() == [
        ["umount", target],
        ["cryptsetup", "close", SNAP1_MAPPING],
        ["cryptsetup", "erase", "--batch-mode", "/dev/mapper/smokevg-snap1"],
        ["lvremove", "--yes", "smokevg/snap1"],
    ]


def test_remove_luks_deletes_generated_key(luks_ctx: Context, fake_runner: FakeRunner, kernel: FakeKernel) -> None:
    Path(luks_ctx.config.key_dir).mkdir(mode=0o700)
    key_file = write_key_file(key_dir_key(luks_ctx, VOL1_MAPPING), mode=0o400)
    serve_lvs(fake_runner, encrypted_row("vol1", key_file, generated=True))
    outcomes = remove_volumes(luks_ctx, ["vol1"])
    assert not Path(key_file).exists()
    assert outcomes[0].details["key_file_removed"] is True


def test_remove_luks_key_kept_for_snapshot(luks_ctx: Context, fake_runner: FakeRunner, kernel: FakeKernel) -> None:
    Path(luks_ctx.config.key_dir).mkdir(mode=0o700)
    key_file = write_key_file(key_dir_key(luks_ctx, VOL1_MAPPING), mode=0o400)
    # snap1 inherited vol1's tags, key included.
    serve_lvs(
        fake_runner,
        encrypted_row("vol1", key_file, generated=True),
        encrypted_row("snap1", key_file, generated=True),
    )
    outcomes = remove_volumes(luks_ctx, ["vol1"])
    assert Path(key_file).is_file()
    assert outcomes[0].details["key_file_removed"] is False


def test_remove_luks_last_snapshot_deletes_key(luks_ctx: Context, fake_runner: FakeRunner, kernel: FakeKernel) -> None:
    Path(luks_ctx.config.key_dir).mkdir(mode=0o700)
    key_file = write_key_file(key_dir_key(luks_ctx, VOL1_MAPPING), mode=0o400)
    # vol1 is gone, so its snapshot is the last volume that records the key.
    serve_lvs(fake_runner, encrypted_row("snap1", key_file, generated=True))
    remove_volumes(luks_ctx, ["snap1"])
    assert not Path(key_file).exists()


def test_remove_luks_together_deletes_key(luks_ctx: Context, fake_runner: FakeRunner, kernel: FakeKernel) -> None:
    Path(luks_ctx.config.key_dir).mkdir(mode=0o700)
    key_file = write_key_file(key_dir_key(luks_ctx, VOL1_MAPPING), mode=0o400)
    serve_lvs(
        fake_runner,
        encrypted_row("vol1", key_file, generated=True),
        encrypted_row("snap1", key_file, generated=True),
    )
    remove_volumes(luks_ctx, ["snap1", "vol1"])
    assert not Path(key_file).exists()


def test_remove_luks_keeps_user_key(luks_ctx: Context, fake_runner: FakeRunner, kernel: FakeKernel, user_key: str) -> None:
    serve_lvs(fake_runner, encrypted_row("vol1", user_key))
    outcomes = remove_volumes(luks_ctx, ["vol1"])
    assert Path(user_key).is_file()
    assert "key_file_removed" not in outcomes[0].details


def test_remove_luks_dry_run(luks_ctx: Context, fake_runner: FakeRunner, kernel: FakeKernel) -> None:
    fake_runner.dry_run = True
    Path(luks_ctx.config.key_dir).mkdir(mode=0o700)
    key_file = write_key_file(key_dir_key(luks_ctx, VOL1_MAPPING), mode=0o400)
    serve_lvs(fake_runner, encrypted_row("vol1", key_file, generated=True))
    remove_volumes(luks_ctx, ["vol1"])
    assert fake_runner.executed_mutating() == []
    skipped = [call.argv[:2] for call in fake_runner.calls if call.dry_run]
    assert skipped == [["lvchange", "--activate"], ["cryptsetup", "erase"], ["lvremove", "--yes"]]
    assert Path(key_file).is_file()


def test_remove_luks_erase_failure_keeps_lv(luks_ctx: Context, fake_runner: FakeRunner, kernel: FakeKernel, user_key: str) -> None:
    serve_lvs(fake_runner, encrypted_row("vol1", user_key))
    fake_runner.reply("cryptsetup", Reply(returncode=0), Reply(returncode=1, stderr="Cannot erase.\n"))
    with pytest.raises(CommandError):
        remove_volumes(luks_ctx, ["vol1"])
    assert "lvremove" not in fake_runner.commands()


# volume create --mount -------------------------------------------------------


def created_web(smoke_runner: FakeRunner, key_source: str) -> None:
    """Make lvs return the report without web first, then with web finished, as create reads it before and mount after."""
    web = encrypted_row("vol1", key_source)
    web.update(lv_name="web", lv_dm_path=LV_DEVICE, lv_active="active")
    before = read_data("lvs_smokevg.json")
    after = lvs_output(*report_rows("lvs_smokevg.json", "lv"), web)
    smoke_runner.reply("lvs", Reply(stdout=before), Reply(stdout=after))


def test_create_mount_unlocks_once(
    luks_ctx: Context, smoke_runner: FakeRunner, kernel: FakeKernel, user_key: str, tmp_path: Path
) -> None:
    created_web(smoke_runner, user_key)

    outcome = create_volume(luks_ctx, "web", 100 * MiB, encrypt=True, key=Key(path=user_key), mount=True)

    argvs = smoke_runner.executed_mutating()
    assert [argv[:2] for argv in argvs] == [
        ["lvcreate", "--type"], ["cryptsetup", "luksFormat"], ["cryptsetup", "open"],
        ["mkfs.ext4", "-q"], ["lvchange", "--deltag"], ["mount", "-t"],
    ]
    assert argvs[-1][-2:] == [MAPPING_DEVICE, str(tmp_path / "mnt" / "web")]
    assert outcome.details["mountpoint"] == str(tmp_path / "mnt" / "web")
    assert list(kernel.mappings) == [MAPPING]


@pytest.mark.parametrize("mountpoint", ["relative/dir", "/proc/web", "/sys", ""])
def test_create_mount_bad_mountpoint_changes_nothing(
    luks_ctx: Context, smoke_runner: FakeRunner, user_key: str, mountpoint: str
) -> None:
    with pytest.raises(InvalidInput, match="mountpoint"):
        create_volume(
            luks_ctx, "web", 100 * MiB, encrypt=True, key=Key(path=user_key), mount=True, mountpoint=mountpoint
        )
    assert smoke_runner.executed_mutating() == []


def test_create_mount_kernel_filesystem_behind_symlink_changes_nothing(
    luks_ctx: Context, smoke_runner: FakeRunner, user_key: str, tmp_path: Path
) -> None:
    (tmp_path / "link").symlink_to("/proc")

    with pytest.raises(InvalidInput, match="under /proc"):
        create_volume(
            luks_ctx, "web", 100 * MiB, encrypt=True, key=Key(path=user_key), mount=True,
            mountpoint=str(tmp_path / "link" / "web"),
        )
    assert smoke_runner.executed_mutating() == []


def test_create_mount_under_a_file_changes_nothing(
    luks_ctx: Context, smoke_runner: FakeRunner, user_key: str, tmp_path: Path
) -> None:
    (tmp_path / "file").write_text("data")

    with pytest.raises(InvalidInput, match="under a file"):
        create_volume(
            luks_ctx, "web", 100 * MiB, encrypt=True, key=Key(path=user_key), mount=True,
            mountpoint=str(tmp_path / "file" / "web"),
        )
    assert smoke_runner.executed_mutating() == []


def test_create_mount_read_only_parent_changes_nothing(
    luks_ctx: Context, smoke_runner: FakeRunner, user_key: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Root passes every permission check, so the read-only filesystem is faked at access(2).
    read_only = tmp_path / "ro"
    read_only.mkdir()
    monkeypatch.setattr(os, "access", lambda path, mode: str(path) != str(read_only))

    with pytest.raises(InvalidInput, match="is not writable"):
        create_volume(
            luks_ctx, "web", 100 * MiB, encrypt=True, key=Key(path=user_key), mount=True,
            mountpoint=str(read_only / "srv" / "web"),
        )
    assert smoke_runner.executed_mutating() == []


def test_create_mount_non_empty_mountpoint_changes_nothing(
    luks_ctx: Context, smoke_runner: FakeRunner, user_key: str, tmp_path: Path
) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file").write_text("data")

    with pytest.raises(Conflict, match="not empty"):
        create_volume(luks_ctx, "web", 100 * MiB, encrypt=True, key=Key(path=user_key), mountpoint=str(tmp_path / "busy"), mount=True)
    assert smoke_runner.executed_mutating() == []


def test_create_mount_without_filesystem_refused(luks_ctx: Context, smoke_runner: FakeRunner) -> None:
    with pytest.raises(InvalidInput, match="no filesystem"):
        create_volume(luks_ctx, "raw", 100 * MiB, filesystem="none", mount=True)
    assert smoke_runner.executed_mutating() == []


def test_create_mount_failure_keeps_volume_and_closes_mapping(
    luks_ctx: Context, smoke_runner: FakeRunner, kernel: FakeKernel, user_key: str
) -> None:
    created_web(smoke_runner, user_key)
    smoke_runner.reply("mount", Reply(stderr="mount: wrong fs type, bad option", returncode=32))

    with pytest.raises(CommandError):
        create_volume(luks_ctx, "web", 100 * MiB, encrypt=True, key=Key(path=user_key), mount=True)

    assert kernel.mappings == {}
    assert smoke_runner.calls_of("lvremove") == []
    assert smoke_runner.executed_mutating()[-1] == ["cryptsetup", "close", MAPPING]


def test_create_mount_failure_removes_directories_it_made(
    luks_ctx: Context, smoke_runner: FakeRunner, kernel: FakeKernel, user_key: str, tmp_path: Path
) -> None:
    created_web(smoke_runner, user_key)
    smoke_runner.reply("mount", Reply(stderr="mount: wrong fs type, bad option", returncode=32))

    with pytest.raises(CommandError):
        create_volume(
            luks_ctx, "web", 100 * MiB, encrypt=True, key=Key(path=user_key), mount=True,
            mountpoint=str(tmp_path / "srv" / "data" / "web"),
        )

    assert sorted(path.name for path in tmp_path.iterdir()) == ["web.key"]


def test_create_mount_failure_names_generated_volume(
    luks_ctx: Context, smoke_runner: FakeRunner, kernel: FakeKernel, user_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without NAME, the error is the only place the administrator learns which volume was made.
    monkeypatch.setattr("lvmvol.ops.volumes.generate_volume_name", lambda: "web")
    created_web(smoke_runner, user_key)
    smoke_runner.reply("mount", Reply(stderr="mount: wrong fs type, bad option", returncode=32))

    with pytest.raises(CommandError) as raised:
        create_volume(luks_ctx, None, 100 * MiB, encrypt=True, key=Key(path=user_key), mount=True)

    assert "volume smokevg/web is kept, not mounted" in str(raised.value)
    assert f"lvmvol volume mount web {luks_ctx.config.mount_root}/web" in str(raised.value)


def test_create_mount_dry_run(luks_ctx: Context, smoke_runner: FakeRunner, user_key: str, tmp_path: Path) -> None:
    smoke_runner.dry_run = True

    outcome = create_volume(luks_ctx, "web", 100 * MiB, encrypt=True, key=Key(path=user_key), mount=True)

    assert smoke_runner.executed_mutating() == []
    assert outcome.details["mountpoint"] == str(tmp_path / "mnt" / "web")
    assert outcome.notes == [f"dry run: the volume would then be mounted at {tmp_path / 'mnt' / 'web'}"]
    # The same fields as a real --mount reports, so a script can read them from a dry run too.
    assert outcome.details["read_only"] is False
    assert "rw" in outcome.details["options"]


def test_create_mount_busy_mapping_keeps_error(
    luks_ctx: Context, smoke_runner: FakeRunner, kernel: FakeKernel, user_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("lvmvol.crypt.time.sleep", lambda seconds: None)
    created_web(smoke_runner, user_key)
    smoke_runner.reply("mount", Reply(stderr="mount: wrong fs type, bad option", returncode=32))
    smoke_runner.reply("cryptsetup close", Reply(stderr="Device luks-smokevg-web is still in use.", returncode=5))

    with pytest.raises(CommandError) as raised:
        create_volume(luks_ctx, "web", 100 * MiB, encrypt=True, key=Key(path=user_key), mount=True)

    assert raised.value.argv[0] == "mount"
    assert f"its mapping {MAPPING} is still open (cryptsetup failed with exit code 5" in str(raised.value)
    assert "lvmvol volume mount web" in str(raised.value)


def test_mount_mkdir_failure_cleans_up(
    luks_ctx: Context, fake_runner: FakeRunner, kernel: FakeKernel, user_key: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The parent was writable when checked, then became read-only before mkdir.
    serve_lvs(fake_runner, encrypted_row("vol1", user_key))

    def read_only_mkdir(path: object, mode: int = 0o777) -> None:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))

    monkeypatch.setattr("lvmvol.ops.mounting.os.mkdir", read_only_mkdir)
    with pytest.raises(InvalidInput, match="cannot create mountpoint .*/srv/vol1: Read-only file system"):
        mount_volume(luks_ctx, "vol1", str(tmp_path / "srv" / "vol1"))

    assert "mount" not in fake_runner.commands()
    assert fake_runner.executed_mutating()[-1] == ["cryptsetup", "close", VOL1_MAPPING]
    assert kernel.mappings == {}
    assert not (tmp_path / "srv").exists()


def test_mount_mkdir_race_conflict(
    luks_ctx: Context, fake_runner: FakeRunner, kernel: FakeKernel, user_key: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    serve_lvs(fake_runner, encrypted_row("vol1", user_key))

    real_mkdir = os.mkdir

    def raced_mkdir(path: object, mode: int = 0o777) -> None:
        real_mkdir(path)  # another program's directory, made just before lvmvol's mkdir
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(path))

    monkeypatch.setattr("lvmvol.ops.mounting.os.mkdir", raced_mkdir)
    with pytest.raises(Conflict, match="appeared while lvmvol was creating it"):
        mount_volume(luks_ctx, "vol1", str(tmp_path / "vol1"))
    assert kernel.mappings == {}
    assert (tmp_path / "vol1").is_dir()
