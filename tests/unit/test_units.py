"""Size parsing and formatting: lvmvol.units."""

from __future__ import annotations

import pytest

from lvmvol.errors import InvalidInput
from lvmvol.units import format_size, parse_percent, parse_size, round_up

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
TiB = 1024 * GiB
PiB = 1024 * TiB


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("100M", 100 * MiB),
        ("100MiB", 100 * MiB),
        ("100m", 100 * MiB),
        ("100mib", 100 * MiB),
        ("100MIB", 100 * MiB),
        ("4K", 4 * KiB),
        ("4KiB", 4 * KiB),
        ("10G", 10 * GiB),
        ("10GiB", 10 * GiB),
        ("1.5G", 1536 * MiB),
        ("0.5M", 512 * KiB),
        ("2T", 2 * TiB),
        ("1P", PiB),
        ("1PiB", PiB),
    ],
)
def test_parse_size_binary(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("100MB", 100_000_000),
        ("100mb", 100_000_000),
        ("4KB", 4_000),
        ("10GB", 10_000_000_000),
        ("1.5GB", 1_500_000_000),
        ("2TB", 2 * 10**12),
        ("1PB", 10**15),
    ],
)
def test_parse_size_decimal(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize(("text", "expected"), [("4096B", 4096), ("1b", 1), ("512B", 512)])
def test_parse_size_bytes(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", [" 10M", "10M ", "10 M", "\t10M\n", "  1.5 GiB  "])
def test_parse_size_whitespace(text: str) -> None:
    assert parse_size(text) == parse_size(text.replace(" ", "").strip())


@pytest.mark.parametrize("text", ["10", "4096", "1.5", " 7 "])
def test_parse_size_bare_number(text: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_size(text)
    message = str(raised.value)
    assert "has no unit" in message
    assert repr(text) in message
    assert "--size" in message
    # The hint suggests a size with a unit.
    assert "100M" in message
    assert "4096B" in message


def test_parse_size_names_option() -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_size("10", "--file-size")
    assert "--file-size" in str(raised.value)


@pytest.mark.parametrize("text", ["10X", "10Q", "10MiBs", "10KK", "10mm", "10kbit", "10Bi", "10iB"])
def test_parse_size_unknown_unit(text: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_size(text)
    message = str(raised.value)
    assert "unknown unit" in message
    assert repr(text) in message


@pytest.mark.parametrize("text", ["", "M", "-5M", "+5M", "1,5G", "1e3M", ".5G", "5.M", "1 0M", "ten M", "0x10M"])
def test_parse_size_invalid(text: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_size(text)
    assert repr(text) in str(raised.value)


@pytest.mark.parametrize("text", ["0M", "0B", "0.0G", "00K"])
def test_parse_size_zero(text: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_size(text)
    message = str(raised.value)
    assert "greater than zero" in message
    assert repr(text) in message


@pytest.mark.parametrize("text", ["0.5B", "1.1K", "0.0001K", "1.3B", "1.0000001M"])
def test_parse_size_fraction_of_byte(text: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_size(text)
    message = str(raised.value)
    assert "not a whole number of bytes" in message
    assert repr(text) in message


@pytest.mark.parametrize(("text", "expected"), [("1.25K", 1280), ("0.25K", 256), ("1.0B", 1)])
def test_parse_size_whole_fraction(text: str, expected: int) -> None:
    assert parse_size(text) == expected


def test_parse_size_invalid_is_exit_code_2() -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_size("10")
    assert raised.value.exit_code == 2


def test_parse_size_long_fraction() -> None:
    # 1.00000000000000000000000000001 PiB is 1 PiB plus about 1e-14 bytes.
    with pytest.raises(InvalidInput):
        parse_size("1.00000000000000000000000000001P")


@pytest.mark.parametrize(("text", "expected"), [("80%", 80.0), ("100%", 100.0), ("0.5%", 0.5), (" 50 % ", 50.0)])
def test_parse_percent(text: str, expected: float) -> None:
    assert parse_percent(text) == expected


@pytest.mark.parametrize("text", ["80", "80M", "%", "abc", "-5%", "80%%"])
def test_parse_percent_not_percentage(text: str) -> None:
    assert parse_percent(text) is None


@pytest.mark.parametrize("text", ["0%", "0.0%", "100.1%", "150%"])
def test_parse_percent_out_of_range(text: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_percent(text)
    message = str(raised.value)
    assert repr(text) in message
    assert "at most 100" in message


@pytest.mark.parametrize(
    ("size", "multiple", "expected"),
    [
        (0, 512, 0),
        (1, 512, 512),
        (512, 512, 512),
        (513, 512, 1024),
        (100 * MiB, 4 * MiB, 100 * MiB),
        (100_000_000, 4 * MiB, 96 * MiB),
        (4 * MiB + 1, 4 * MiB, 8 * MiB),
    ],
)
def test_round_up(size: int, multiple: int, expected: int) -> None:
    assert round_up(size, multiple) == expected


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (0, "0 B"),
        (1, "1 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (1536, "1.5 KiB"),
        (100 * MiB, "100.0 MiB"),
        (1536 * MiB, "1.5 GiB"),
        (10**9, "953.7 MiB"),
        (2 * TiB, "2.0 TiB"),
        (3 * PiB, "3.0 PiB"),
        (2048 * PiB, "2048.0 PiB"),
        (1.5 * KiB, "1.5 KiB"),
    ],
)
def test_format_size(size: int, expected: str) -> None:
    assert format_size(size) == expected


def test_format_size_rounds_into_next_unit() -> None:
    assert format_size(MiB - 1) == "1.0 MiB"
