"""Device checks for pool init: lvm2 filters, wipefs listings, dmsetup reports, device names."""

from __future__ import annotations

import json

import pytest

from lvmvol import devices, lvm, lvm_filter
from lvmvol.names import dm_name, split_dm_name
from lvmvol.ops.pool_health import Autoextend, growth_warning

from .fakes import FakeRunner, Reply

MiB = 1024 * 1024


@pytest.mark.parametrize(
    ("patterns", "names", "accepted", "pattern"),
    [
        (["a|.*|"], ["/dev/loop3"], True, "a|.*|"),
        (["r|^/dev/loop3$|", "a|.*|"], ["/dev/loop3"], False, "r|^/dev/loop3$|"),
        # Another name of the same device matches "a" first, so lvm2 accepts it.
        (["r|^/dev/loop3$|", "a|.*|"], ["/dev/loop3", "/dev/block/7:3"], True, "a|.*|"),
        (["a|^/dev/sd|", "r|.*|"], ["/dev/loop3", "/dev/block/7:3"], False, "r|.*|"),
        (["r/loop/"], ["/dev/loop3"], False, "r/loop/"),
        ([], ["/dev/loop3"], True, ""),
        (["r|^/dev/sdb$|"], ["/dev/loop3"], True, ""),
        # A pattern Python cannot compile is skipped.
        (["r|[|", "a|.*|"], ["/dev/loop3"], True, "a|.*|"),
    ],
)
def test_filter_evaluation(patterns, names, accepted, pattern) -> None:
    verdict = lvm_filter.evaluate(patterns, names, "devices/filter")

    assert verdict.accepted is accepted
    assert verdict.pattern == pattern


@pytest.mark.parametrize(
    ("value", "strings"),
    [
        ('"a|.*|"', ["a|.*|"]),
        ('["r|/dev/sdb|","a|.*|"]', ["r|/dev/sdb|", "a|.*|"]),
        ("100", []),
        ('"with \\"quote\\""', ['with "quote"']),
    ],
)
def test_config_strings(value: str, strings: list[str]) -> None:
    assert lvm.config_strings(value) == strings


def test_config_values_skips_unknown_keys(fake_runner: FakeRunner) -> None:
    fake_runner.reply(
        "lvmconfig",
        Reply(stdout='global_filter=["r|^/dev/loop3$|"]\n'),
        Reply(returncode=5, stderr="Configuration node devices/use_devicesfile not found\n"),
    )

    values = lvm.config_values(fake_runner, "devices/global_filter", "devices/use_devicesfile")

    assert values == {"devices/global_filter": '["r|^/dev/loop3$|"]'}


def test_check_device_reports_global_filter(fake_runner: FakeRunner) -> None:
    fake_runner.reply("lvmconfig", Reply(stdout='global_filter=["r|loop|"]\n'), Reply(stdout='filter="a|.*|"\n'), Reply(stdout="use_devicesfile=0\n"), Reply(stdout='devicesfile="system.devices"\n'))

    admission = lvm_filter.check_device(fake_runner, ["/dev/loop3"])

    assert admission.rejection is not None
    assert admission.rejection.key == "devices/global_filter"
    assert admission.rejection.pattern == "r|loop|"


