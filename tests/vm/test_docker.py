"""``lvmvol docker serve`` against real volumes, driven with the HTTP requests Docker sends.

Docker is not installed in the VM. Each test starts the server as its own
process on a socket in the test's temporary directory and sends the
requests in the order dockerd sends them for ``docker volume create``,
``docker run -v`` and ``docker volume rm``. Every answer's JSON shape is
checked against the volume plugin protocol.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

from lvmvol.config import load_config
from lvmvol.lock import CommandLock

from .lvmvol_fixtures import (  # noqa: F401
    json_output,
    lv_names,
    lv_row,
    mount_root,
    read_file,
    thin_pool,
    write_file,
)

CONTENT_TYPE = "application/vnd.docker.plugins.v1+json"
SERVER_START_TIMEOUT = 180
# Keys of each successful answer, from the protocol's table.
ANSWER_KEYS = {
    "/Plugin.Activate": {"Implements"},
    "/VolumeDriver.Capabilities": {"Capabilities"},
    "/VolumeDriver.Create": {"Err"},
    "/VolumeDriver.Remove": {"Err"},
    "/VolumeDriver.Mount": {"Mountpoint", "Err"},
    "/VolumeDriver.Unmount": {"Err"},
    "/VolumeDriver.Path": {"Mountpoint", "Err"},
    "/VolumeDriver.Get": {"Volume", "Err"},
    "/VolumeDriver.List": {"Volumes", "Err"},
}


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float):
        super().__init__("plugin", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


class PluginServer:
    """An ``lvmvol docker serve`` process and a client that speaks to it like dockerd."""

    def __init__(self, config_path: Path, directory: Path):
        self.config_path = config_path
        self.socket_path = str(directory / "plugins" / "lvmvol.sock")
        self.state_dir = directory / "state"
        self.log_path = directory / "server.log"
        self.process: subprocess.Popen | None = None
        self.listener: socket.socket | None = None

    def start(self, socket_activation: bool = False) -> None:
        """Start the server; with ``socket_activation``, pass it a listening socket as systemd does."""
        argv = [
            sys.executable, "-m", "lvmvol", "--config", str(self.config_path),
            "docker", "serve", "--socket", self.socket_path, "--state-dir", str(self.state_dir),
        ]
        stdin = subprocess.DEVNULL
        if socket_activation:
            os.makedirs(os.path.dirname(self.socket_path), exist_ok=True)
            self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.listener.bind(self.socket_path)
            self.listener.listen(16)
            # The shell moves the socket from stdin to fd 3 and keeps its pid for the server.
            script = 'exec 3<&0 0</dev/null; export LISTEN_PID=$$ LISTEN_FDS=1; exec "$@"'
            argv = ["sh", "-c", script, "sh", *argv]
            stdin = self.listener.fileno()
        log = open(self.log_path, "a")
        self.process = subprocess.Popen(argv, stdin=stdin, stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while True:
            assert self.process.poll() is None, f"server exited with {self.process.returncode}:\n{self.log()}"
            try:
                status, answer = self.post("/Plugin.Activate", None)
                break
            except OSError:
                assert time.monotonic() < deadline, f"server did not answer within {SERVER_START_TIMEOUT} s:\n{self.log()}"
                time.sleep(0.5)
        assert (status, answer) == (200, {"Implements": ["VolumeDriver"]})

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"server ignored SIGTERM:\n{self.log()}")
        self.process = None
        if self.listener is not None:
            self.listener.close()
            self.listener = None

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def post(self, path: str, body: dict | None) -> tuple[int, dict]:
        """Send one request as dockerd does and return (status, decoded answer)."""
        connection = UnixHTTPConnection(self.socket_path, timeout=300)
        try:
            data = b"" if body is None else json.dumps(body).encode()
            connection.request("POST", path, data, {"Accept": CONTENT_TYPE, "Content-Type": CONTENT_TYPE})
            response = connection.getresponse()
            assert response.getheader("Content-Type") == CONTENT_TYPE
            return response.status, json.loads(response.read())
        finally:
            connection.close()

    def ok(self, path: str, body: dict | None = None) -> dict:
        """Send a request that must succeed; check the answer's keys and its empty Err."""
        status, answer = self.post(path, body)
        assert status == 200, f"{path} {body}: {status} {answer}\n{self.log()}"
        assert set(answer) == ANSWER_KEYS[path], answer
        if "Err" in answer:
            assert answer["Err"] == ""
        return answer

    def fails(self, path: str, body: dict | None = None) -> str:
        """Send a request that must fail; return its Err message."""
        status, answer = self.post(path, body)
        assert status != 200, f"{path} {body} succeeded: {answer}"
        assert set(answer) == {"Err"}, answer
        assert answer["Err"]
        return answer["Err"]

    def mount(self, name: str, mount_id: str) -> str:
        return self.ok("/VolumeDriver.Mount", {"Name": name, "ID": mount_id})["Mountpoint"]

    def unmount(self, name: str, mount_id: str) -> None:
        self.ok("/VolumeDriver.Unmount", {"Name": name, "ID": mount_id})

    def get(self, name: str) -> dict:
        volume = self.ok("/VolumeDriver.Get", {"Name": name})["Volume"]
        assert {"Name", "Mountpoint"} <= set(volume) <= {"Name", "Mountpoint", "CreatedAt", "Status"}
        return volume


