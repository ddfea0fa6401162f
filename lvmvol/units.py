"""Size parsing and formatting.

lvmvol converts every size to bytes itself instead of passing the user's text
to lvm2, because lvm2 reads ``10GB`` and ``10G`` alike as binary units and
rejects byte counts that are not a multiple of 512.

Accepted forms (the unit is case-insensitive):

- ``K``, ``M``, ``G``, ``T``, ``P`` and ``KiB`` … ``PiB``: binary, powers of 1024.
- ``KB``, ``MB``, ``GB``, ``TB``, ``PB``: decimal, powers of 1000.
- ``B``: bytes.
- A bare number is rejected, because lvm2 reads it as MiB and other tools as bytes.

Fractions are allowed (``1.5G``) as long as the result is a whole number of bytes.
"""

from __future__ import annotations

import re

from lvmvol.errors import InvalidInput

SECTOR = 512

_BINARY = {"k": 1, "m": 2, "g": 3, "t": 4, "p": 5}
# re.ASCII: \d and \s match only ASCII digits and spaces, so "٣M" (an
# Arabic-Indic three) or a thin space is rejected instead of parsed.
_SIZE_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$", re.ASCII)
_PERCENT_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$", re.ASCII)

_UNIT_HELP = "use a unit: 100M or 100MiB (binary), 100MB (decimal), 4096B (bytes)"


def _unit_factor(unit: str) -> int | None:
    unit = unit.lower()
    if unit == "b":
        return 1
    if len(unit) == 1 and unit in _BINARY:
        return 1024 ** _BINARY[unit]
    if len(unit) == 3 and unit.endswith("ib") and unit[0] in _BINARY:
        return 1024 ** _BINARY[unit[0]]
    if len(unit) == 2 and unit.endswith("b") and unit[0] in _BINARY:
        return 1000 ** _BINARY[unit[0]]
    return None


def parse_size(text: str, option: str = "--size") -> int:
    """Parse a size such as ``100M`` or ``1.5GiB`` into bytes.

    Raises ``InvalidInput`` naming ``option`` and the text when the number or
    the unit is invalid, the unit is missing, or the size is zero.
    """
    match = _SIZE_PATTERN.match(text)
    if not match:
        raise InvalidInput(f"invalid size {text!r} for {option}", _UNIT_HELP)
    number, unit = match.groups()
    if not unit:
        raise InvalidInput(f"size {text!r} for {option} has no unit", _UNIT_HELP)
    factor = _unit_factor(unit)
    if factor is None:
        raise InvalidInput(f"unknown unit {unit!r} in size {text!r} for {option}", _UNIT_HELP)
    # Imported here: only commands that take a size parse one.
    from decimal import Decimal, InvalidOperation, localcontext

    try:
        with localcontext() as context:
            context.prec = len(number) + 40
            exact = Decimal(number) * factor
    except InvalidOperation:
        raise InvalidInput(f"invalid size {text!r} for {option}", _UNIT_HELP) from None
    if exact != exact.to_integral_value():
        raise InvalidInput(
            f"size {text!r} for {option} is not a whole number of bytes",
            "use a smaller unit",
        )
    size = int(exact)
    if size <= 0:
        raise InvalidInput(f"size {text!r} for {option} must be greater than zero")
    return size


def parse_size_change(text: str, option: str = "--size") -> tuple[int, bool]:
    """Parse ``SIZE`` or ``+SIZE``; return (bytes, True when the size is added to the current one)."""
    stripped = text.strip()
    if not stripped.startswith("+"):
        return parse_size(stripped, option), False
    try:
        return parse_size(stripped[1:], option), True
    except InvalidInput as error:
        # Name what the user typed, "+10", not the part after the sign.
        raise InvalidInput(error.message.replace(repr(stripped[1:]), repr(text), 1), error.hint) from None


def parse_percent(text: str, option: str = "--size") -> float | None:
    """Return the percentage in ``N%``, or None when ``text`` is not a percentage."""
    match = _PERCENT_PATTERN.match(text)
    if not match:
        return None
    percent = float(match.group(1))
    if not 0 < percent <= 100:
        raise InvalidInput(
            f"percentage {text!r} for {option} must be greater than 0 and at most 100"
        )
    return percent


def round_up(size: int, multiple: int) -> int:
    """Round ``size`` up to a whole number of ``multiple`` (an extent, a sector)."""
    return -(-size // multiple) * multiple


def format_size(size: int | float) -> str:
    """Format bytes in binary units with one decimal: ``100.0 MiB``."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if unit == "B" and abs(value) < 1024:
            return f"{int(value)} B"
        # Round first, so 1048575 bytes shows as 1.0 MiB, not 1024.0 KiB.
        if abs(round(value, 1)) < 1024 or unit == "PiB":
            return f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")
