"""Property-based tests of the size parser and the name validators.

hypothesis generates inputs, including the odd ones a person or a script
might pass: Unicode digits and spaces, huge numbers, control characters.
Each property holds for every input: a valid input gives the exact result,
and any other input raises InvalidInput, never another exception.
"""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from lvmvol.errors import InvalidInput
from lvmvol.names import (
    DM_NAME_MAX,
    RESERVED_LV_PREFIXES,
    RESERVED_LV_STRINGS,
    crypt_mapping_name,
    dm_name,
    validate_lv_name,
    validate_pool_name,
    validate_vg_name,
)
from lvmvol.units import format_size, parse_size, round_up

BINARY_UNITS = {"K": 1, "M": 2, "G": 3, "T": 4, "P": 5}
DECIMAL_UNITS = {"KB": 1, "MB": 2, "GB": 3, "TB": 4, "PB": 5}
LVM_NAME = re.compile(r"[A-Za-z0-9+_.][A-Za-z0-9+_.-]*")
NAME_CHARACTERS = string.ascii_letters + string.digits + "+_.-"


def random_case(draw, text: str) -> str:
    return "".join(draw(st.sampled_from((char.lower(), char.upper()))) for char in text)


@st.composite
def binary_sizes(draw):
    number = draw(st.integers(min_value=1, max_value=10**6))
    unit = draw(st.sampled_from(sorted(BINARY_UNITS)))
    spelled = unit + draw(st.sampled_from(("", "iB")))
    return f"{number}{random_case(draw, spelled)}", number * 1024 ** BINARY_UNITS[unit]


@st.composite
def decimal_sizes(draw):
    number = draw(st.integers(min_value=1, max_value=10**6))
    unit = draw(st.sampled_from(sorted(DECIMAL_UNITS)))
    return f"{number}{random_case(draw, unit)}", number * 1000 ** DECIMAL_UNITS[unit]


@given(binary_sizes())
def test_binary_units_exact(case):
    text, expected = case
    assert parse_size(text) == expected


@given(decimal_sizes())
def test_decimal_units_exact(case):
    text, expected = case
    assert parse_size(text) == expected


@given(st.integers(min_value=1, max_value=2**64))
def test_bytes_unit_exact(number):
    assert parse_size(f"{number}B") == number


@given(st.integers(min_value=0, max_value=2**64))
def test_bare_number_rejected(number):
    with pytest.raises(InvalidInput, match="has no unit"):
        parse_size(str(number))


@given(st.text(max_size=30))
@example("٣M")  # Arabic-Indic digit three
@example("1\u2009M")  # thin space
@example("1e3M")
@example("-1M")
@example("0M")
@example("NaNM")
@example("1." + "0" * 400 + "1K")
def test_any_size_text_parsed_or_rejected(text):
    try:
        size = parse_size(text)
    except InvalidInput as error:
        assert "--size" in str(error)
        return
    assert isinstance(size, int)
    assert size > 0
    assert text.strip()[0] in string.digits


@given(st.integers(min_value=1, max_value=2**60), st.sampled_from((512, 4 * 1024**2, 64 * 1024**2)))
def test_round_up_smallest_multiple(size, multiple):
    rounded = round_up(size, multiple)
    assert rounded % multiple == 0
    assert size <= rounded < size + multiple


@given(st.integers(min_value=0, max_value=2**62))
def test_format_size_within_rounding(size):
    text = format_size(size)
    number, unit = text.split()
    if unit == "B":
        assert int(number) == size
    else:
        # One decimal is off by at most half a tenth of the unit (plus float error).
        unit_bytes = 1024 ** ("KMGTP".index(unit[0]) + 1)
        assert abs(float(number) * unit_bytes - size) <= 0.0501 * unit_bytes


@given(st.text(max_size=140))
@example("snapshot-2024")
@example("data_tmeta")
@example("a b")
@example("-x")
@example("x" * 200)
@example("..")
@example("vol\n")
def test_lv_name_accepted_or_rejected(name):
    try:
        validate_lv_name(name, "vg0")
    except InvalidInput:
        return
    assert LVM_NAME.fullmatch(name)
    assert name not in (".", "..")
    assert not name.startswith(RESERVED_LV_PREFIXES)
    assert not any(reserved in name for reserved in RESERVED_LV_STRINGS)
    assert len(crypt_mapping_name("vg0", name)) <= DM_NAME_MAX


@given(st.text(alphabet=NAME_CHARACTERS, min_size=1, max_size=130), st.text(alphabet=NAME_CHARACTERS, min_size=1, max_size=40))
def test_accepted_names_fit_device_mapper(name, vg):
    assume(not vg.startswith("-") and vg not in (".", ".."))
    try:
        validate_vg_name(vg)
        validate_lv_name(name, vg)
    except InvalidInput:
        return
    assert len(crypt_mapping_name(vg, name)) <= DM_NAME_MAX
    assert len(dm_name(vg, name)) <= DM_NAME_MAX


@given(st.text(alphabet=NAME_CHARACTERS, min_size=1, max_size=130), st.text(alphabet=NAME_CHARACTERS, min_size=1, max_size=40))
def test_accepted_pool_names_fit_device_mapper(name, vg):
    assume(not vg.startswith("-") and vg not in (".", ".."))
    try:
        validate_vg_name(vg)
        validate_pool_name(name, vg)
    except InvalidInput:
        return
    assert len(dm_name(vg, name) + "_tdata") <= DM_NAME_MAX


@given(st.text(min_size=1, max_size=20).filter(lambda text: any(char not in NAME_CHARACTERS for char in text)))
def test_foreign_characters_rejected(name):
    with pytest.raises(InvalidInput):
        validate_lv_name(name)
    with pytest.raises(InvalidInput):
        validate_vg_name(name)
