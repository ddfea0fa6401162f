"""VG and LV name rules and device-mapper names: lvmvol.names."""

from __future__ import annotations

from datetime import datetime

import pytest

from lvmvol import names
from lvmvol.errors import InvalidInput
from lvmvol.names import (
    DM_NAME_MAX,
    LVM_NAME_MAX,
    RESERVED_LV_STRINGS,
    crypt_mapping_name,
    dm_name,
    generate_snapshot_name,
    generate_volume_name,
    lv_device_path,
    validate_lv_name,
    validate_vg_name,
)

VALID_NAMES = ["data", "a", "A9", "db_1", "web.example", "x+y", "a-b", "_tmp", ".hidden", "a..b", "9"]


@pytest.mark.parametrize("name", VALID_NAMES)
def test_lv_name_valid(name: str) -> None:
    validate_lv_name(name)
    validate_lv_name(name, "vg")


@pytest.mark.parametrize("name", VALID_NAMES + ["snapshot", "pvmove1", "a_tmeta"])
def test_vg_name_valid(name: str) -> None:
    # VG names have no reserved prefixes or strings in lvm2.
    validate_vg_name(name)


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("a b", "space"),
        ("a/b", "'/'"),
        ("a:b", "':'"),
        ("dätä", "'ä'"),
        ("a*b", "'*'"),
        ("a\tb", "'\\t'"),
        ("a@b", "'@'"),
        ("a,b", "','"),
    ],
)
def test_lv_name_invalid_characters(name: str, shown: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        validate_lv_name(name)
    message = str(raised.value)
    assert repr(name) in message
    assert f"contains {shown}" in message
    assert "letters, digits and + _ . -" in message


def test_name_lists_each_invalid_character_once() -> None:
    with pytest.raises(InvalidInput) as raised:
        validate_vg_name("a b c/d")
    assert "contains space, '/'," in str(raised.value)


@pytest.mark.parametrize("validate", [validate_lv_name, validate_vg_name])
def test_name_empty(validate) -> None:
    with pytest.raises(InvalidInput) as raised:
        validate("")
    assert "must not be empty" in str(raised.value)


@pytest.mark.parametrize("validate", [validate_lv_name, validate_vg_name])
@pytest.mark.parametrize("name", ["-x", "-", "--data"])
def test_name_leading_hyphen(validate, name: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        validate(name)
    message = str(raised.value)
    assert repr(name) in message
    assert "must not start with '-'" in message


@pytest.mark.parametrize("validate", [validate_lv_name, validate_vg_name])
@pytest.mark.parametrize("name", [".", ".."])
def test_name_dots(validate, name: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        validate(name)
    assert "'.' and '..' are reserved" in str(raised.value)


@pytest.mark.parametrize(
    "name", ["snapshot", "snapshot-2024", "snapshots", "pvmove", "pvmove0", "pvmove_data"]
)
def test_lv_name_reserved_prefix(name: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        validate_lv_name(name)
    message = str(raised.value)
    assert repr(name) in message
    assert "are reserved by LVM" in message


@pytest.mark.parametrize("name", ["my-snapshot", "data.pvmove", "Snapshot"])
def test_lv_name_reserved_word_elsewhere(name: str) -> None:
    # The prefixes are reserved only at the start, and case-sensitively.
    validate_lv_name(name)


def test_reserved_strings_cover_lvm2() -> None:
    # The component suffixes and extra strings of lvm2 2.03's apply_lvname_restrictions().
    lvm2_strings = {
        "_cdata", "_cmeta", "_corig", "_cpool", "_cvol", "_wcorig", "_mimage", "_mlog",
        "_rimage", "_rmeta", "_tdata", "_tmeta", "_vdata", "_imeta", "_iorig",
        "_pmspare", "_vorigin",
    }
    assert lvm2_strings <= set(RESERVED_LV_STRINGS)


@pytest.mark.parametrize("reserved", RESERVED_LV_STRINGS)
@pytest.mark.parametrize("where", ["start", "middle", "end"])
def test_lv_name_reserved_string(reserved: str, where: str) -> None:
    name = {"start": f"{reserved}x", "middle": f"data{reserved}x", "end": f"data{reserved}"}[where]
    with pytest.raises(InvalidInput) as raised:
        validate_lv_name(name)
    message = str(raised.value)
    assert repr(name) in message
    assert repr(reserved) in message


@pytest.mark.parametrize("kind", ["volume", "snapshot", "pool"])
def test_lv_name_error_names_kind(kind: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        validate_lv_name("data_tmeta", kind=kind)
    assert str(raised.value).startswith(f"invalid {kind} name 'data_tmeta'")


@pytest.mark.parametrize("validate", [validate_lv_name, validate_vg_name])
def test_name_max_length(validate) -> None:
    validate("a" * LVM_NAME_MAX)


@pytest.mark.parametrize("validate", [validate_lv_name, validate_vg_name])
@pytest.mark.parametrize("length", [LVM_NAME_MAX + 1, 200])
def test_name_too_long(validate, length: int) -> None:
    name = "a" * length
    with pytest.raises(InvalidInput) as raised:
        validate(name)
    message = str(raised.value)
    assert f"{length} characters" in message
    assert f"the maximum is {LVM_NAME_MAX}" in message
    # The message shows the start of the name, not all of it.
    assert repr(name) not in message
    assert "aaaaaaaaaaaaaaaaaaaa" in message


@pytest.mark.parametrize("validate", [validate_lv_name, validate_vg_name])
def test_name_trailing_newline(validate) -> None:
    with pytest.raises(InvalidInput):
        validate("data\n")


def test_dm_name_plain() -> None:
    assert dm_name("vg", "data") == "vg-data"


def test_dm_name_doubles_hyphens() -> None:
    assert dm_name("my-vg", "web-data-1") == "my--vg-web--data--1"


def test_lv_device_path() -> None:
    assert lv_device_path("my-vg", "a-b") == "/dev/mapper/my--vg-a--b"


def test_crypt_mapping_name() -> None:
    assert crypt_mapping_name("my-vg", "a-b") == "luks-my--vg-a--b"


def test_dm_limit_longest_name() -> None:
    # "luks-" + "vg" + "-" leaves 127 - 8 = 119 characters for the LV name.
    room = DM_NAME_MAX - len("luks-vg-")
    validate_lv_name("a" * room, "vg")


def test_dm_limit_name_too_long() -> None:
    room = DM_NAME_MAX - len("luks-vg-")
    name = "a" * (room + 1)
    with pytest.raises(InvalidInput) as raised:
        validate_lv_name(name, "vg")
    message = str(raised.value)
    assert f"would be {DM_NAME_MAX + 1} characters" in message
    assert f"use at most {room} characters in volume group 'vg'" in message
    assert "each '-' counts twice" in message


def test_dm_limit_without_vg() -> None:
    # Without a VG only lvm2's own limit applies.
    validate_lv_name("a" * LVM_NAME_MAX)


def test_dm_limit_counts_lv_hyphens_twice() -> None:
    room = DM_NAME_MAX - len("luks-vg-")
    # Each hyphen takes two characters in the device-mapper name.
    fits = "a" + "-" * ((room - 1) // 2)
    too_long = fits + "-"
    validate_lv_name(fits, "vg")
    with pytest.raises(InvalidInput):
        validate_lv_name(too_long, "vg")


def test_dm_limit_counts_vg_hyphens_twice() -> None:
    vg = "a-b-c"
    room = DM_NAME_MAX - len("luks-a--b--c-")
    validate_lv_name("x" * room, vg)
    with pytest.raises(InvalidInput) as raised:
        validate_lv_name("x" * (room + 1), vg)
    assert f"use at most {room} characters" in str(raised.value)


def test_dm_limit_long_vg() -> None:
    vg = "v" * 100
    room = DM_NAME_MAX - len("luks-") - len(vg) - 1
    assert room == 21
    validate_lv_name("x" * room, vg)
    with pytest.raises(InvalidInput):
        validate_lv_name("x" * (room + 1), vg)


def test_generated_volume_name_valid() -> None:
    name = generate_volume_name()
    assert name.startswith("vol-")
    assert len(name) == len("vol-") + 8
    validate_lv_name(name, "vg")


def test_generated_volume_names_differ() -> None:
    assert len({generate_volume_name() for _ in range(50)}) == 50


def test_generated_snapshot_name() -> None:
    name = generate_snapshot_name("db", datetime(2026, 12, 4, 18, 30, 5))
    assert name == "db-20261204-183005"
    validate_lv_name(name, "vg", kind="snapshot")


def test_generated_snapshot_name_now(monkeypatch: pytest.MonkeyPatch) -> None:
    class FixedDatetime(datetime):
        @classmethod
        def now(cls, tz=None):
            return cls(2027, 1, 2, 3, 4, 5)

    monkeypatch.setattr(names, "datetime", FixedDatetime)
    assert generate_snapshot_name("web-1") == "web-1-20270102-030405"
