"""Encrypting volumes in place with a fake runner: lvmvol.ops.encrypt and the LUKS helpers it uses."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from lvmvol import crypt, devices
from lvmvol.cli import cli
from lvmvol.config import Config
from lvmvol.crypt import Key, ReencryptProgress, parse_progress
from lvmvol.errors import CommandError, CommandTimeout, Conflict, NotFound
from lvmvol.ops import encrypt, removal
from lvmvol.ops.context import Context
from lvmvol.ops.encrypt import encrypt_volume
from lvmvol.ops.inventory import read_inventory
from lvmvol.ops.mounting import mount_volume
from lvmvol.ops.snapshots import create_snapshot

from .conftest import unit_config
from .fakes import FakeRunner, Reply, lv_row, lvs_output

MiB = 1024 * 1024
DEVICE = "/dev/mapper/smokevg-plain"
# A line cryptsetup 2.6.1 printed with --progress-json in the test VM,
# encrypting a 288 MiB thin LV.
PROGRESS_LINE = (
    '{"device":"/dev/mapper/expvg-a","device_bytes":"67108864","device_size":"285212672",'
    '"speed":"2390047","eta_ms":"98274","time_ms":"21058"}'
)
# The checksum of the plain volume's first 16 MiB in these tests.
HEAD_CHECKSUM = "ab" * 32
FINISHED_METADATA = json.dumps({"keyslots": {"0": {"type": "luks2"}}, "config": {"requirements": {}}})
UNFINISHED_METADATA = json.dumps(
    {
        "keyslots": {"0": {"type": "luks2"}, "1": {"type": "reencrypt"}},
        "config": {"requirements": {"mandatory": ["online-reencrypt-v2"]}},
    }
)


def plain_row(**changes: str) -> dict[str, str]:
    """Return the lvs row of an active, unmounted 100 MiB plain volume "plain" with half its blocks allocated."""
    row = lv_row("data")
    row.update(
        {
            "lv_name": "plain",
            "lv_kernel_minor": "9",
            "lv_device_open": "",
            "lv_dm_path": DEVICE,
            "data_percent": "50.00",
        }
    )
    row.update(changes)
    return row


def subcommand_calls(runner: FakeRunner, subcommand: str) -> list:
    return [call for call in runner.calls_of("cryptsetup") if call.argv[1] == subcommand]


def encrypting_tags(size: int = 100 * MiB, key: str = "/etc/lvmvol/keys/plain.key") -> str:
    return (
        f"lvmvol.fs=ext4,lvmvol.volume,lvmvol.encrypting={size},lvmvol.encrypthead={HEAD_CHECKSUM},"
        f"lvmvol.crypt=luks2,lvmvol.key={key}"
    )


INTENT_REMOVED = ["lvchange", "--deltag", f"lvmvol.encrypting={100 * MiB}", "--deltag", f"lvmvol.encrypthead={HEAD_CHECKSUM}", "smokevg/plain"]


@pytest.fixture
def headers(monkeypatch: pytest.MonkeyPatch) -> list[devices.LuksHeader]:
    """The LUKS headers that find_luks_headers reports; empty unless a test adds some.

    The device's first 16 MiB have the checksum ``HEAD_CHECKSUM``.
    """
    found: list[devices.LuksHeader] = []
    monkeypatch.setattr(devices, "find_luks_headers", lambda path: list(found))
    monkeypatch.setattr(devices, "checksum_start", lambda path, length: HEAD_CHECKSUM)
    return found


@pytest.fixture(autouse=True)
def work_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """cryptsetup's working directories go under tmp_path instead of /run/lvmvol."""
    root = tmp_path / "run"
    monkeypatch.setattr(encrypt, "WORK_ROOT", str(root))
    return root


@pytest.fixture
def plain_runner(fake_runner: FakeRunner, mount_table, device_waits, headers, monkeypatch: pytest.MonkeyPatch) -> FakeRunner:
    """The fake runner with the pool and the plain volume, nothing holding it, no LUKS on it."""
    monkeypatch.setattr(removal, "mounts_in_other_namespaces", lambda major, minor: [])
    monkeypatch.setattr(removal.devices, "holders", lambda device: [])
    fake_runner.reply("lvs", Reply(stdout=lvs_output(lv_row("pool"), plain_row())))
    fake_runner.reply("blkid", Reply(stdout=f"DEVNAME={DEVICE}\nTYPE=ext4\n"))
    fake_runner.reply("cryptsetup isLuks", Reply(returncode=1))
    fake_runner.reply("cryptsetup luksDump", Reply(stdout=FINISHED_METADATA))
    fake_runner.reply("cryptsetup reencrypt", Reply(stdout=PROGRESS_LINE + "\n"))
    return fake_runner


