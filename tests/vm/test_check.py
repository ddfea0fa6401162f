"""``lvmvol check`` and ``check --repair`` on leftovers made with the real tools."""

from __future__ import annotations

import os

from .helpers import lvm_json, run_command
from .lvmvol_fixtures import json_output, lv_row, mount_root, thin_pool  # noqa: F401


def problems_by_subject(result) -> dict[str, dict]:
    return {problem["subject"]: problem for problem in json_output(result)["problems"]}


def test_check_clean_pool_exits_zero(thin_pool, lvmvol, lvmvol_config, tmp_path):
    lvmvol_config["key_dir"] = str(tmp_path / "keys")
    lvmvol("volume", "create", "fine", "--size", "16M")

    result = lvmvol("check", "--json")

    assert result.returncode == 0
    assert json_output(result)["problems"] == []


def test_check_lists_and_repairs_leftovers(thin_pool, lvmvol, lvmvol_config, mount_root, loop_device, tmp_path):
    vg = thin_pool.vg
    key_dir = tmp_path / "keys"
    key_dir.mkdir(mode=0o700)
    lvmvol_config["key_dir"] = str(key_dir)
    # A create that died between lvcreate and mkfs.
    run_command(["lvcreate", "--yes", "--type", "thin", "--virtualsize", "16M", "--thinpool", "pool", "--name", "half",
                 "--addtag", "lvmvol.volume", "--addtag", "lvmvol.incomplete", "--addtag", "lvmvol.fs=ext4", vg])
    # A volume whose filesystem was wiped behind lvmvol's back.
    lvmvol("volume", "create", "wiped", "--size", "16M")
    run_command(["wipefs", "--all", f"/dev/{vg}/wiped"])
    # A volume left suspended.
    lvmvol("volume", "create", "frozen", "--size", "16M")
    run_command(["dmsetup", "suspend", f"{vg}-frozen"])
    # A dm-crypt mapping named after an LV that does not exist.
    carrier = loop_device("32M")
    key = tmp_path / "plain.key"
    key.write_bytes(b"p" * 64)
    ghost = f"luks-{vg}-ghost"
    run_command(["cryptsetup", "open", "--type", "plain", "--cipher", "aes-xts-plain64", "--key-size", "512",
                 "--key-file", str(key), carrier, ghost])
    # Mountpoint directories with nothing mounted on them.
    (mount_root / "stray").mkdir()
    (mount_root / "full").mkdir()
    (mount_root / "full" / "file").write_text("data")
    # Generated key files: one for a gone LV of an existing VG, one of a VG not on this host.
    orphan_key = key_dir / f"luks-{vg}-gone.key"
    orphan_key.write_bytes(b"x" * 64)
    foreign_key = key_dir / "luks-absentvg-data.key"
    foreign_key.write_bytes(b"y" * 64)

    listed = lvmvol("check", "--json", check=False)
    found = problems_by_subject(listed)
    unconfirmed = lvmvol("check", "--repair", check=False)

    assert listed.returncode == 8
    assert found[f"{vg}/half"]["kind"] == "incomplete-volume"
    assert found[f"{vg}/wiped"]["kind"] == "missing-filesystem"
    assert found[f"{vg}-frozen"]["kind"] == "suspended-device"
    assert found[ghost]["kind"] == "orphan-mapping"
    assert found[str(mount_root / "stray")]["kind"] == "empty-mountpoint"
    assert found[str(mount_root / "full")]["kind"] == "unmounted-directory"
    assert found[str(mount_root / "full")]["repair"] is None
    assert found[str(orphan_key)]["kind"] == "orphan-key-file"
    assert str(foreign_key) not in found
    assert unconfirmed.returncode == 4
    assert "pass --yes" in unconfirmed.stderr
    assert lv_row(vg, "half") is not None

    repaired = lvmvol("check", "--repair", "--yes", "--json", check=False)

    remaining = {problem["subject"] for problem in json_output(repaired)["remaining"]}
    assert repaired.returncode == 8
    assert remaining == {str(mount_root / "full")}
    assert lv_row(vg, "half") is None
    assert lv_row(vg, "wiped") is None
    assert lv_row(vg, "frozen")["lv_attr"][4] == "a"
    assert ghost not in run_command(["dmsetup", "ls", "--target", "crypt"]).stdout
    assert not (mount_root / "stray").exists()
    assert not orphan_key.exists()
    assert foreign_key.exists()
    os.unlink(mount_root / "full" / "file")
    assert lvmvol("check", "--repair", "--yes").returncode == 0
    assert not (mount_root / "full").exists()
    assert lvmvol("check").returncode == 0


def test_check_reports_missing_loop_file(unique_name, lvmvol, lvmvol_config, tmp_path):
    # A list of its own: the default one outlives the test, and a later activate would miss the deleted file.
    lvmvol_config["loop_file_list"] = str(tmp_path / "loop-files")
    vg = unique_name("vg")
    backing = os.path.join(os.environ["LVMVOL_VM_SCRATCH"], f"{vg}.img")
    try:
        loop = json_output(lvmvol("pool", "init", "--file", backing, "--file-size", "128M", "--vg", vg, "--json"))["loop_device"]
        os.unlink(backing)

        result = lvmvol("check", "--repair", "--yes", "--json", check=False)

        problem = problems_by_subject(result)[vg]
        assert result.returncode == 8
        assert problem["kind"] == "missing-loop-file"
        assert backing in problem["detail"]
        assert loop in problem["detail"]
        assert problem["repair"] is None
        assert lvm_json("vgs", "-o", "vg_name", vg) == [{"vg_name": vg}]
    finally:
        run_command(["vgremove", "-ff", vg], check=False)
        for line in run_command(["losetup", "--list", "--noheadings", "--output", "NAME,BACK-FILE"], check=False).stdout.splitlines():
            if backing in line:
                run_command(["losetup", "-d", line.split()[0]], check=False)
        if os.path.exists(backing):
            os.unlink(backing)
