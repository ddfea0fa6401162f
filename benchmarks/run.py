"""Measure lvmvol against the bare lvm2, cryptsetup and mkfs commands it runs.

Runs inside the throwaway VM, as root, on loop devices it makes itself:

    make bench BENCH_ARGS='[--repeat 5] [--repeat-large 3] [--sections ...]'

lvmvol runs on the interpreter that runs this script; make bench uses a venv
on the distribution's python3 (.bench-venv), as administrators run lvmvol.

Each comparison alternates lvmvol and the bare commands (ABBA order) on the
same VG and reports the median of the runs and their ratio. lvmvol runs as
a real process (the installed ``lvmvol`` script, else ``python -m lvmvol``), timed from outside
like the bare commands, so every lvmvol figure includes Python's start-up.
One extra run of each operation with ``--debug`` lists the external
commands lvmvol ran, their durations and the udev waits. docs/benchmarks.md
explains the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# The interpreter that runs this script runs lvmvol too, and gives the
# python -c pass baseline. lvmvol runs as administrators start it: the
# script that pip installed next to the interpreter (it imports this
# checkout's lvmvol, which PYTHONPATH puts first), else python -m lvmvol.
PYTHON = Path(sys.executable)
SCRIPT = PYTHON.parent / "lvmvol"
LVMVOL = [SCRIPT] if SCRIPT.exists() else [PYTHON, "-m", "lvmvol"]
# For python -X importtime and python -m cProfile.
LVMVOL_MODULE = ["-m", "lvmvol"]
LISTING_SIZES = (10, 100, 500)
VOLUME_SIZE = "64M"
VOLUME_BYTES = 64 * 1024 * 1024
# Thin LVs created per `lvm` shell process when filling the listing VG.
FILL_BATCH = 100
# The parts of the benchmark, in the order they run; each is a Bench method.
SECTIONS = ("startup", "listing", "create", "create_luks", "snapshot")
# PYTHONPATH puts this checkout's lvmvol before the one that an editable
# install in .venv may point to (another worktree, say).
ENVIRONMENT = {**os.environ, "LC_ALL": "C", "LVM_SUPPRESS_FD_WARNINGS": "1", "PYTHONPATH": str(REPO)}

# The bare equivalents of what lvmvol runs, with the same options as
# lvmvol.lvm.create_thin_volume, lvmvol.fs.make_filesystem and lvmvol.crypt
# for a key file the administrator brings (cryptsetup's default PBKDF).
BARE_CREATE = """\
set -e
lvcreate --type thin --virtualsize {size}b --thinpool {pool} --name {name} \\
    --wipesignatures y --yes --addtag lvmvol.volume --addtag lvmvol.fs=ext4 {vg} >/dev/null
mkfs.ext4 -q -F -E nodiscard /dev/{vg}/{name}
"""
BARE_LUKS = """\
set -e
lvcreate --type thin --virtualsize {size}b --thinpool {pool} --name {name} \\
    --wipesignatures y --yes --addtag lvmvol.volume --addtag lvmvol.fs=ext4 {vg} >/dev/null
