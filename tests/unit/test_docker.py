"""The Docker volume plugin's parsing and bookkeeping; the VM suite runs it against real volumes."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading

import pytest

from lvmvol.docker import plugin as plugin_module
from lvmvol.docker.mount_ids import MountIds
from lvmvol.docker.options import KNOWN_OPTIONS, parse_create_options
from lvmvol.docker.plugin import VolumePlugin
from lvmvol.docker.server import CONTENT_TYPE, PluginServer, bind_listener
from lvmvol.errors import Conflict, InvalidInput
from lvmvol.ops.context import Context, Outcome


def test_options_walkthrough():
    options = parse_create_options({"size": "100M", "thinpool": "volumes", "vg": "data"})

    assert options.size == 100 * 1024 * 1024
    assert options.pool_spec() == "data/volumes"
    assert options.encrypt is False


def test_options_pool_alias_and_crypt():
    options = parse_create_options({"size": "1G", "pool": "p", "crypt": "luks", "fs": "xfs"})

    assert options.pool_spec() == "p"
    assert options.encrypt is True
    assert options.filesystem == "xfs"


def test_options_keyfile_implies_encryption():
    options = parse_create_options({"size": "64M", "keyfile": "/run/key/k.bin"})

    assert options.encrypt is True
    assert options.key_file == "/run/key/k.bin"


def test_options_none_is_empty():
    assert parse_create_options(None).size is None


def test_options_unknown_lists_known():
    with pytest.raises(InvalidInput) as raised:
        parse_create_options({"size": "1G", "colour": "red"})

    message = str(raised.value)
    assert "'colour'" in message
    for name in KNOWN_OPTIONS:
        assert name in message


@pytest.mark.parametrize(
    "opts, expected",
    [
        ({"crypt": "rot13"}, "invalid crypt option 'rot13'"),
        ({"fs": "ntfs"}, "invalid fs option 'ntfs'"),
        ({"size": ""}, "option 'size' is empty"),
        ({"thinpool": "a", "pool": "b"}, "'thinpool' and 'pool'"),
        ({"size": "lots"}, "lots"),
    ],
)
def test_options_invalid(opts, expected):
    with pytest.raises(InvalidInput) as raised:
        parse_create_options(opts)

    assert expected in str(raised.value)


def test_mount_ids_survive_reload(tmp_path):
    ids = MountIds(str(tmp_path / "state"))
    ids.add("db", "c1")
    ids.add("db", "c2")
    ids.add("web", "c3")

    again = MountIds(str(tmp_path / "state"))
    again.load()

    assert again.ids_of("db") == {"c1", "c2"}
    assert again.ids_of("web") == {"c3"}
    assert not [path.name for path in (tmp_path / "state").iterdir() if path.name.startswith(".")]


def test_mount_ids_reconcile_drops_unmounted(tmp_path):
    ids = MountIds(str(tmp_path))
    ids.add("db", "c1")
    ids.add("web", "c2")

    dropped = ids.reconcile(["web"])

    assert dropped == ["db"]
    reloaded = MountIds(str(tmp_path))
    reloaded.load()
    assert reloaded.ids_of("db") == set()
    assert reloaded.ids_of("web") == {"c2"}


def test_mount_ids_unreadable_file_is_ignored(tmp_path):
    (tmp_path / "docker-mounts.json").write_text("{not json")
    ids = MountIds(str(tmp_path))

    ids.load()

    assert ids.ids_of("db") == set()


def test_mount_ids_remove_returns_remaining(tmp_path):
    ids = MountIds(str(tmp_path))
    ids.add("db", "c1")
    ids.add("db", "c2")

    assert ids.remove("db", "c1") == {"c2"}
    assert ids.remove("db", "c2") == set()
    assert json.loads((tmp_path / "docker-mounts.json").read_text()) == {"volumes": {}}


class MountRecorder:
    """Stands in for the mount operations and records the calls."""

    def __init__(self):
        self.calls: list[tuple[str, str]] = []

    def mount_volume(self, ctx, name, read_only=None):
        self.calls.append(("mount", name))
        return Outcome(name, True, {"mountpoint": f"/mnt/{name}"})

    def umount_volume(self, ctx, name):
        self.calls.append(("umount", name))
        return Outcome(name, True)


@pytest.fixture
def recorder(monkeypatch) -> MountRecorder:
    recorder = MountRecorder()
    monkeypatch.setattr(plugin_module.mounting, "mount_volume", recorder.mount_volume)
    monkeypatch.setattr(plugin_module.mounting, "umount_volume", recorder.umount_volume)
    return recorder


def make_plugin(tmp_path, guard_log=None) -> VolumePlugin:
    @contextlib.contextmanager
    def guard(request):
        if guard_log is not None:
            guard_log.append(request)
        yield

    return VolumePlugin(Context(), MountIds(str(tmp_path)), guard)


def test_unmount_keeps_mount_until_last_id(tmp_path, recorder):
    plugin = make_plugin(tmp_path)

    assert plugin.handle("/VolumeDriver.Mount", {"Name": "db", "ID": "a"}) == (
        200, {"Mountpoint": "/mnt/db", "Err": ""}
    )
    plugin.handle("/VolumeDriver.Mount", {"Name": "db", "ID": "b"})
    plugin.handle("/VolumeDriver.Unmount", {"Name": "db", "ID": "a"})
    assert recorder.calls == [("mount", "db"), ("mount", "db")]

    plugin.handle("/VolumeDriver.Unmount", {"Name": "db", "ID": "b"})
    assert recorder.calls[-1] == ("umount", "db")


def test_unmount_of_unknown_id_keeps_others(tmp_path, recorder):
    plugin = make_plugin(tmp_path)
    plugin.handle("/VolumeDriver.Mount", {"Name": "db", "ID": "a"})

    status, answer = plugin.handle("/VolumeDriver.Unmount", {"Name": "db", "ID": "stranger"})

    assert (status, answer) == (200, {"Err": ""})
    assert ("umount", "db") not in recorder.calls


def test_remove_with_mount_ids_is_refused(tmp_path, recorder):
    plugin = make_plugin(tmp_path)
    plugin.handle("/VolumeDriver.Mount", {"Name": "db", "ID": "a"})

    status, answer = plugin.handle("/VolumeDriver.Remove", {"Name": "db"})

    assert status == 500
    assert "volume db is mounted for 1 container(s)" in answer["Err"]


def test_mutating_requests_take_guard(tmp_path, recorder):
    guard_log: list[str] = []
    plugin = make_plugin(tmp_path, guard_log)

    plugin.handle("/VolumeDriver.Mount", {"Name": "db", "ID": "a"})
    plugin.handle("/VolumeDriver.Capabilities", {})

    assert guard_log == ["VolumeDriver.Mount"]


def test_guard_error_becomes_err(tmp_path):
    @contextlib.contextmanager
    def refusing_guard(request):
        raise Conflict("another lvmvol command holds the lock", "wait")
        yield

    plugin = VolumePlugin(Context(), MountIds(str(tmp_path)), refusing_guard)

    status, answer = plugin.handle("/VolumeDriver.Create", {"Name": "db", "Opts": {"size": "1G"}})

    assert status == 500
    assert answer == {"Err": "another lvmvol command holds the lock; wait"}


def test_missing_mount_id_is_invalid(tmp_path, recorder):
    status, answer = make_plugin(tmp_path).handle("/VolumeDriver.Mount", {"Name": "db"})

    assert status == 500
    assert "no mount ID" in answer["Err"]


def test_server_answers_over_unix_socket(tmp_path):
    plugin = make_plugin(tmp_path)
    path = str(tmp_path / "sock" / "lvmvol.sock")
    server = PluginServer(bind_listener(path), plugin)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        answers = []
        for request_path, body in (
            ("/Plugin.Activate", b""),
            ("/VolumeDriver.Capabilities", b"{}"),
            ("/VolumeDriver.Nonsense", b"{}"),
            ("/VolumeDriver.Get", b"[1]"),
        ):
            connection = UnixHTTPConnection(path)
            connection.request("POST", request_path, body, {"Accept": CONTENT_TYPE})
            response = connection.getresponse()
            answers.append((response.status, response.getheader("Content-Type"), json.loads(response.read())))
            connection.close()
    finally:
        server.shutdown()
        server.server_close()

    assert answers[0] == (200, CONTENT_TYPE, {"Implements": ["VolumeDriver"]})
    assert answers[1] == (200, CONTENT_TYPE, {"Capabilities": {"Scope": "local"}})
    assert answers[2][0] == 404
    assert answers[3][0] == 500
    assert "not a JSON object" in answers[3][2]["Err"]


def test_bind_replaces_stale_socket(tmp_path):
    path = str(tmp_path / "lvmvol.sock")
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(path)
    stale.close()

    listener = bind_listener(path)
    listener.close()


def test_bind_refuses_live_socket(tmp_path):
    path = str(tmp_path / "lvmvol.sock")
    first = bind_listener(path)
    try:
        with pytest.raises(Conflict):
            bind_listener(path)
    finally:
        first.close()


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str):
        super().__init__("localhost", timeout=10)
        self.unix_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.unix_path)


def test_docker_units_start_running_interpreter():
    from lvmvol.ops import units

    service = units.unit_text("lvmvol-docker.service", python="/opt/lvmvol/bin/python")
    socket_unit = units.unit_text("lvmvol-docker.socket")

    assert "ExecStart=/opt/lvmvol/bin/python -m lvmvol docker serve" in service
    assert "Requires=lvmvol-docker.socket" in service
    assert "ListenStream=/run/docker/plugins/lvmvol.sock" in socket_unit
    assert "lvmvol-docker.service" in units.UNIT_NAMES