@pytest.fixture
def key_file(tmp_path: Path) -> Key:
    path = tmp_path / "volume.key"
    path.write_bytes(os.urandom(64))
    path.chmod(0o600)
    return Key(path=str(path))


@pytest.fixture
def key_ctx(ctx: Context, tmp_path: Path) -> Context:
    ctx.config.key_dir = str(tmp_path / "keys")
    return ctx


# Progress parsing


def test_parse_progress_line() -> None:
    assert parse_progress(PROGRESS_LINE) == ReencryptProgress(
        done_bytes=67108864, total_bytes=285212672, speed=2390047, eta_seconds=98.274
    )


@pytest.mark.parametrize(
    "line",
    [
        "",
        "Progress:  36.8%, ETA 00m09s,  100 MiB written, speed  17.4 MiB/s",
        "Finished, time 00m15s,  272 MiB written, speed  17.8 MiB/s",
        "Reencryption interrupted.",
        "{not json",
        '{"device":"/dev/dm-7"}',
        '{"device_bytes":"many","device_size":"10"}',
        "[1, 2]",
    ],
)
def test_parse_progress_other_lines(line: str) -> None:
    assert parse_progress(line) is None


# Finding LUKS headers by their magic bytes


def write_image(path: Path, size: int, chunks: dict[int, bytes]) -> str:
    with open(path, "wb") as image:
        image.truncate(size)
        for offset, data in chunks.items():
            image.seek(offset)
            image.write(data)
    return str(path)


def test_find_headers_none(tmp_path: Path) -> None:
    assert devices.find_luks_headers(write_image(tmp_path / "zero.img", 8 * MiB, {})) == []


def test_find_luks1_header(tmp_path: Path) -> None:
    image = write_image(tmp_path / "luks1.img", 8 * MiB, {0: b"LUKS\xba\xbe\x00\x01"})
    found = devices.find_luks_headers(image)
    assert found == [devices.LuksHeader(offset=0, version=1, secondary=False)]
    assert found[0].describe() == "a LUKS1 header at byte 0"


def test_find_luks2_primary_and_secondary(tmp_path: Path) -> None:
    image = write_image(tmp_path / "luks2.img", 8 * MiB, {0: b"LUKS\xba\xbe\x00\x02", 16384: b"SKUL\xba\xbe\x00\x02"})
    assert devices.find_luks_headers(image) == [
        devices.LuksHeader(offset=0, version=2, secondary=False),
        devices.LuksHeader(offset=16384, version=2, secondary=True),
    ]


@pytest.mark.parametrize("offset", devices.LUKS2_SECONDARY_OFFSETS)
def test_find_leftover_secondary_header(tmp_path: Path, offset: int) -> None:
    image = write_image(tmp_path / "wiped.img", 8 * MiB, {offset: b"SKUL\xba\xbe\x00\x02"})
    found = devices.find_luks_headers(image)
    assert found == [devices.LuksHeader(offset=offset, version=2, secondary=True)]
    assert found[0].describe() == f"a LUKS2 secondary header at byte {offset}"


def test_find_headers_ignores_misplaced_magic(tmp_path: Path) -> None:
    image = write_image(
        tmp_path / "other.img", 8 * MiB, {0: b"SKUL\xba\xbe\x00\x02", 16384: b"LUKS\xba\xbe\x00\x02", 20000: b"SKUL\xba\xbe"}
    )
    assert devices.find_luks_headers(image) == []


def test_find_headers_small_device(tmp_path: Path) -> None:
    image = write_image(tmp_path / "small.img", 20000, {16384: b"SKUL\xba\xbe\x00\x02"})
    assert [header.offset for header in devices.find_luks_headers(image)] == [16384]


def test_secondary_offsets() -> None:
    assert devices.LUKS2_SECONDARY_OFFSETS == (
        0x4000, 0x8000, 0x10000, 0x20000, 0x40000, 0x80000, 0x100000, 0x200000, 0x400000,
    )


# A fresh encryption


def test_encrypt_steps(key_ctx: Context, plain_runner: FakeRunner, key_file: Key) -> None:
    outcome = encrypt_volume(key_ctx, "plain", key_file)

    assert outcome.changed is True
    assert [call.argv[:2] for call in plain_runner.calls] == [
        ["lvs", "--reportformat"],
        ["blkid", "--probe"],
        ["cryptsetup", "isLuks"],
        ["lvchange", "--addtag"],
        ["lvextend", "--size"],
        ["cryptsetup", "isLuks"],
        ["cryptsetup", "reencrypt"],
        ["cryptsetup", "luksDump"],
        ["lvchange", "--deltag"],
    ]