cryptsetup luksFormat --type luks2 --batch-mode --key-file {key} /dev/{vg}/{name}
cryptsetup open --type luks2 --batch-mode --key-file {key} /dev/{vg}/{name} {mapping}
mkfs.ext4 -q -F -E nodiscard /dev/mapper/{mapping}
mkdir -p {mountpoint}
mount -t ext4 /dev/mapper/{mapping} {mountpoint}
"""
BARE_SNAPSHOT = """\
set -e
lvcreate --snapshot --setactivationskip n --name {name} --yes {vg}/{origin} >/dev/null
"""


@dataclass
class Sample:
    seconds: float
    returncode: int
    stdout: str
    stderr: str
    max_rss_kib: int


@dataclass
class Comparison:
    label: str
    lvmvol: list[float] = field(default_factory=list)
    bare: list[float] = field(default_factory=list)
    # Python interpreter start-ups in one lvmvol run of this operation.
    startups: int = 1
    target: float | None = None

    def ratio(self) -> float:
        return statistics.median(self.lvmvol) / statistics.median(self.bare)


def run(argv: list[str], *, check: bool = True, input: bytes | None = None) -> Sample:
    """Run ``argv`` and return its wall time and peak RSS (``wait4``, this process tree's largest)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.monotonic()
        process = subprocess.Popen(
            [str(arg) for arg in argv],
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=ENVIRONMENT,
        )
        if input is not None:
            process.stdin.write(input)
            process.stdin.close()
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.monotonic() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        sample = Sample(
            seconds,
            process.returncode,
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
            usage.ru_maxrss,
        )
    if check and sample.returncode != 0:
        raise SystemExit(
            f"benchmark: {shlex.join(map(str, argv))} failed with exit code {sample.returncode}\n"
            f"{sample.stderr}{sample.stdout}"
        )
    return sample


def bash(script: str) -> Sample:
    return run(["bash", "-c", script])


class Bench:
    """The loop devices, VGs and configuration of one benchmark run."""

    def __init__(self, scratch: Path, repeat: int, repeat_large: int):
        self.scratch = scratch
        self.repeat = repeat
        self.repeat_large = repeat_large
        suffix = secrets.token_hex(2)
        self.vg = f"bench{suffix}"
        self.list_vg = f"benchls{suffix}"
        self.loops: dict[str, tuple[str, Path]] = {}
        self.key_dir = Path(tempfile.mkdtemp(prefix="bench-keys-"))
        self.mount_root = self.key_dir / "mnt"
        self.key = self.key_dir / "user.key"
        self.config = self.key_dir / "config.toml"
        self.comparisons: list[Comparison] = []
        self.lines: list[str] = []
        # Filled by startup() and listing(); the summary leaves out what did not run.
        self.startup_seconds: float | None = None
        self.startup_ratio: float | None = None
        self.help_ratio: float | None = None
        self.listing_rss: dict[int, tuple[int, int]] = {}

    # Set-up and clean-up ------------------------------------------------

    def make_vg(self, vg: str, size: str, pool_size: str) -> None:
        image = self.scratch / f"{vg}.img"
        run(["truncate", "-s", size, image])
        device = run(["losetup", "--find", "--show", image]).stdout.strip()
        self.loops[vg] = (device, image)
        # A larger metadata area, because the listing VG gets 500 LVs.
        run(["pvcreate", "--metadatasize", "16m", device])
        run(["vgcreate", vg, device])
        run(
            [
                "lvcreate", "--type", "thin-pool", "--size", pool_size, "--poolmetadatasize", "64m",
                "--name", "pool", "--addtag", "lvmvol.pool", "--yes", vg,
            ]
        )

    def set_up(self) -> None:
        os.chmod(self.key_dir, 0o700)
        self.key.write_bytes(os.urandom(64))
        os.chmod(self.key, 0o600)
        self.config.write_text(
            f'vg = "{self.vg}"\npool = "{self.vg}/pool"\n'
            f'mount_root = "{self.mount_root}"\nkey_dir = "{self.key_dir}/generated"\n'
        )
        self.make_vg(self.vg, "4G", "3g")

    def drop_vg(self, vg: str) -> None:
        """Unmount and close what lives on ``vg``, deactivate it and detach its loop device."""
        if vg not in self.loops:
            return
        device, image = self.loops.pop(vg)
        mounts = Path("/proc/self/mounts").read_text().splitlines()
        for line in reversed(mounts):
            mountpoint = line.split()[1]
            if mountpoint.startswith(str(self.mount_root)):
                run(["umount", mountpoint], check=False)
        for mapping in sorted(os.listdir("/dev/mapper")):
            if mapping.startswith(f"luks-{vg}-"):
                run(["cryptsetup", "close", mapping], check=False)
        run(["vgchange", "--activate", "n", vg], check=False)
        run(["losetup", "-d", device], check=False)
        image.unlink(missing_ok=True)

    def clean_up(self) -> None:
        for vg in list(self.loops):
            self.drop_vg(vg)

    # Helpers ----------------------------------------------------------------

    def lvmvol(self, *args: str, check: bool = True) -> Sample:
        return run([*LVMVOL, "--config", self.config, *args], check=check)

    def say(self, line: str = "") -> None:
        print(line, flush=True)
        self.lines.append(line)

    def compare(self, comparison: Comparison, rounds: int, lvmvol_run, bare_run) -> Comparison:
        """Run ``rounds`` pairs in ABBA order; each callable gets the round number and returns seconds."""
        for round_number in range(rounds):
            order = [(comparison.lvmvol, lvmvol_run), (comparison.bare, bare_run)]
            if round_number % 2:
                order.reverse()
            for times, function in order:
                times.append(function(round_number))
        self.comparisons.append(comparison)
        self.say(
            f"{comparison.label}: lvmvol median {statistics.median(comparison.lvmvol):.3f} s, "
            f"bare median {statistics.median(comparison.bare):.3f} s, ratio {comparison.ratio():.2f} "
            f"(lvmvol {fmt(comparison.lvmvol)}; bare {fmt(comparison.bare)})"
        )
        return comparison

    def trace(self, label: str, *args: str) -> Sample:
        """Run lvmvol once with --debug and print the commands it ran, their times and the udev waits."""
        sample = self.lvmvol("--debug", *args)
        commands, waits = parse_debug_log(sample.stderr)
        in_commands = sum(seconds for _, seconds in commands)
        self.say(
            f"trace {label}: {len(commands)} commands taking {in_commands:.3f} s of {sample.seconds:.3f} s; "
            f"lvmvol's own time (start-up, imports, parsing) {sample.seconds - in_commands:.3f} s"
        )
        seen: dict[str, int] = {}
        for argv, seconds in commands:
            seen[argv] = seen.get(argv, 0) + 1
            self.say(f"    {seconds:7.3f} s  {argv}")
        for path, seconds in waits:
            self.say(f"    udev wait {seconds:.3f} s for {path}")
        repeated = [argv for argv, count in seen.items() if count > 1]
        if repeated:
            self.say(f"    ran more than once: {repeated}")
        return sample

    def profile(self, label: str, *args: str) -> None:
        """Run lvmvol once under cProfile and print the top of the cumulative list."""
        sample = run([PYTHON, "-m", "cProfile", "-s", "cumulative", *LVMVOL_MODULE, "--config", self.config, *args])
        self.say(f"cProfile of {label}, {sample.seconds:.3f} s (top of the cumulative list):")
        for line in summarize_profile(sample.stdout):
            self.say(f"    {line}")

    # The comparisons ------------------------------------------------------

    def startup(self) -> None:
        self.say("## Start-up")
        # One unmeasured run of each loads the files into the page cache.
        # Without --config, as an administrator types them.
        run([PYTHON, "-c", "pass"])
        run([*LVMVOL, "--version"])
        run([*LVMVOL, "volume", "ls", "--help"])

        rounds = max(self.repeat, 5)
        baseline: list[float] = []
        version: list[float] = []
        help_times: list[float] = []
        runs = [
            (baseline, lambda: run([PYTHON, "-c", "pass"])),
            (version, lambda: run([*LVMVOL, "--version"])),
            (help_times, lambda: run([*LVMVOL, "volume", "ls", "--help"])),
        ]
        for round_number in range(rounds):
            shift = round_number % len(runs)
            for times, function in runs[shift:] + runs[:shift]:
                times.append(function().seconds)

        self.startup_seconds = statistics.median(baseline)
        self.say(f"python3 -c pass: median {self.startup_seconds:.3f} s ({fmt(baseline)})")
        for label, times in (("lvmvol --version", version), ("lvmvol volume ls --help", help_times)):
            ratio = statistics.median(times) / self.startup_seconds
            self.say(f"{label}: median {statistics.median(times):.3f} s, {ratio:.2f} x python3 -c pass ({fmt(times)})")
        self.startup_ratio = statistics.median(version) / self.startup_seconds
        self.help_ratio = statistics.median(help_times) / self.startup_seconds

        for args in (["--version"], ["--config", str(self.config), "volume", "ls", "--json"]):
            sample = run([PYTHON, "-X", "importtime", *LVMVOL_MODULE, *args])
            self.say(f"-X importtime, lvmvol {' '.join(args)}:")
            for line in summarize_importtime(sample.stderr):
                self.say(f"    {line}")

    def create(self) -> None:
        self.say("## volume create --size 64M (ext4)")
        vg = self.vg

        def with_lvmvol(round_number: int) -> float:
            return self.lvmvol("volume", "create", f"l1x{round_number}", "--size", VOLUME_SIZE).seconds

        def bare(round_number: int) -> float:
            script = BARE_CREATE.format(size=VOLUME_BYTES, pool="pool", name=f"b1x{round_number}", vg=vg)
            return bash(script).seconds

        self.compare(Comparison("1. volume create (ext4)", target=1.2), self.repeat, with_lvmvol, bare)
        self.trace("volume create", "volume", "create", "l1trace", "--size", VOLUME_SIZE)
        self.profile("volume create", "volume", "create", "l1profile", "--size", VOLUME_SIZE)

    def create_luks(self) -> None:
        self.say("## volume create --luks --key-file K, then volume mount")
        vg = self.vg

        def with_lvmvol(round_number: int) -> float:
            name = f"l2x{round_number}"
            seconds = self.lvmvol(
                "volume", "create", name, "--size", VOLUME_SIZE, "--luks", "--key-file", str(self.key)
            ).seconds
            seconds += self.lvmvol("volume", "mount", name).seconds
            self.unmount_and_close(name)
            return seconds

        def bare(round_number: int) -> float:
            name = f"b2x{round_number}"
            script = BARE_LUKS.format(
                size=VOLUME_BYTES, pool="pool", name=name, vg=vg, key=self.key,
                mapping=f"bare-{vg}-{name}", mountpoint=self.mount_root / name,
            )
            seconds = bash(script).seconds
            self.unmount_and_close(name, mapping=f"bare-{vg}-{name}")
            return seconds

        comparison = Comparison("2. volume create --luks + volume mount", startups=2, target=1.2)
        self.compare(comparison, self.repeat, with_lvmvol, bare)

        def with_lvmvol_mount(round_number: int) -> float:
            name = f"l2mx{round_number}"
            seconds = self.lvmvol(
                "volume", "create", name, "--size", VOLUME_SIZE, "--luks", "--key-file", str(self.key), "--mount"
            ).seconds
            self.unmount_and_close(name)
            return seconds

        def bare_mount(round_number: int) -> float:
            return bare(round_number + 100)

        comparison = Comparison("2b. volume create --luks --mount (one command)", target=1.2)
        self.compare(comparison, self.repeat, with_lvmvol_mount, bare_mount)
        self.trace("volume create --luks", "volume", "create", "l2trace", "--size", VOLUME_SIZE,
                   "--luks", "--key-file", str(self.key))
        self.trace("volume mount (LUKS)", "volume", "mount", "l2trace")
        self.unmount_and_close("l2trace")
        self.trace("volume create --luks --mount", "volume", "create", "l2mtrace", "--size", VOLUME_SIZE,
                   "--luks", "--key-file", str(self.key), "--mount")
        self.unmount_and_close("l2mtrace")

    def unmount_and_close(self, name: str, mapping: str | None = None) -> None:
        mapping = mapping or f"luks-{self.vg}-{name}"
        run(["umount", self.mount_root / name])
        run(["cryptsetup", "close", mapping])

    def snapshot(self) -> None:
        self.say("## snapshot of a 64 MiB ext4 volume")
        vg = self.vg
        origin = "l3origin"
        self.lvmvol("volume", "create", origin, "--size", VOLUME_SIZE)

        def with_lvmvol(round_number: int) -> float:
            return self.lvmvol("snapshot", origin, f"l3x{round_number}").seconds

        def bare(round_number: int) -> float:
            return bash(BARE_SNAPSHOT.format(name=f"b3x{round_number}", vg=vg, origin=origin)).seconds

        self.compare(Comparison("3. snapshot", target=1.3), self.repeat, with_lvmvol, bare)
        self.trace("snapshot", "snapshot", origin, "l3trace")
        self.profile("snapshot", "snapshot", origin, "l3profile")

    def fill(self, vg: str, count: int, start: int) -> None:
        """Create thin LVs ``v{start}`` to ``v{start + count - 1}`` tagged as lvmvol volumes, inactive.

        One ``lvm`` shell process reads the lvcreate commands from standard
        input, so no process starts per LV. Inactive LVs need no device node
        or udev event.
        """
        options = self.fill_options(vg, start)
        for first in range(start + 1, start + count, FILL_BATCH):
            lines = [
                f"lvcreate --type thin --virtualsize 8m --thinpool pool --name v{number} {options} "
                f"--addtag lvmvol.volume --addtag lvmvol.fs=ext4 {vg}"
                for number in range(first, min(first + FILL_BATCH, start + count))
            ]
            run(["lvm"], input=("\n".join(lines) + "\n").encode())
        listed = run(["lvs", "--noheadings", "-o", "lv_name,lv_tags", vg])
        found = sum(1 for line in listed.stdout.splitlines() if "lvmvol.volume" in line)
        if found != start + count:
            raise SystemExit(f"benchmark: {vg} contains {found} volumes after the fill, expected {start + count}")

    def fill_options(self, vg: str, number: int) -> str:
        """Create LV ``v{number}`` with the cheapest lvcreate options this lvm2 accepts, and return them."""
        candidates = ["--activate n", "--activate n --wipesignatures n", "--setactivationskip y"]
        for options in candidates:
            argv = [
                "lvcreate", "--type", "thin", "--virtualsize", "8m", "--thinpool", "pool", "--name", f"v{number}",
                *options.split(), "--addtag", "lvmvol.volume", "--addtag", "lvmvol.fs=ext4", vg,
            ]
            sample = run(argv, check=False)
            if sample.returncode == 0:
                if options != candidates[0]:
                    self.say(f"filler volumes made with: lvcreate {options}")
                return options
            self.say(f"lvcreate {options} failed: {sample.stderr.strip()}")
        raise SystemExit("benchmark: no lvcreate options made a filler volume")

    def listing(self) -> None:
        self.say("## volume ls --json against one lvs call, on a VG of its own")
        vg = self.list_vg
        self.make_vg(vg, "1G", "512m")
        lvs_argv: list[str] | None = None
        created = 0
        for size in LISTING_SIZES:
            self.fill(vg, size - created, created)
            created = size
            rounds = self.repeat if size < 500 else self.repeat_large
            sample = self.trace(f"volume ls --json at {size} volumes", "volume", "ls", "--json")
            listed = [volume for volume in json.loads(sample.stdout) if volume["vg"] == vg]
            if len(listed) != size:
                raise SystemExit(f"benchmark: volume ls listed {len(listed)} volumes of {vg}, expected {size}")
            if lvs_argv is None:
                commands, _ = parse_debug_log(sample.stderr)
                lvs_argv = shlex.split(commands[0][0])
            lvmvol_rss: list[int] = []
            bare_rss: list[int] = []

            def with_lvmvol(round_number: int) -> float:
                sample = self.lvmvol("volume", "ls", "--json")
                lvmvol_rss.append(sample.max_rss_kib)
                return sample.seconds

            def bare(round_number: int) -> float:
                sample = run(lvs_argv)
                bare_rss.append(sample.max_rss_kib)
                return sample.seconds

            comparison = Comparison(
                f"4. volume ls --json, {size} volumes", target=1.3 if size == 500 else None
            )
            self.compare(comparison, rounds, with_lvmvol, bare)
            self.listing_rss[size] = (max(lvmvol_rss), max(bare_rss))
            self.say(
                f"peak RSS at {size} volumes: lvmvol volume ls --json {max(lvmvol_rss) / 1024:.1f} MiB "
                f"(the largest of lvmvol and its lvs child), bare lvs {max(bare_rss) / 1024:.1f} MiB"
            )
        self.profile(f"volume ls --json at {created} volumes", "volume", "ls", "--json")
        self.drop_vg(vg)

    def summary(self) -> None:
        self.say("## Summary")
        self.say("| comparison | lvmvol median | bare median | ratio | target | ratio without interpreter start-up |")
        self.say("|---|---|---|---|---|---|")
        for comparison in sorted(self.comparisons, key=lambda comparison: comparison.label):
            lvmvol_median = statistics.median(comparison.lvmvol)
            bare_median = statistics.median(comparison.bare)
            without = "-"
            if self.startup_seconds is not None:
                without = f"{(lvmvol_median - comparison.startups * self.startup_seconds) / bare_median:.2f}"
            target = f"<= {comparison.target}" if comparison.target else "-"
            self.say(
                f"| {comparison.label} ({len(comparison.lvmvol)} runs each) | {lvmvol_median:.3f} s | "
                f"{bare_median:.3f} s | {comparison.ratio():.2f} | {target} | {without} |"
            )
        if self.startup_ratio is not None:
            self.say(f"| lvmvol --version / python3 -c pass | | | {self.startup_ratio:.2f} | <= 1.5 | |")
            self.say(f"| lvmvol volume ls --help / python3 -c pass | | | {self.help_ratio:.2f} | - | |")
        for size, (lvmvol_rss, bare_rss) in self.listing_rss.items():
            self.say(f"| peak RSS, volume ls --json, {size} volumes | {lvmvol_rss / 1024:.1f} MiB | "
                     f"{bare_rss / 1024:.1f} MiB | | < 60 MB at 500 | |")


def interpreter_build() -> str:
    """Describe the interpreter: its prefix, and whether it loads libpython as a shared library.

    A shared libpython (pyenv's --enable-shared builds) starts several times
    slower under emulation than a statically linked one (Debian's
    /usr/bin/python3): the dynamic loader relocates the whole library first.
    """
    shared = any("libpython" in line for line in Path("/proc/self/maps").read_text().splitlines())
    return f"{sys.base_prefix}, libpython {'shared' if shared else 'linked in statically'}"


def fmt(times: list[float]) -> str:
    return ", ".join(f"{seconds:.2f}" for seconds in times)


RUN_LINE = re.compile(r"^lvmvol: run: (.*)$")
EXIT_LINE = re.compile(r"^lvmvol: exit -?\d+ after ([0-9.]+) s: (.*)$")
WAIT_LINE = re.compile(r"^lvmvol: waited ([0-9.]+) s for (\S+)")


def parse_debug_log(stderr: str) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """Return (argv, seconds) of each command and (path, seconds) of each udev wait in a --debug log."""
    commands: list[tuple[str, float]] = []
    waits: list[tuple[str, float]] = []
    for line in stderr.splitlines():
        if match := EXIT_LINE.match(line):
            commands.append((match.group(2), float(match.group(1))))
        elif match := WAIT_LINE.match(line):
            waits.append((match.group(2), float(match.group(1))))
    return commands, waits


def summarize_importtime(stderr: str, top: int = 12) -> list[str]:
    """Return the total and the slowest top-level imports of a ``-X importtime`` log."""
    rows = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative_us, name = line[len("import time:"):].split("|", 2)
        # One space after the bar, then two per level of nesting.
        depth = (len(name) - len(name.lstrip()) - 1) // 2
        rows.append((depth, int(cumulative_us), name.strip()))
    top_level = [row for row in rows if row[0] == 0]
    total = sum(cumulative for _, cumulative, _ in top_level)
    lines = [f"all imports: {total / 1000:.1f} ms"]
    for _, cumulative, name in sorted(top_level, key=lambda row: -row[1])[:top]:
        lines.append(f"{cumulative / 1000:9.1f} ms  {name}")
    return lines


def summarize_profile(stdout: str, top: int = 35) -> list[str]:
    lines = stdout.splitlines()
    for index, line in enumerate(lines):
        if line.lstrip().startswith("ncalls"):
            return [line.rstrip() for line in lines[index : index + 1 + top]]
    return ["(no profile output)"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="Runs of each side per comparison (default 5).")
    parser.add_argument(
        "--repeat-large", type=int, default=3, help="Runs of each side for the listing at 500 volumes (default 3)."
    )
    parser.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help=f"Comma-separated parts to run, in this order (default all: {','.join(SECTIONS)}).",
    )
    arguments = parser.parse_args()
    sections = arguments.sections.split(",")
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section {unknown[0]!r}; choose from {', '.join(SECTIONS)}")
    if os.geteuid() != 0 or "LVMVOL_VM_SCRATCH" not in os.environ:
        parser.error("run this inside the test VM: make bench")

    bench = Bench(Path(os.environ["LVMVOL_VM_SCRATCH"]), arguments.repeat, arguments.repeat_large)
    started = time.monotonic()
    kernel = os.uname().release
    cpus = os.cpu_count()
    memory = Path("/proc/meminfo").read_text().splitlines()[0]
    bench.say(f"# lvmvol benchmark, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    bench.say(f"kernel {kernel}, {cpus} CPU(s), {memory}, {run(['lvm', 'version']).stdout.splitlines()[0].strip()}, "
              f"{run(['cryptsetup', '--version']).stdout.strip()}, Python {sys.version.split()[0]}")
    bench.say(f"interpreter {PYTHON}: {interpreter_build()}; lvmvol runs as {' '.join(map(str, LVMVOL))}")
    imported = run([PYTHON, "-c", "import lvmvol; print(lvmvol.__file__)"]).stdout.strip()
    if not imported.startswith(str(REPO)):
        raise SystemExit(f"benchmark: python imports lvmvol from {imported}, not from {REPO}")
    try:
        bench.set_up()
        for section in SECTIONS:
            if section in sections:
                getattr(bench, section)()
        bench.summary()
    finally:
        bench.clean_up()
    bench.say(f"benchmark took {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