def test_devices_file_note(fake_runner: FakeRunner, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LVM_SYSTEM_DIR", str(tmp_path))
    (tmp_path / "devices").mkdir()
    (tmp_path / "devices" / "system.devices").write_text("VERSION=1.1.1\nIDTYPE=devname IDNAME=/dev/sdb DEVNAME=/dev/sdb PVID=x\n")
    fake_runner.reply("lvmconfig", Reply(stdout='global_filter="r|.*|"\n'), Reply(stdout='filter="r|.*|"\n'), Reply(stdout="use_devicesfile=1\n"), Reply(stdout='devicesfile="system.devices"\n'))

    admission = lvm_filter.check_device(fake_runner, ["/dev/loop3"])

    # With a devices file, lvm2 skips both filter settings.
    assert admission.rejection is None
    assert admission.note("/dev/loop3") == (
        f"lvm2's devices file {tmp_path}/devices/system.devices does not list /dev/loop3; pvcreate adds it"
    )
    assert lvm_filter.check_device(fake_runner, ["/dev/sdb"]).note("/dev/sdb") is None


def test_list_signatures_parses_wipefs_json(fake_runner: FakeRunner) -> None:
    document = {
        "signatures": [
            {"device": "loop3", "offset": "0x438", "type": "ext4", "uuid": "1-2", "label": "data"},
            {"device": "loop3", "offset": "0x1fe", "type": "dos", "uuid": None, "label": None},
        ]
    }
    fake_runner.reply("wipefs", Reply(stdout=json.dumps(document)))

    found = devices.list_signatures(fake_runner, "/dev/loop3")

    assert [signature.describe() for signature in found] == [
        "ext4 at offset 0x438 on /dev/loop3 (label 'data')",
        "dos at offset 0x1fe on /dev/loop3",
    ]
    assert fake_runner.calls[0].argv == ["wipefs", "--no-act", "--json", "/dev/loop3"]
    assert fake_runner.calls[0].mutating is False


def test_list_signatures_empty_device(fake_runner: FakeRunner) -> None:
    assert devices.list_signatures(fake_runner, "/dev/loop3") == []


def test_list_dm_devices(fake_runner: FakeRunner) -> None:
    fake_runner.reply("dmsetup", Reply(stdout="vg-vol;Suspended;0\nluks-vg-db;Active;1\n"))

    found = devices.list_dm_devices(fake_runner)

    assert found == [devices.DmDevice("vg-vol", True, 0), devices.DmDevice("luks-vg-db", False, 1)]


def test_crypt_mapping_names_none(fake_runner: FakeRunner) -> None:
    fake_runner.reply("dmsetup", Reply(stdout="No devices found\n"))

    assert devices.crypt_mapping_names(fake_runner) == []


@pytest.mark.parametrize(
    ("vg", "lv"),
    [("vg", "lv"), ("my-vg", "l-v"), ("a--b", "c"), ("vg-", "x"), ("v", "pool_tdata")],
)
def test_split_dm_name_reverses_dm_name(vg: str, lv: str) -> None:
    assert split_dm_name(dm_name(vg, lv)) == (vg, lv)


@pytest.mark.parametrize("name", ["nohyphen", "-x", "x-", "only--doubled"])
def test_split_dm_name_rejects(name: str) -> None:
    assert split_dm_name(name) is None


def test_growth_warning_without_free_space() -> None:
    warning = growth_warning(Autoextend(threshold=100), "pool", "vg", 400 * MiB, 0, 4 * MiB)

    assert warning is not None
    assert "vgextend vg DEVICE" in warning
    assert "off (threshold 100%)" in warning


def test_growth_warning_needs_one_autoextend_step() -> None:
    autoextend = Autoextend(threshold=70, percent=20)

    assert growth_warning(autoextend, "pool", "vg", 400 * MiB, 80 * MiB, 4 * MiB) is None
    assert growth_warning(autoextend, "pool", "vg", 400 * MiB, 76 * MiB, 4 * MiB) is not None


def test_autoextend_off_without_monitoring() -> None:
    assert Autoextend(threshold=70, monitoring=False).enabled is False
    assert Autoextend(threshold=70, monitoring=False).describe() == "off (activation/monitoring = 0)"


def test_config_values_falls_back_to_default(fake_runner: FakeRunner) -> None:
    fake_runner.reply(
        "lvmconfig",
        Reply(returncode=5, stderr="Configuration node activation/thin_pool_autoextend_threshold not found\n"),
        Reply(stdout="thin_pool_autoextend_threshold=100\n"),
        Reply(returncode=5, stderr="Configuration node devices/filter not found\n"),
        Reply(stdout='# filter=["a|.*|"]\n'),
    )

    values = lvm.config_values(fake_runner, "activation/thin_pool_autoextend_threshold", "devices/filter")

    assert values == {"activation/thin_pool_autoextend_threshold": "100"}
    assert [call.argv for call in fake_runner.calls][:2] == [
        ["lvmconfig", "activation/thin_pool_autoextend_threshold"],
        ["lvmconfig", "--type", "default", "activation/thin_pool_autoextend_threshold"],
    ]