def test_encrypt_records_intent_first(key_ctx: Context, plain_runner: FakeRunner, key_file: Key) -> None:
    encrypt_volume(key_ctx, "plain", key_file)
    first, last = plain_runner.calls_of("lvchange")
    assert first.argv == [
        "lvchange",
        "--addtag", f"lvmvol.encrypting={100 * MiB}",
        "--addtag", f"lvmvol.encrypthead={HEAD_CHECKSUM}",
        "--addtag", "lvmvol.crypt=luks2",
        "--addtag", f"lvmvol.key={key_file.path}",
        "smokevg/plain",
    ]
    assert last.argv == INTENT_REMOVED


def test_encrypt_grows_by_header_shift(key_ctx: Context, plain_runner: FakeRunner, key_file: Key) -> None:
    outcome = encrypt_volume(key_ctx, "plain", key_file)
    assert plain_runner.calls_of("lvextend")[0].argv == ["lvextend", "--size", f"{132 * MiB}b", "smokevg/plain"]
    assert outcome.details["size_bytes"] == 132 * MiB
    assert outcome.details["previous_size_bytes"] == 100 * MiB


def test_encrypt_growth_rounds_to_extent(key_ctx: Context, fake_runner: FakeRunner, plain_runner: FakeRunner, key_file: Key) -> None:
    big_extents = plain_row(vg_extent_size=str(64 * MiB), lv_size=str(128 * MiB))
    pool = lv_row("pool")
    pool["lv_size"] = str(1024 * MiB)
    fake_runner.reply("lvs", Reply(stdout=lvs_output(pool, big_extents)))
    encrypt_volume(key_ctx, "plain", key_file)
    assert plain_runner.calls_of("lvextend")[0].argv[2] == f"{192 * MiB}b"


def test_encrypt_reencrypt_argv(key_ctx: Context, plain_runner: FakeRunner, key_file: Key) -> None:
    encrypt_volume(key_ctx, "plain", key_file)
    call = subcommand_calls(plain_runner, "reencrypt")[0]
    assert call.argv == [
        "cryptsetup", "reencrypt", "--encrypt", "--type", "luks2", "--reduce-device-size", "32M",
        "--batch-mode", "--progress-json", "--progress-frequency", "1",
        "--key-file", key_file.path, DEVICE,
    ]
    assert call.input is None
    assert call.timeout == key_ctx.config.encrypt_timeout
    # cryptsetup writes its temporary header into a private directory, removed afterwards.
    assert call.cwd == os.path.join(encrypt.WORK_ROOT, "encrypt-luks-smokevg-plain")
    assert not os.path.exists(call.cwd)


def test_encrypt_passphrase_on_stdin(key_ctx: Context, plain_runner: FakeRunner) -> None:
    outcome = encrypt_volume(key_ctx, "plain", Key(passphrase=b"correct horse"))
    call = subcommand_calls(plain_runner, "reencrypt")[0]
    assert call.argv[-3:] == ["--key-file", "-", DEVICE]
    assert call.input == b"correct horse"
    assert "correct horse" not in " ".join(call.argv)
    assert "lvmvol.key=passphrase" in plain_runner.calls_of("lvchange")[0].argv
    assert outcome.details["key_source"] == "passphrase"


def test_encrypt_generates_key(key_ctx: Context, plain_runner: FakeRunner) -> None:
    outcome = encrypt_volume(key_ctx, "plain")
    path = os.path.join(key_ctx.config.key_dir, "luks-smokevg-plain.key")
    assert outcome.details["key_source"] == path
    assert os.path.getsize(path) == 64
    reencrypt = subcommand_calls(plain_runner, "reencrypt")[0].argv
    assert reencrypt[reencrypt.index("--key-file") + 1] == path
    assert "--pbkdf-force-iterations" in reencrypt
    tags_added = plain_runner.calls_of("lvchange")[0].argv
    assert "lvmvol.keygen=1" in tags_added


def test_encrypt_allow_discards_recorded(key_ctx: Context, plain_runner: FakeRunner, key_file: Key) -> None:
    encrypt_volume(key_ctx, "plain", key_file, allow_discards=True)
    assert "lvmvol.discards=1" in plain_runner.calls_of("lvchange")[0].argv


def test_encrypt_reports_progress(key_ctx: Context, plain_runner: FakeRunner, key_file: Key) -> None:
    reports: list[ReencryptProgress] = []
    plain_runner.reply(
        "cryptsetup reencrypt",
        Reply(stdout="\n".join([PROGRESS_LINE, "not progress", PROGRESS_LINE.replace("67108864", "285212672")]) + "\n"),
    )
    encrypt_volume(key_ctx, "plain", key_file, on_progress=reports.append)
    assert [report.done_bytes for report in reports] == [67108864, 285212672]
    assert reports[-1].total_bytes == 285212672


