"""docs/json.md lists the same fields as the JSON objects lvmvol prints."""

from __future__ import annotations

import json
import re
from pathlib import Path

from lvmvol.ops.activation import ActivationReport, Item
from lvmvol.ops.check import Problem
from lvmvol.ops.inventory import read_inventory
from lvmvol.ops.pool_health import Autoextend, PoolHealth

from .conftest import unit_config
from .fakes import FakeRunner
from .test_cli import invoke  # noqa: F401

JSON_DOC = Path(__file__).resolve().parents[2] / "docs" / "json.md"
FIELD_ROW = re.compile(r"^\| `([a-z_]+)` \|", re.MULTILINE)


def documented_tables(heading: str) -> list[list[str]]:
    """Return the field names of each table in the section under ``heading``, in order."""
    text = JSON_DOC.read_text()
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    section = text[start : end if end != -1 else len(text)]
    tables = []
    for block in re.split(r"\n\n+", section):
        fields = FIELD_ROW.findall(block)
        if fields:
            tables.append(fields)
    return tables


def read_smokevg(fake_runner: FakeRunner, mount_table):
    fake_runner.reply_report("lvs", "lvs_smokevg.json")
    from lvmvol.ops.context import Context

    return read_inventory(Context(config=unit_config(), runner=fake_runner))


def test_volume_fields_documented(fake_runner: FakeRunner, mount_table) -> None:
    volume = read_smokevg(fake_runner, mount_table).volumes[0]

    assert documented_tables("Volume object") == [list(volume.to_dict())]


def test_pool_fields_documented(fake_runner: FakeRunner, mount_table) -> None:
    pool = read_smokevg(fake_runner, mount_table).pools[0]
    health = PoolHealth("monitored", Autoextend(threshold=70, percent=20), None)

    assert documented_tables("Pool object") == [[*pool.to_dict(), *health.to_dict()]]


def test_activate_fields_documented() -> None:
    report = ActivationReport([Item("pool", "vg/pool", ok=True)])

    assert documented_tables("`activate --json`") == [list(report.to_dict()), list(report.items[0].to_dict())]


def test_check_fields_documented() -> None:
    problem = Problem("orphan-mapping", "luks-x", "no volume")

    tables = documented_tables("`check --json`")

    assert tables[0] == ["changed", "problems", "remaining"]
    assert tables[1] == [*problem.to_dict(), "repaired", "repair_error"]


def test_check_output_matches_doc(invoke) -> None:
    result = invoke("check", "--json")
    # Piped JSON is one line; the error line about the remaining problems follows it.
    document = json.loads(result.output.splitlines()[0])

    tables = documented_tables("`check --json`")

    assert list(document) == tables[0]
    assert document["problems"], "the recorded smokevg report should show a problem"
    assert list(document["problems"][0]) == tables[1]
