"""lvmvol's own cost on a real CPU: listings against a replayed lvs report.

The VM benchmark (run.py) runs under software emulation, where starting
Python costs seconds. This script measures lvmvol's own part of a listing
(start-up, imports, parsing, JSON output) on the CPU it runs on. It needs no
device-mapper: a stand-in ``lvs`` first on PATH prints a recorded report of N
thin volumes, the rows lvmvol would get from lvm2. It starts no lvm2 command
and opens no device, so it is safe on any host:

    .bench-venv/bin/python benchmarks/replay.py      # after make bench, or make replay

The stand-in is a shell script that runs ``cat``. Its own time is reported
next to lvmvol's, so lvmvol's own cost is the difference.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RECORDED = REPO / "tests" / "unit" / "data" / "lvs_smokevg.json"
SIZES = (10, 100, 500)


def report_with(volumes: int) -> dict:
    """Return the recorded report with its thin volume ``data`` copied ``volumes`` times under new names."""
    recorded = json.loads(RECORDED.read_text())
    rows = recorded["report"][0]["lv"]
    template = next(row for row in rows if row["lv_name"] == "data")
    others = [row for row in rows if "lvmvol.volume" not in row["lv_tags"].split(",")]
    copies = []
    for number in range(volumes):
        row = copy.deepcopy(template)
        row["lv_name"] = f"v{number}"
        row["lv_uuid"] = f"{number:06d}-0000-0000-0000-0000-0000-000000"
        row["lv_dm_path"] = f"/dev/mapper/smokevg-v{number}"
        row["lv_kernel_minor"] = str(100 + number)
        row["thin_id"] = str(number + 1)
        copies.append(row)
    return {"report": [{"lv": others + copies}]}


def timed(argv: list[str], environment: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=True)
    return time.perf_counter() - started


def median_of(argv: list[str], environment: dict[str, str], rounds: int) -> float:
    timed(argv, environment)  # one unmeasured run loads the files into the page cache
    return statistics.median(timed(argv, environment) for _ in range(rounds))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20, help="Runs of each command (default 20).")
    arguments = parser.parse_args()

    python = sys.executable
    lvmvol = [python, "-m", "lvmvol"]
    with tempfile.TemporaryDirectory(prefix="lvmvol-replay-") as scratch:
        stand_in_dir = Path(scratch) / "bin"
        stand_in_dir.mkdir()
        stand_in = stand_in_dir / "lvs"
        environment = {
            **os.environ,
            "LC_ALL": "C",
            "PATH": f"{stand_in_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "PYTHONPATH": str(REPO),
        }
        config = Path(scratch) / "config.toml"
        config.write_text(f'lock_dir = "{scratch}"\n')

        print(f"# lvmvol replay, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
        print(f"kernel {os.uname().release}, {os.cpu_count()} CPU(s), Python {sys.version.split()[0]} ({python}), "
              f"median of {arguments.rounds} runs")
        baseline = median_of([python, "-c", "pass"], environment, arguments.rounds)
        version = median_of([*lvmvol, "--version"], environment, arguments.rounds)
        print(f"python -c pass {baseline * 1000:.1f} ms; lvmvol --version {version * 1000:.1f} ms "
              f"({version / baseline:.2f} x)")
        print("| volumes | lvmvol volume ls --json | stand-in lvs | lvmvol's own time | of which interpreter start-up |")
        print("|---|---|---|---|---|")
        for size in SIZES:
            report = Path(scratch) / f"lvs-{size}.json"
            report.write_text(json.dumps(report_with(size)))
            stand_in.write_text(f"#!/bin/sh\nexec cat {report}\n")
            stand_in.chmod(0o755)
            listing = median_of([*lvmvol, "--config", str(config), "volume", "ls", "--json"], environment,
                                arguments.rounds)
            bare = median_of([str(stand_in)], environment, arguments.rounds)
            print(f"| {size} | {listing * 1000:.1f} ms | {bare * 1000:.1f} ms | {(listing - bare) * 1000:.1f} ms "
                  f"| {baseline * 1000:.1f} ms |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
