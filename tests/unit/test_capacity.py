"""The over-commit guard: lvmvol.ops.capacity.check_pool_capacity and its use by volume create."""

from __future__ import annotations

import pytest

from lvmvol.errors import Conflict
from lvmvol.ops.capacity import check_pool_capacity
from lvmvol.ops.context import Context
from lvmvol.ops.inventory import read_inventory
from lvmvol.ops.volumes import create_volume

from .fakes import FakeRunner, Reply, lv_row, lvs_output

MiB = 1024 * 1024
GiB = 1024 * MiB


def pool_with(ctx: Context, fake_runner: FakeRunner, data: str = "12.50", metadata: str = "10.64", size: int = 200 * MiB, *volumes):
    """Return the smokevg pool with the given use, size and thin volumes (none by default)."""
    pool = lv_row("pool")
    pool["data_percent"] = data
    pool["metadata_percent"] = metadata
    pool["lv_size"] = str(size)
    fake_runner.reply("lvs", Reply(stdout=lvs_output(pool, *volumes)))
    return read_inventory(ctx).pools[0]


@pytest.fixture
def strict(ctx: Context) -> Context:
    """The context with the default overcommit_ratio of 2, which unit_config raises for other tests."""
    ctx.config.overcommit_ratio = 2.0
    return ctx


def test_within_ratio(strict: Context, fake_runner: FakeRunner, mount_table) -> None:
    pool = pool_with(strict, fake_runner, "12.50", "10.64", 200 * MiB, lv_row("data"))
    # 100 MiB + 300 MiB = 400 MiB, exactly twice the pool.
    assert check_pool_capacity(strict, pool, 300 * MiB, False, "a volume") is None


def test_past_ratio_refused(strict: Context, fake_runner: FakeRunner, mount_table) -> None:
    # The field case: a 1 GiB volume on a 68 MiB pool.
    pool = pool_with(strict, fake_runner, "0.00", "10.00", 68 * MiB)
    with pytest.raises(Conflict) as raised:
        check_pool_capacity(strict, pool, GiB, False, "a 1.0 GiB volume")
    assert str(raised.value) == (
        "cannot add a 1.0 GiB volume to thin pool smokevg/pool: its thin volumes and snapshots would "
        "total 1.0 GiB, 15.1 times its 68.0 MiB of data space, and overcommit_ratio allows 2; "
        "extend the pool, raise overcommit_ratio in the config file, or pass --allow-overcommit "
        "and watch the pool's use with 'lvmvol pool ls'"
    )
    assert raised.value.exit_code == 4


def test_past_ratio_allowed_returns_note(strict: Context, fake_runner: FakeRunner, mount_table) -> None:
    pool = pool_with(strict, fake_runner, "0.00", "10.00", 68 * MiB)
    note = check_pool_capacity(strict, pool, GiB, True, "a 1.0 GiB volume")
    assert note.startswith("thin pool smokevg/pool is over-committed: its thin volumes and snapshots would total 1.0 GiB")


@pytest.mark.parametrize(
    ("data", "metadata", "past"),
    [("80.00", "1.00", "data 80.0% >= 80%"), ("5.00", "93.10", "metadata 93.1% >= 80%")],
)
def test_past_threshold_refused_even_allowed(
    strict: Context, fake_runner: FakeRunner, mount_table, data: str, metadata: str, past: str
) -> None:
    pool = pool_with(strict, fake_runner, data, metadata)
    with pytest.raises(Conflict) as raised:
        check_pool_capacity(strict, pool, MiB, True, "a 1.0 MiB volume")
    message = str(raised.value)
    assert f"it is past its threshold ({past})" in message
    assert f"with data {float(data):.1f}% and metadata {float(metadata):.1f}% in use" in message
    assert "lvextend --size +SIZE smokevg/pool" in message


def test_inactive_pool_use_unknown(strict: Context, fake_runner: FakeRunner, mount_table) -> None:
    pool = pool_with(strict, fake_runner, "", "", 68 * MiB)
    note = check_pool_capacity(strict, pool, GiB, True, "a 1.0 GiB volume")
    assert note.endswith("with data unknown and metadata unknown in use")


def test_create_volume_refused_changes_nothing(strict: Context, fake_runner: FakeRunner, mount_table, device_waits) -> None:
    fake_runner.reply_report("lvs", "lvs_smokevg.json")
    with pytest.raises(Conflict):
        create_volume(strict, "web", 100 * MiB)
    assert fake_runner.executed_mutating() == []


def test_create_volume_allowed_notes(strict: Context, fake_runner: FakeRunner, mount_table, device_waits) -> None:
    fake_runner.reply_report("lvs", "lvs_smokevg.json")
    outcome = create_volume(strict, "web", 100 * MiB, allow_overcommit=True)
    assert outcome.changed is True
    assert "over-committed" in outcome.notes[0]
    assert "lvcreate" in fake_runner.commands()


def test_create_existing_volume_skips_check(strict: Context, fake_runner: FakeRunner, mount_table, device_waits) -> None:
    fake_runner.reply_report("lvs", "lvs_smokevg.json")
    outcome = create_volume(strict, "data", 100 * MiB)
    assert outcome.changed is False
