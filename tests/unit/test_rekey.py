"""Replacing the key of encrypted volumes with a fake runner: lvmvol.ops.rekey and the cryptsetup argv."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from lvmvol.crypt import Key
from lvmvol.errors import Conflict, InvalidInput, NotFound
from lvmvol.ops.context import Context
from lvmvol.ops.rekey import rekey_volume

from .fakes import FakeRunner, Reply, lv_row, lvs_output

DEVICE = "/dev/mapper/smokevg-vault"
ONE_SLOT = json.dumps({"keyslots": {"0": {"type": "luks2"}}})
TWO_SLOTS = json.dumps({"keyslots": {"0": {"type": "luks2"}, "1": {"type": "luks2"}}})
OPENS = Reply(returncode=0)
# cryptsetup open --test-passphrase exits 2 for a key that opens no key slot.
FAILS = Reply(returncode=2)


def make_key_file(directory: Path, name: str, content: bytes | None = None) -> Key:
    path = directory / name
    path.write_bytes(content if content is not None else os.urandom(64))
    path.chmod(0o600)
    return Key(path=str(path))


def vault_row(key_source: str, generated: bool = False, **changes: str) -> dict[str, str]:
    """Return the lvs row of an active, unmounted encrypted volume "vault" whose key is ``key_source``."""
    tags = f"lvmvol.fs=ext4,lvmvol.volume,lvmvol.crypt=luks2,lvmvol.key={key_source}"
    if generated:
        tags += ",lvmvol.keygen=1"
    row = lv_row("data")
    row.update({"lv_name": "vault", "lv_kernel_minor": "9", "lv_device_open": "", "lv_dm_path": DEVICE, "lv_tags": tags})
    row.update(changes)
    return row


@pytest.fixture
def old_key(tmp_path: Path) -> Key:
    return make_key_file(tmp_path, "old.key")


@pytest.fixture
def new_key(tmp_path: Path) -> Key:
    return make_key_file(tmp_path, "new.key")


@pytest.fixture
def vault_runner(fake_runner: FakeRunner, mount_table, device_waits, old_key: Key) -> FakeRunner:
    """The volume records ``old_key``; the new key does not open it yet and the old one does."""
    fake_runner.reply("lvs", Reply(stdout=lvs_output(lv_row("pool"), vault_row(old_key.path))))
    fake_runner.reply("cryptsetup open", FAILS, OPENS)
    fake_runner.reply("cryptsetup luksDump", Reply(stdout=TWO_SLOTS))
    return fake_runner


def subcommands(runner: FakeRunner) -> list[str]:
    return [call.argv[1] for call in runner.calls_of("cryptsetup")]


def test_rekey_steps_in_order(ctx: Context, vault_runner: FakeRunner, old_key: Key, new_key: Key) -> None:
    outcome = rekey_volume(ctx, "vault", new_key)

    assert outcome.changed is True
    assert subcommands(vault_runner) == ["open", "open", "luksAddKey", "luksDump", "luksRemoveKey"]
    assert vault_runner.executed_mutating()[-1] == [
        "lvchange", "--addtag", f"lvmvol.key={new_key.path}", "--deltag", f"lvmvol.key={old_key.path}", "smokevg/vault",
    ]
    assert outcome.details == {
        "vg": "smokevg",
        "key_source": new_key.path,
        "previous_key_source": old_key.path,
        "key_slot_added": True,
        "key_slot_removed": True,
    }


def test_rekey_key_file_argv(ctx: Context, vault_runner: FakeRunner, old_key: Key, new_key: Key) -> None:
    rekey_volume(ctx, "vault", new_key)
    add, remove = vault_runner.calls_of("cryptsetup")[2], vault_runner.calls_of("cryptsetup")[4]
    assert add.argv == [
        "cryptsetup", "luksAddKey", "--batch-mode", "--key-file", old_key.path, "--new-keyfile", new_key.path, DEVICE,
    ]
    assert add.input is None
    assert remove.argv == ["cryptsetup", "luksRemoveKey", "--batch-mode", "--key-file", old_key.path, DEVICE]


def test_rekey_passphrase_to_key_file(ctx: Context, fake_runner: FakeRunner, mount_table, device_waits, new_key: Key) -> None:
    fake_runner.reply("lvs", Reply(stdout=lvs_output(lv_row("pool"), vault_row("passphrase"))))
    fake_runner.reply("cryptsetup open", FAILS, OPENS)
    fake_runner.reply("cryptsetup luksDump", Reply(stdout=TWO_SLOTS))

    rekey_volume(ctx, "vault", new_key, Key(passphrase=b"old words"))

    add = fake_runner.calls_of("cryptsetup")[2]
    assert add.argv == ["cryptsetup", "luksAddKey", "--batch-mode", "--key-file", "-", "--new-keyfile", new_key.path, DEVICE]
    assert add.input == b"old words"
    remove = fake_runner.calls_of("cryptsetup")[4]
    assert remove.argv[-3:] == ["--key-file", "-", DEVICE]
    assert remove.input == b"old words"
    assert fake_runner.executed_mutating()[-1][1:5] == [
        "--addtag", f"lvmvol.key={new_key.path}", "--deltag", "lvmvol.key=passphrase",
    ]


def test_rekey_key_file_to_passphrase(ctx: Context, vault_runner: FakeRunner, old_key: Key) -> None:
    outcome = rekey_volume(ctx, "vault", Key(passphrase=b"new words"))
    add = vault_runner.calls_of("cryptsetup")[2]
    assert add.argv == ["cryptsetup", "luksAddKey", "--batch-mode", "--key-file", old_key.path, "--new-keyfile", "-", DEVICE]
    assert add.input == b"new words"
    assert outcome.details["key_source"] == "passphrase"


def test_rekey_both_passphrases_on_stdin(ctx: Context, fake_runner: FakeRunner, mount_table, device_waits) -> None:
    fake_runner.reply("lvs", Reply(stdout=lvs_output(lv_row("pool"), vault_row("passphrase"))))
    fake_runner.reply("cryptsetup open", FAILS, OPENS)
    fake_runner.reply("cryptsetup luksDump", Reply(stdout=TWO_SLOTS))

    outcome = rekey_volume(ctx, "vault", Key(passphrase=b"new words"), Key(passphrase=b"old words"))

    add = fake_runner.calls_of("cryptsetup")[2]
    assert add.argv == [
        "cryptsetup", "luksAddKey", "--batch-mode", "--key-file", "-", "--keyfile-size", "9",
        "--new-keyfile", "-", DEVICE,
    ]
    assert add.input == b"old wordsnew words"
    # Same source "passphrase" before and after: the tags stay.
    assert fake_runner.calls_of("lvchange") == []
    assert outcome.changed is True


def test_rekey_no_key_in_argv(ctx: Context, vault_runner: FakeRunner) -> None:
    rekey_volume(ctx, "vault", Key(passphrase=b"new words"))
    for call in vault_runner.calls:
        assert "new words" not in " ".join(call.argv)


def test_rekey_generated_key_deleted(ctx: Context, fake_runner: FakeRunner, mount_table, device_waits, tmp_path: Path, new_key: Key) -> None:
    generated = make_key_file(tmp_path, "luks-smokevg-vault.key")
    fake_runner.reply("lvs", Reply(stdout=lvs_output(lv_row("pool"), vault_row(generated.path, generated=True))))
    fake_runner.reply("cryptsetup open", FAILS, OPENS)
    fake_runner.reply("cryptsetup luksDump", Reply(stdout=TWO_SLOTS))

    outcome = rekey_volume(ctx, "vault", new_key)

    assert outcome.details["key_file_removed"] is True
    assert not os.path.exists(generated.path)
    assert fake_runner.executed_mutating()[-1] == [
        "lvchange", "--addtag", f"lvmvol.key={new_key.path}",
        "--deltag", f"lvmvol.key={generated.path}", "--deltag", "lvmvol.keygen=1", "smokevg/vault",
    ]


def test_rekey_generated_key_kept_for_snapshot(ctx: Context, fake_runner: FakeRunner, mount_table, device_waits, tmp_path: Path, new_key: Key) -> None:
    generated = make_key_file(tmp_path, "luks-smokevg-vault.key")
    volume = vault_row(generated.path, generated=True)
    snapshot = vault_row(generated.path, generated=True, lv_name="vault-snap", origin="vault", lv_kernel_minor="10")
    fake_runner.reply("lvs", Reply(stdout=lvs_output(lv_row("pool"), volume, snapshot)))
    fake_runner.reply("cryptsetup open", FAILS, OPENS)
    fake_runner.reply("cryptsetup luksDump", Reply(stdout=TWO_SLOTS))

    outcome = rekey_volume(ctx, "vault", new_key)

    assert outcome.details["key_file_removed"] is False
    assert os.path.exists(generated.path)


# Idempotency and crash recovery


def test_rekey_recorded_new_key_unchanged(ctx: Context, fake_runner: FakeRunner, mount_table, device_waits, new_key: Key) -> None:
    fake_runner.reply("lvs", Reply(stdout=lvs_output(lv_row("pool"), vault_row(new_key.path))))
    fake_runner.reply("cryptsetup open", OPENS)

    outcome = rekey_volume(ctx, "vault", new_key)

    assert outcome.changed is False
    assert fake_runner.executed_mutating() == []
    assert subcommands(fake_runner) == ["open"]


def test_rekey_after_add_removes_old(ctx: Context, vault_runner: FakeRunner, old_key: Key, new_key: Key) -> None:
    # Killed after luksAddKey: both keys open the volume.
    vault_runner.reply("cryptsetup open", OPENS, OPENS)
    outcome = rekey_volume(ctx, "vault", new_key)
    assert subcommands(vault_runner) == ["open", "open", "luksDump", "luksRemoveKey"]
    assert outcome.details["key_slot_added"] is False
    assert outcome.details["key_slot_removed"] is True


def test_rekey_after_remove_records_key(ctx: Context, vault_runner: FakeRunner, old_key: Key, new_key: Key) -> None:
    # Killed after luksRemoveKey: only the new key opens, the tags name the old one.
    vault_runner.reply("cryptsetup open", OPENS, FAILS)
    outcome = rekey_volume(ctx, "vault", new_key)
    assert outcome.changed is True
    assert [argv[0] for argv in vault_runner.executed_mutating()] == ["lvchange"]


def test_rekey_after_remove_old_file_gone(ctx: Context, vault_runner: FakeRunner, old_key: Key, new_key: Key) -> None:
    os.unlink(old_key.path)
    vault_runner.reply("cryptsetup open", OPENS)
    vault_runner.reply("cryptsetup luksDump", Reply(stdout=ONE_SLOT))
    outcome = rekey_volume(ctx, "vault", new_key)
    assert outcome.changed is True
    assert [argv[0] for argv in vault_runner.executed_mutating()] == ["lvchange"]


def test_rekey_passphrase_volume_needs_current(ctx: Context, fake_runner: FakeRunner, mount_table, device_waits) -> None:
    fake_runner.reply("lvs", Reply(stdout=lvs_output(lv_row("pool"), vault_row("passphrase"))))
    fake_runner.reply("cryptsetup open", FAILS)
    with pytest.raises(InvalidInput) as raised:
        rekey_volume(ctx, "vault", Key(passphrase=b"new words"))
    assert "--passphrase" in str(raised.value)
    assert fake_runner.executed_mutating() == []


def test_rekey_passphrase_volume_new_only_slot(ctx: Context, fake_runner: FakeRunner, mount_table, device_waits) -> None:
    # The new passphrase opens and it is the only key slot: an earlier run finished.
    fake_runner.reply("lvs", Reply(stdout=lvs_output(lv_row("pool"), vault_row("passphrase"))))
    fake_runner.reply("cryptsetup open", OPENS)
    fake_runner.reply("cryptsetup luksDump", Reply(stdout=ONE_SLOT))
    outcome = rekey_volume(ctx, "vault", Key(passphrase=b"new words"))
    assert outcome.changed is False
    assert fake_runner.executed_mutating() == []


def test_rekey_passphrase_volume_new_not_only_slot(ctx: Context, fake_runner: FakeRunner, mount_table, device_waits) -> None:
    fake_runner.reply("lvs", Reply(stdout=lvs_output(lv_row("pool"), vault_row("passphrase"))))
    fake_runner.reply("cryptsetup open", OPENS)
    fake_runner.reply("cryptsetup luksDump", Reply(stdout=TWO_SLOTS))
    with pytest.raises(InvalidInput):
        rekey_volume(ctx, "vault", Key(passphrase=b"new words"))
    assert fake_runner.executed_mutating() == []


# Refusals


def test_rekey_same_material_never_removes(ctx: Context, vault_runner: FakeRunner, old_key: Key, tmp_path: Path) -> None:
    # A copy of the current key under another path: removing "the old key"
    # would remove the only slot, so only the recorded path changes.
    copy = make_key_file(tmp_path, "copy.key", Path(old_key.path).read_bytes())
    vault_runner.reply("cryptsetup open", OPENS)
    outcome = rekey_volume(ctx, "vault", copy)
    assert "luksRemoveKey" not in subcommands(vault_runner)
    assert "luksAddKey" not in subcommands(vault_runner)
    assert outcome.details["key_source"] == copy.path


def test_rekey_last_slot_guard(ctx: Context, vault_runner: FakeRunner, new_key: Key) -> None:
    vault_runner.reply("cryptsetup luksDump", Reply(stdout=ONE_SLOT))
    with pytest.raises(Conflict) as raised:
        rekey_volume(ctx, "vault", new_key)
    assert "would leave no way to open it" in str(raised.value)
    assert "luksRemoveKey" not in subcommands(vault_runner)


def test_rekey_wrong_current_key(ctx: Context, vault_runner: FakeRunner, new_key: Key, tmp_path: Path) -> None:
    wrong = make_key_file(tmp_path, "wrong.key")
    vault_runner.reply("cryptsetup open", FAILS, FAILS)
    with pytest.raises(InvalidInput) as raised:
        rekey_volume(ctx, "vault", new_key, wrong)
    assert f"the current key {wrong.path} does not open volume smokevg/vault" in str(raised.value)
    assert vault_runner.executed_mutating() == []


def test_rekey_missing_recorded_key_file(ctx: Context, vault_runner: FakeRunner, old_key: Key, new_key: Key) -> None:
    os.unlink(old_key.path)
    vault_runner.reply("cryptsetup open", FAILS)
    with pytest.raises(NotFound) as raised:
        rekey_volume(ctx, "vault", new_key)
    assert old_key.path in str(raised.value)
    assert vault_runner.executed_mutating() == []


def test_rekey_plain_volume_refused(ctx: Context, fake_runner: FakeRunner, mount_table, device_waits, new_key: Key) -> None:
    plain = vault_row("x", lv_tags="lvmvol.fs=ext4,lvmvol.volume")
    fake_runner.reply("lvs", Reply(stdout=lvs_output(lv_row("pool"), plain)))
    with pytest.raises(Conflict) as raised:
        rekey_volume(ctx, "vault", new_key)
    assert "is not encrypted" in str(raised.value)
    assert "lvmvol volume encrypt vault" in str(raised.value)


def test_rekey_unfinished_encryption_refused(ctx: Context, fake_runner: FakeRunner, mount_table, device_waits, old_key: Key, new_key: Key) -> None:
    row = vault_row(old_key.path)
    row["lv_tags"] += ",lvmvol.encrypting=104857600"
    fake_runner.reply("lvs", Reply(stdout=lvs_output(lv_row("pool"), row)))
    with pytest.raises(Conflict) as raised:
        rekey_volume(ctx, "vault", new_key)
    assert "unfinished" in str(raised.value)
    assert fake_runner.executed_mutating() == []


def test_rekey_mounted_volume(ctx: Context, fake_runner: FakeRunner, mount_table, device_waits, old_key: Key, new_key: Key) -> None:
    # Mounted volumes are rekeyed too: 254:4 is mounted in the fixture mount table.
    fake_runner.reply("lvs", Reply(stdout=lvs_output(lv_row("pool"), vault_row(old_key.path, lv_kernel_minor="4"))))
    fake_runner.reply("cryptsetup open", FAILS, OPENS)
    fake_runner.reply("cryptsetup luksDump", Reply(stdout=TWO_SLOTS))
    assert rekey_volume(ctx, "vault", new_key).changed is True


def test_rekey_dry_run(ctx: Context, vault_runner: FakeRunner, new_key: Key) -> None:
    vault_runner.dry_run = True
    outcome = rekey_volume(ctx, "vault", new_key)
    assert outcome.changed is True
    assert vault_runner.executed_mutating() == []
    assert [call.argv[1] for call in vault_runner.calls if call.dry_run] == ["luksAddKey", "luksRemoveKey", "--addtag"]