def test_encrypt_activates_inactive_volume(key_ctx: Context, fake_runner: FakeRunner, plain_runner: FakeRunner, key_file: Key, device_waits: list[str]) -> None:
    inactive = plain_row(lv_active="", lv_kernel_major="-1", lv_kernel_minor="-1")
    fake_runner.reply("lvs", Reply(stdout=lvs_output(lv_row("pool"), inactive)))
    encrypt_volume(key_ctx, "plain", key_file)
    assert fake_runner.calls_of("lvchange")[0].argv == ["lvchange", "--activate", "y", "--ignoreactivationskip", "smokevg/plain"]
    assert DEVICE in device_waits


def test_encrypt_dry_run(key_ctx: Context, plain_runner: FakeRunner) -> None:
    plain_runner.dry_run = True
    outcome = encrypt_volume(key_ctx, "plain")
    assert outcome.changed is True
    assert plain_runner.executed_mutating() == []
    assert not os.path.exists(key_ctx.config.key_dir)
    skipped = [call.argv[:2] for call in plain_runner.calls if call.dry_run]
    assert skipped == [["lvchange", "--addtag"], ["lvextend", "--size"], ["cryptsetup", "reencrypt"], ["lvchange", "--deltag"]]


# Refusals: nothing changes


def assert_nothing_changed(runner: FakeRunner) -> None:
    assert runner.executed_mutating() == []


def test_encrypt_mounted_refused(key_ctx: Context, fake_runner: FakeRunner, plain_runner: FakeRunner, key_file: Key) -> None:
    # 254:4 is mounted at "/var/lib/lvmvol/data set" in the fixture mount table.
    fake_runner.reply("lvs", Reply(stdout=lvs_output(lv_row("pool"), plain_row(lv_kernel_minor="4"))))
    with pytest.raises(Conflict) as raised:
        encrypt_volume(key_ctx, "plain", key_file)
    assert raised.value.exit_code == 4
    assert "mounted at /var/lib/lvmvol/data set" in str(raised.value)
    assert "lvmvol volume umount plain" in str(raised.value)
    assert_nothing_changed(fake_runner)


def test_encrypt_open_refused(key_ctx: Context, fake_runner: FakeRunner, plain_runner: FakeRunner, key_file: Key) -> None:
    fake_runner.reply("lvs", Reply(stdout=lvs_output(lv_row("pool"), plain_row(lv_device_open="open"))))
    with pytest.raises(Conflict) as raised:
        encrypt_volume(key_ctx, "plain", key_file)
    assert "open by a process" in str(raised.value)
    assert "udevadm" in fake_runner.commands()
    assert_nothing_changed(fake_runner)