def container_id(number: int) -> str:
    return f"{number:064x}"


def saved_ids(server: PluginServer) -> dict:
    return json.loads((server.state_dir / "docker-mounts.json").read_text())["volumes"]


def make_key_file(directory: Path) -> str:
    path = directory / "docker.key"
    path.write_bytes(os.urandom(64))
    path.chmod(0o600)
    return str(path)


def test_docker_walkthrough(thin_pool, lvmvol, lvmvol_config, mount_root, tmp_path, unique_name):
    origin = unique_name("dk")
    snapshot = f"{origin}-snap"
    # Create waits for the lock the test holds below, with lists and lvs calls in between.
    lvmvol_config["lock_timeout"] = 600
    server = PluginServer(lvmvol_config.path, tmp_path)
    server.start()
    try:
        assert server.ok("/VolumeDriver.Capabilities", {}) == {"Capabilities": {"Scope": "local"}}

        # docker volume create --driver lvmvol --opt size=64M --opt thinpool=POOL --opt vg=VG NAME,
        # sent while a CLI command holds the command lock: Create waits for it, List does not.
        create = {"Name": origin, "Opts": {"size": "64M", "thinpool": thin_pool.name, "vg": thin_pool.vg}}
        created: list[tuple[int, dict]] = []
        config = load_config(str(lvmvol_config.path))
        with CommandLock(config.lock_dir, config.lock_timeout, argv=["test_docker"]):
            creator = threading.Thread(target=lambda: created.append(server.post("/VolumeDriver.Create", create)))
            creator.start()
            time.sleep(8)
            assert origin not in {entry["Name"] for entry in server.ok("/VolumeDriver.List", {})["Volumes"]}
            assert creator.is_alive()
            assert origin not in lv_names(thin_pool.vg)
        creator.join(timeout=300)
        assert created == [(200, {"Err": ""})], server.log()
        row = lv_row(thin_pool.vg, origin)
        assert row["pool_lv"] == thin_pool.name
        assert int(row["lv_size"]) == 64 * 1024 * 1024
        volume = server.get(origin)
        assert volume["Name"] == origin
        assert volume["Mountpoint"] == str(mount_root / origin)
        assert datetime.fromisoformat(volume["CreatedAt"]).tzinfo is not None

        # docker run -v ORIGIN:/data (container 1): Get, then Mount with the container's ID.
        mountpoint = server.mount(origin, container_id(1))
        assert mountpoint == str(mount_root / origin)
        assert os.path.ismount(mountpoint)
        write_file(mountpoint, "state.txt", "before")

        # docker volume create --driver lvmvol --opt snapshot=ORIGIN SNAPSHOT
        server.ok("/VolumeDriver.Create", {"Name": snapshot, "Opts": {"snapshot": origin}})
        assert lv_row(thin_pool.vg, snapshot)["origin"] == origin
        write_file(mountpoint, "state.txt", "after")

        snapshot_mountpoint = server.mount(snapshot, container_id(2))
        assert snapshot_mountpoint == str(mount_root / snapshot)
        assert read_file(snapshot_mountpoint, "state.txt") == "before"
        assert read_file(mountpoint, "state.txt") == "after"
        write_file(snapshot_mountpoint, "scratch.txt", "writable")
        assert server.ok("/VolumeDriver.Path", {"Name": snapshot})["Mountpoint"] == snapshot_mountpoint

        # The volumes are ordinary lvmvol volumes.
        listed = {entry["name"]: entry for entry in json_output(lvmvol("volume", "ls", "--json"))}
        assert listed[origin]["mountpoint"] == mountpoint
        assert listed[snapshot]["origin"] == origin
        volumes = server.ok("/VolumeDriver.List", {})["Volumes"]
        for entry in volumes:
            assert set(entry) == {"Name", "Mountpoint"}
        assert {origin, snapshot} <= {entry["Name"] for entry in volumes}

        # A second container shares the origin; removal is refused while it is mounted.
        assert server.mount(origin, container_id(3)) == mountpoint
        assert "mounted for 2 container(s)" in server.fails("/VolumeDriver.Remove", {"Name": origin})
        assert origin in lv_names(thin_pool.vg)

        # Bad options change nothing and name the known ones.
        message = server.fails("/VolumeDriver.Create", {"Name": "dkbad", "Opts": {"size": "64M", "colour": "red"}})
        assert "unknown option 'colour'" in message
        assert "size, thinpool, pool, snapshot, keyfile, crypt, vg, fs" in message
        assert "dkbad" not in lv_names(thin_pool.vg)
        assert "needs a size" in server.fails("/VolumeDriver.Create", {"Name": "dkbad", "Opts": None})

        # The snapshot goes away behind the server's back (as in a crash); restart the server.
        lvmvol("volume", "umount", snapshot)
        server.stop()
        assert set(saved_ids(server)) == {origin, snapshot}
        server.start()
        assert saved_ids(server) == {origin: [container_id(1), container_id(3)]}
        assert server.get(origin)["Status"]["mount_ids"] == 2

        # Container 1 stops: container 3 still uses the origin.
        server.unmount(origin, container_id(1))
        assert os.path.ismount(mountpoint)
        assert read_file(mountpoint, "state.txt") == "after"

        # Container 3 stops: the last ID unmounts it.
        server.unmount(origin, container_id(3))
        assert not os.path.ismount(mountpoint)
        assert saved_ids(server) == {}

        server.ok("/VolumeDriver.Remove", {"Name": snapshot})
        server.ok("/VolumeDriver.Remove", {"Name": origin})
        assert {origin, snapshot}.isdisjoint(lv_names(thin_pool.vg))
        assert "not found" in server.fails("/VolumeDriver.Get", {"Name": origin})
    finally:
        server.stop()
    log = server.log()
    assert f"VolumeDriver.Create {origin}: ok" in log
    assert "VolumeDriver.Create dkbad: failed: unknown option 'colour'" in log


