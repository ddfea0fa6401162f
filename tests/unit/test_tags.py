"""Tag value encoding and settings: lvmvol.tags."""

from __future__ import annotations

import re

import pytest

from lvmvol import tags
from lvmvol.tags import decode_value, encode_value, parse_settings, setting_tag

# Characters lvm2 2.03 accepts in a tag.
LVM_TAG = re.compile(r"[A-Za-z0-9_+.\-/=!:#&]*")

VALUES = [
    "",
    "ext4",
    "/var/lib/lvmvol/keys/db.key",
    "/srv/my data/key file",
    "a:b",
    "::",
    ":3a",
    "a:3ab",
    "100%",
    "C:\\keys",
    "schlüssel",
    "ключ",
    "鍵",
    "emoji \U0001F511",
    "tab\tnew\nline",
    "quote\"'",
    "x=y,z",
    "\x00",
]


@pytest.mark.parametrize("value", VALUES)
def test_encode_decode_round_trip(value: str) -> None:
    assert decode_value(encode_value(value)) == value


@pytest.mark.parametrize("value", VALUES)
def test_encoded_value_is_valid_tag(value: str) -> None:
    assert LVM_TAG.fullmatch(encode_value(value))


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        ("ext4", "ext4"),
        ("/srv/a_b+c.d-e=f", "/srv/a_b+c.d-e=f"),
        ("my data", "my:20data"),
        ("a:b", "a:3ab"),
        ("ü", ":c3:bc"),
        ("a,b", "a:2cb"),
        ("100%", "100:25"),
    ],
)
def test_encode_value(value: str, encoded: str) -> None:
    assert encode_value(value) == encoded


def test_encode_uses_lowercase_hex() -> None:
    assert encode_value("\u00ff") == ":c3:bf"


def test_decode_plain_text() -> None:
    assert decode_value("/var/lib/x.img") == "/var/lib/x.img"


def test_setting_tag() -> None:
    assert setting_tag("fs", "ext4") == "lvmvol.fs=ext4"


def test_setting_tag_encodes_value() -> None:
    assert setting_tag(tags.LOOP_FILE, "/srv/pool file.img") == "lvmvol.loopfile=/srv/pool:20file.img"


def test_parse_settings() -> None:
    settings = parse_settings(
        [
            tags.VOLUME,
            tags.INCOMPLETE,
            "lvmvol.fs=xfs",
            "lvmvol.loopfile=/srv/pool:20file.img",
            "backup=daily",
            "other.fs=ext4",
        ]
    )
    assert settings == {"fs": "xfs", "loopfile": "/srv/pool file.img"}


def test_parse_settings_value_with_equals() -> None:
    assert parse_settings(["lvmvol.opts=a=b"]) == {"opts": "a=b"}


def test_parse_settings_empty() -> None:
    assert parse_settings([]) == {}


@pytest.mark.parametrize("value", VALUES)
def test_parse_settings_round_trip(value: str) -> None:
    assert parse_settings([setting_tag("key", value)]) == {"key": value}


def test_marker_tags() -> None:
    assert tags.POOL == "lvmvol.pool"
    assert tags.VOLUME == "lvmvol.volume"
    assert tags.INCOMPLETE == "lvmvol.incomplete"