def test_encrypt_held_refused(key_ctx: Context, plain_runner: FakeRunner, key_file: Key, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(removal.devices, "holders", lambda device: ["dm-12"])
    with pytest.raises(Conflict) as raised:
        encrypt_volume(key_ctx, "plain", key_file)
    assert "held by device dm-12" in str(raised.value)
    assert_nothing_changed(plain_runner)


def test_encrypt_incomplete_refused(key_ctx: Context, fake_runner: FakeRunner, plain_runner: FakeRunner, key_file: Key) -> None:
    fake_runner.reply("lvs", Reply(stdout=lvs_output(lv_row("pool"), plain_row(lv_tags="lvmvol.volume,lvmvol.incomplete"))))
    with pytest.raises(Conflict) as raised:
        encrypt_volume(key_ctx, "plain", key_file)
    assert "was not finished" in str(raised.value)
    assert_nothing_changed(fake_runner)


def test_encrypt_read_only_refused(key_ctx: Context, fake_runner: FakeRunner, plain_runner: FakeRunner, key_file: Key) -> None:
    fake_runner.reply("lvs", Reply(stdout=lvs_output(lv_row("pool"), plain_row(lv_attr="Vri-a-tz--"))))
    with pytest.raises(Conflict) as raised:
        encrypt_volume(key_ctx, "plain", key_file)
    assert "read-only" in str(raised.value)
    assert_nothing_changed(fake_runner)


@pytest.mark.parametrize(
    ("found", "text"),
    [
        ([devices.LuksHeader(0, 2, False)], "a LUKS2 header at byte 0"),
        ([devices.LuksHeader(0, 1, False)], "a LUKS1 header at byte 0"),
        ([devices.LuksHeader(16384, 2, True)], "a LUKS2 secondary header at byte 16384"),
    ],
)
def test_encrypt_luks_header_refused(
    key_ctx: Context, plain_runner: FakeRunner, key_file: Key, headers: list, found: list, text: str
) -> None:
    headers.extend(found)
    with pytest.raises(Conflict) as raised:
        encrypt_volume(key_ctx, "plain", key_file)
    assert raised.value.exit_code == 4
    assert text in str(raised.value)
    assert "not recorded as encrypted" in str(raised.value)
    assert_nothing_changed(plain_runner)


def test_encrypt_blkid_luks_refused(key_ctx: Context, plain_runner: FakeRunner, key_file: Key) -> None:
    plain_runner.reply("blkid", Reply(stdout=f"DEVNAME={DEVICE}\nVERSION=1\nTYPE=crypto_LUKS\n"))
    with pytest.raises(Conflict) as raised:
        encrypt_volume(key_ctx, "plain", key_file)
    assert "a LUKS1 signature (blkid)" in str(raised.value)
    assert_nothing_changed(plain_runner)


def test_encrypt_cryptsetup_luks_refused(key_ctx: Context, plain_runner: FakeRunner, key_file: Key) -> None:
    plain_runner.reply("cryptsetup isLuks", Reply(returncode=0))
    with pytest.raises(Conflict) as raised:
        encrypt_volume(key_ctx, "plain", key_file)
    assert "a LUKS header that cryptsetup recognizes" in str(raised.value)
    assert_nothing_changed(plain_runner)


def test_encrypt_pool_space_refused(key_ctx: Context, fake_runner: FakeRunner, plain_runner: FakeRunner, key_file: Key) -> None:
    # The pool has 200 MiB with 12.5 % used: 175 MiB free. The volume needs
    # 300 MiB + 32 MiB - 30 MiB allocated = 302 MiB.
    fake_runner.reply("lvs", Reply(stdout=lvs_output(lv_row("pool"), plain_row(lv_size=str(300 * MiB), data_percent="10.00"))))
    with pytest.raises(Conflict) as raised:
        encrypt_volume(key_ctx, "plain", key_file)
    assert "thin pool smokevg/pool has 175.0 MiB free" in str(raised.value)
    assert "302.0 MiB" in str(raised.value)
    assert_nothing_changed(fake_runner)


def test_encrypt_pool_space_counts_snapshot_sharing(key_ctx: Context, fake_runner: FakeRunner, plain_runner: FakeRunner, key_file: Key) -> None:
    # 150 MiB + 32 MiB fits in 175 MiB only if the allocated half need not be
    # copied. A snapshot shares that half, so all 182 MiB are needed.
    snapshot = plain_row(lv_name="plain-snap", origin="plain", lv_kernel_minor="10")
    volume = plain_row(lv_size=str(150 * MiB))
    fake_runner.reply("lvs", Reply(stdout=lvs_output(lv_row("pool"), volume, snapshot)))
    with pytest.raises(Conflict) as raised:
        encrypt_volume(key_ctx, "plain", key_file)
    assert "182.0 MiB" in str(raised.value)


# Already encrypted


def test_encrypt_already_encrypted_unchanged(key_ctx: Context, fake_runner: FakeRunner, plain_runner: FakeRunner, key_file: Key) -> None:
    tags = f"lvmvol.fs=ext4,lvmvol.volume,lvmvol.crypt=luks2,lvmvol.key={key_file.path}"
    fake_runner.reply("lvs", Reply(stdout=lvs_output(lv_row("pool"), plain_row(lv_tags=tags))))
    for key in (key_file, None):
        outcome = encrypt_volume(key_ctx, "plain", key)
        assert outcome.changed is False
        assert outcome.details["key_source"] == key_file.path
    assert_nothing_changed(fake_runner)


def test_encrypt_already_encrypted_other_key(key_ctx: Context, fake_runner: FakeRunner, plain_runner: FakeRunner, key_file: Key) -> None:
    tags = "lvmvol.fs=ext4,lvmvol.volume,lvmvol.crypt=luks2,lvmvol.key=/root/old.key"
    fake_runner.reply("lvs", Reply(stdout=lvs_output(lv_row("pool"), plain_row(lv_tags=tags))))
    with pytest.raises(Conflict) as raised:
        encrypt_volume(key_ctx, "plain", key_file)
    assert "already encrypted" in str(raised.value)
    assert "its key is /root/old.key" in str(raised.value)
    assert "lvmvol volume rekey plain" in str(raised.value)


def test_encrypt_already_encrypted_passphrase_checked(key_ctx: Context, fake_runner: FakeRunner, plain_runner: FakeRunner) -> None:
    tags = "lvmvol.fs=ext4,lvmvol.volume,lvmvol.crypt=luks2,lvmvol.key=passphrase"
    fake_runner.reply("lvs", Reply(stdout=lvs_output(lv_row("pool"), plain_row(lv_tags=tags))))
    fake_runner.reply("cryptsetup open", Reply(returncode=0), Reply(returncode=2))
    assert encrypt_volume(key_ctx, "plain", Key(passphrase=b"right")).changed is False
    with pytest.raises(Conflict) as raised:
        encrypt_volume(key_ctx, "plain", Key(passphrase=b"wrong"))
    assert "another passphrase" in str(raised.value)
    assert_nothing_changed(fake_runner)


# Resuming


def test_encrypt_resume_after_kill(key_ctx: Context, fake_runner: FakeRunner, plain_runner: FakeRunner, key_file: Key) -> None:
    grown = plain_row(lv_size=str(132 * MiB), lv_tags=encrypting_tags(key=key_file.path))
    fake_runner.reply("lvs", Reply(stdout=lvs_output(lv_row("pool"), grown)))
    fake_runner.reply("cryptsetup isLuks", Reply(returncode=0))
    fake_runner.reply("cryptsetup luksDump", Reply(stdout=UNFINISHED_METADATA), Reply(stdout=FINISHED_METADATA))

    outcome = encrypt_volume(key_ctx, "plain")

    assert outcome.changed is True
    assert outcome.details["resumed"] is True
    assert [call.argv[1] for call in fake_runner.calls_of("cryptsetup")] == [
        "isLuks", "luksDump", "repair", "reencrypt", "luksDump",
    ]
    assert fake_runner.calls_of("cryptsetup")[2].argv == [
        "cryptsetup", "repair", "--batch-mode", "--key-file", key_file.path, DEVICE,
    ]
    assert fake_runner.calls_of("cryptsetup")[3].argv == [
        "cryptsetup", "reencrypt", "--resume-only", "--batch-mode", "--progress-json", "--progress-frequency", "1",
        "--key-file", key_file.path, DEVICE,
    ]
    assert fake_runner.calls_of("lvextend") == []
    assert fake_runner.calls_of("lvchange")[-1].argv == INTENT_REMOVED


def test_encrypt_resume_before_grow(key_ctx: Context, fake_runner: FakeRunner, plain_runner: FakeRunner, key_file: Key) -> None:
    # Killed between recording the intent and lvextend: grow, then start over.
    tagged = plain_row(lv_tags=encrypting_tags(key=key_file.path))
    fake_runner.reply("lvs", Reply(stdout=lvs_output(lv_row("pool"), tagged)))
    outcome = encrypt_volume(key_ctx, "plain")
    assert outcome.details["resumed"] is False
    assert fake_runner.calls_of("lvextend")[0].argv[2] == f"{132 * MiB}b"
    assert [call.argv[1] for call in fake_runner.calls_of("cryptsetup")] == ["isLuks", "reencrypt", "luksDump"]
    # The intent was recorded by the first run; no new tags now.
    assert [call.argv[1] for call in fake_runner.calls_of("lvchange")] == ["--deltag"]


def test_encrypt_resume_finished(key_ctx: Context, fake_runner: FakeRunner, plain_runner: FakeRunner, key_file: Key) -> None:
    # Killed after cryptsetup finished, before the intent tag was dropped.
    grown = plain_row(lv_size=str(132 * MiB), lv_tags=encrypting_tags(key=key_file.path))
    fake_runner.reply("lvs", Reply(stdout=lvs_output(lv_row("pool"), grown)))
    fake_runner.reply("cryptsetup isLuks", Reply(returncode=0))
    outcome = encrypt_volume(key_ctx, "plain")
    assert outcome.changed is True
    assert [call.argv[1] for call in fake_runner.calls_of("cryptsetup")] == ["isLuks", "luksDump", "luksDump"]
    assert fake_runner.executed_mutating() == [INTENT_REMOVED]


def test_encrypt_resume_other_key_refused(key_ctx: Context, fake_runner: FakeRunner, plain_runner: FakeRunner, key_file: Key) -> None:
    grown = plain_row(lv_size=str(132 * MiB), lv_tags=encrypting_tags(key="/root/first.key"))
    fake_runner.reply("lvs", Reply(stdout=lvs_output(lv_row("pool"), grown)))
    with pytest.raises(Conflict) as raised:
        encrypt_volume(key_ctx, "plain", key_file)
    assert "with key /root/first.key is unfinished" in str(raised.value)
    assert_nothing_changed(fake_runner)


def test_encrypt_resume_changed_size_refused(key_ctx: Context, fake_runner: FakeRunner, plain_runner: FakeRunner, key_file: Key) -> None:
    resized = plain_row(lv_size=str(200 * MiB), lv_tags=encrypting_tags(key=key_file.path))
    fake_runner.reply("lvs", Reply(stdout=lvs_output(lv_row("pool"), resized)))
    with pytest.raises(Conflict) as raised:
        encrypt_volume(key_ctx, "plain")
    assert "neither its size before the encryption started" in str(raised.value)
    assert_nothing_changed(fake_runner)


def test_encrypt_resume_head_changed_refused(key_ctx: Context, fake_runner: FakeRunner, plain_runner: FakeRunner, key_file: Key, monkeypatch: pytest.MonkeyPatch) -> None:
    # No readable header, and the first 16 MiB differ from before: a cut-off header write.
    grown = plain_row(lv_size=str(132 * MiB), lv_tags=encrypting_tags(key=key_file.path))
    fake_runner.reply("lvs", Reply(stdout=lvs_output(lv_row("pool"), grown)))
    monkeypatch.setattr(devices, "checksum_start", lambda path, length: "cd" * 32)
    with pytest.raises(Conflict) as raised:
        encrypt_volume(key_ctx, "plain")
    assert "first write of the header was cut off" in str(raised.value)
    assert "last 16 MiB" in str(raised.value)
    assert subcommand_calls(fake_runner, "reencrypt") == []
    assert_nothing_changed(fake_runner)


def test_encrypt_resume_without_checksum_checks_magic(key_ctx: Context, fake_runner: FakeRunner, plain_runner: FakeRunner, key_file: Key, headers: list) -> None:
    tags = f"lvmvol.fs=ext4,lvmvol.volume,lvmvol.encrypting={100 * MiB},lvmvol.crypt=luks2,lvmvol.key={key_file.path}"
    fake_runner.reply("lvs", Reply(stdout=lvs_output(lv_row("pool"), plain_row(lv_size=str(132 * MiB), lv_tags=tags))))
    headers.append(devices.LuksHeader(0, 2, False))
    with pytest.raises(Conflict):
        encrypt_volume(key_ctx, "plain")
    assert_nothing_changed(fake_runner)


def test_encrypt_resume_clears_stale_workdir(key_ctx: Context, fake_runner: FakeRunner, plain_runner: FakeRunner, key_file: Key, work_root: Path) -> None:
    # A run killed during cryptsetup's start left its temporary header file.
    stale = work_root / "encrypt-luks-smokevg-plain"
    stale.mkdir(parents=True)
    (stale / "LUKS2-temp-0f1e.new").write_bytes(b"x")
    seen: list[list[str]] = []
    original = fake_runner.run_streaming

    def record_workdir(argv, **kwargs):
        seen.append(sorted(os.listdir(kwargs["cwd"])))
        return original(argv, **kwargs)

    fake_runner.run_streaming = record_workdir
    grown = plain_row(lv_size=str(132 * MiB), lv_tags=encrypting_tags(key=key_file.path))
    fake_runner.reply("lvs", Reply(stdout=lvs_output(lv_row("pool"), grown)))
    encrypt_volume(key_ctx, "plain")
    assert seen == [[]]
    assert not stale.exists()


def test_encrypt_unfinished_after_exit_keeps_intent(key_ctx: Context, plain_runner: FakeRunner, key_file: Key) -> None:
    plain_runner.reply("cryptsetup luksDump", Reply(stdout=UNFINISHED_METADATA))
    with pytest.raises(Conflict) as raised:
        encrypt_volume(key_ctx, "plain", key_file)
    assert "exited before the encryption" in str(raised.value)
    assert [call.argv[1] for call in plain_runner.calls_of("lvchange")] == ["--addtag"]


# Failures


def test_encrypt_failure_before_header_undone(key_ctx: Context, plain_runner: FakeRunner, key_file: Key) -> None:
    plain_runner.reply("cryptsetup reencrypt", Reply(returncode=1, stderr="Cannot use device, it is in use.\n"))
    with pytest.raises(CommandError):
        encrypt_volume(key_ctx, "plain", key_file)
    added, removed = plain_runner.calls_of("lvchange")
    assert removed.argv[1] == "--deltag"
    assert removed.argv[2::2] == added.argv[2::2]
    assert f"lvmvol.encrypthead={HEAD_CHECKSUM}" in removed.argv


def test_encrypt_failure_after_header_kept(key_ctx: Context, plain_runner: FakeRunner, key_file: Key) -> None:
    plain_runner.reply("cryptsetup isLuks", Reply(returncode=1), Reply(returncode=1), Reply(returncode=0))
    plain_runner.reply("cryptsetup reencrypt", Reply(returncode=1, stderr="Write error.\n"))
    with pytest.raises(CommandError):
        encrypt_volume(key_ctx, "plain", key_file)
    assert [call.argv[1] for call in plain_runner.calls_of("lvchange")] == ["--addtag"]


def test_encrypt_timeout_hint(key_ctx: Context, plain_runner: FakeRunner, key_file: Key, monkeypatch: pytest.MonkeyPatch) -> None:
    def time_out(*args, **kwargs):
        raise CommandTimeout(["cryptsetup", "reencrypt"], 86400.0)

    monkeypatch.setattr(crypt, "encrypt_in_place", time_out)
    with pytest.raises(CommandTimeout) as raised:
        encrypt_volume(key_ctx, "plain", key_file)
    assert "run 'lvmvol volume encrypt plain' again to resume" in str(raised.value)
    assert "encrypt_timeout" in str(raised.value)
    assert [call.argv[1] for call in plain_runner.calls_of("lvchange")] == ["--addtag"]


def test_encrypt_missing_volume(key_ctx: Context, plain_runner: FakeRunner) -> None:
    with pytest.raises(NotFound) as raised:
        encrypt_volume(key_ctx, "nosuch")
    assert raised.value.exit_code == 3


def test_encrypt_module_imports_no_subprocess() -> None:
    assert "subprocess" not in vars(encrypt)


def test_encrypt_already_encrypted_mounted_unchanged(key_ctx: Context, fake_runner: FakeRunner, plain_runner: FakeRunner, key_file: Key) -> None:
    tags = f"lvmvol.fs=ext4,lvmvol.volume,lvmvol.crypt=luks2,lvmvol.key={key_file.path}"
    fake_runner.reply("lvs", Reply(stdout=lvs_output(lv_row("pool"), plain_row(lv_tags=tags, lv_device_open="open"))))
    assert encrypt_volume(key_ctx, "plain", key_file).changed is False


def test_encrypt_failure_with_changed_head_kept(key_ctx: Context, plain_runner: FakeRunner, key_file: Key, monkeypatch: pytest.MonkeyPatch) -> None:
    # cryptsetup failed while writing the header: the first 16 MiB changed, so the intent stays.
    checksums = iter([HEAD_CHECKSUM, "cd" * 32])
    monkeypatch.setattr(devices, "checksum_start", lambda path, length: next(checksums))
    plain_runner.reply("cryptsetup reencrypt", Reply(returncode=1, stderr="Write error.\n"))
    with pytest.raises(CommandError):
        encrypt_volume(key_ctx, "plain", key_file)
    assert [call.argv[1] for call in plain_runner.calls_of("lvchange")] == ["--addtag"]


# What other commands make of an unfinished encryption


def test_inventory_shows_encrypting(ctx: Context, fake_runner: FakeRunner, mount_table) -> None:
    fake_runner.reply("lvs", Reply(stdout=lvs_output(lv_row("pool"), plain_row(lv_tags=encrypting_tags()))))
    volume = read_inventory(ctx).volume("plain")
    assert volume.encrypting is True
    assert volume.size_before_encryption == 100 * MiB
    assert volume.to_dict()["encrypting"] is True
    assert volume.to_dict()["encrypted"] is True


def test_volume_ls_state_encrypting(fake_runner: FakeRunner, mount_table, device_waits) -> None:
    fake_runner.reply("lvs", Reply(stdout=lvs_output(lv_row("pool"), plain_row(lv_tags=encrypting_tags()))))
    context = Context(config=unit_config(), runner=fake_runner)
    result = CliRunner().invoke(cli, ["volume", "ls"], obj={"context": context})
    assert result.exit_code == 0, result.output
    row = next(line for line in result.stdout.splitlines() if line.startswith("plain"))
    assert "active,encrypting" in row


def test_mount_refuses_encrypting(ctx: Context, fake_runner: FakeRunner, mount_table, device_waits) -> None:
    fake_runner.reply("lvs", Reply(stdout=lvs_output(lv_row("pool"), plain_row(lv_tags=encrypting_tags()))))
    with pytest.raises(Conflict) as raised:
        mount_volume(ctx, "plain")
    assert "unfinished" in str(raised.value)
    assert "lvmvol volume encrypt plain" in str(raised.value)
    assert fake_runner.executed_mutating() == []


def test_snapshot_refuses_encrypting(ctx: Context, fake_runner: FakeRunner, mount_table, device_waits) -> None:
    fake_runner.reply("lvs", Reply(stdout=lvs_output(lv_row("pool"), plain_row(lv_tags=encrypting_tags()))))
    with pytest.raises(Conflict) as raised:
        create_snapshot(ctx, "plain", "plain-snap")
    assert "lvmvol volume encrypt plain" in str(raised.value)
    assert fake_runner.executed_mutating() == []


def test_encrypt_notes_plain_snapshots(key_ctx: Context, fake_runner: FakeRunner, plain_runner: FakeRunner, key_file: Key) -> None:
    snapshot = plain_row(lv_name="plain-snap", origin="plain", lv_kernel_minor="10")
    fake_runner.reply("lvs", Reply(stdout=lvs_output(lv_row("pool"), plain_row(), snapshot)))
    outcome = encrypt_volume(key_ctx, "plain", key_file)
    assert len(outcome.notes) == 1
    assert "snapshots plain-snap of plain stay plain" in outcome.notes[0]


def test_encrypt_no_note_without_snapshots(key_ctx: Context, plain_runner: FakeRunner, key_file: Key) -> None:
    assert encrypt_volume(key_ctx, "plain", key_file).notes == []