def test_docker_encrypted_volume_with_key_file(thin_pool, lvmvol, lvmvol_config, mount_root, tmp_path, unique_name):
    name = unique_name("dkc")
    snapshot = f"{name}-snap"
    key_file = make_key_file(tmp_path)
    server = PluginServer(lvmvol_config.path, tmp_path)
    server.start(socket_activation=True)
    try:
        # docker volume create --driver lvmvol --opt size=64M --opt crypt=luks --opt keyfile=KEY NAME
        server.ok("/VolumeDriver.Create", {"Name": name, "Opts": {"size": "64M", "crypt": "luks", "keyfile": key_file}})
        shown = json_output(lvmvol("volume", "show", name, "--json"))
        assert shown["encrypted"] is True
        assert shown["key_source"] == key_file

        mountpoint = server.mount(name, container_id(1))
        write_file(mountpoint, "secret.txt", "before")

        # The options an existing script passes along with snapshot must match the origin.
        wrong_key = str(tmp_path / "other.key")
        Path(wrong_key).write_bytes(os.urandom(64))
        Path(wrong_key).chmod(0o600)
        message = server.fails("/VolumeDriver.Create", {"Name": snapshot, "Opts": {"snapshot": name, "keyfile": wrong_key}})
        assert f"opens with {key_file}" in message
        assert snapshot not in lv_names(thin_pool.vg)

        server.ok("/VolumeDriver.Create", {"Name": snapshot, "Opts": {"snapshot": name, "keyfile": key_file, "size": "64M"}})
        write_file(mountpoint, "secret.txt", "after")

        # The snapshot opens with its origin's key.
        snapshot_mountpoint = server.mount(snapshot, container_id(2))
        assert read_file(snapshot_mountpoint, "secret.txt") == "before"
        assert os.path.exists(f"/dev/mapper/{json_output(lvmvol('volume', 'show', snapshot, '--json'))['mapping']}")

        server.unmount(snapshot, container_id(2))
        server.unmount(name, container_id(1))
        assert not os.path.ismount(mountpoint)
        assert not os.path.ismount(snapshot_mountpoint)
        assert json_output(lvmvol("volume", "show", name, "--json"))["mapping"] is None

        server.ok("/VolumeDriver.Remove", {"Name": snapshot})
        server.ok("/VolumeDriver.Remove", {"Name": name})
        assert {name, snapshot}.isdisjoint(lv_names(thin_pool.vg))
    finally:
        server.stop()
    assert os.path.exists(key_file)
    log = server.log()
    assert "serving Docker volume plugin requests on systemd's socket" in log
    assert f"VolumeDriver.Create {name}: ok" in log
    assert Path(key_file).read_bytes().hex() not in log
