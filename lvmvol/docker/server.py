"""The HTTP server on a Unix socket that Docker sends volume plugin requests to.

Docker sends HTTP/1.1 POST requests with JSON bodies to
``/run/docker/plugins/NAME.sock``. Each request runs in its own thread.
The listening socket comes from systemd (socket activation, file
descriptor 3 with ``LISTEN_FDS`` and ``LISTEN_PID`` set), or the server
binds the path itself.
"""

from __future__ import annotations

import http.server
import json
import logging
import os
import signal
import socket
import socketserver
import stat

from lvmvol.docker.plugin import VolumePlugin
from lvmvol.errors import Conflict, InvalidInput

log = logging.getLogger("lvmvol.docker")

CONTENT_TYPE = "application/vnd.docker.plugins.v1+json"
# The first file descriptor systemd passes (SD_LISTEN_FDS_START in sd-daemon.h).
LISTEN_FDS_START = 3
# Requests are small JSON objects; a larger body is rejected unread.
MAX_BODY_BYTES = 1024 * 1024


class PluginServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """A threading HTTP server on a Unix socket; ``server_close`` waits for requests in progress."""

    daemon_threads = False
    block_on_close = True

    def __init__(self, listener: socket.socket, plugin: VolumePlugin):
        super().__init__(listener.getsockname(), RequestHandler, bind_and_activate=False)
        self.socket.close()
        self.socket = listener
        self.plugin = plugin


class RequestHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Seconds a client may take to send its request.
    timeout = 60
    server: PluginServer

    def do_POST(self) -> None:
        try:
            body = self._read_json()
        except InvalidInput as error:
            log.error("%s: %s", self.path, error)
            self._send(400, {"Err": str(error)})
            return
        status, answer = self.server.plugin.handle(self.path, body)
        self._send(status, answer)

    def _read_json(self) -> dict:
        length_header = self.headers.get("Content-Length", "0") or "0"
        try:
            length = int(length_header)
        except ValueError:
            raise InvalidInput(f"invalid Content-Length {length_header!r}") from None
        if length < 0 or length > MAX_BODY_BYTES:
            raise InvalidInput(f"request body of {length} bytes; lvmvol reads at most {MAX_BODY_BYTES}")
        data = self.rfile.read(length) if length else b""
        if not data.strip():
            return {}  # Plugin.Activate comes with an empty body
        try:
            return json.loads(data)
        except ValueError as error:
            raise InvalidInput(f"the request body is not valid JSON: {error}") from None

    def _send(self, status: int, answer: dict) -> None:
        data = json.dumps(answer).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(data)))
        # One request per connection: an idle keep-alive connection would
        # hold its thread, and server_close would wait for it at shutdown.
        self.send_header("Connection", "close")
        self.close_connection = True
        self.end_headers()
        self.wfile.write(data)

    def address_string(self) -> str:
        return "docker"  # a Unix socket peer has no address

    def log_message(self, format: str, *args) -> None:
        log.debug(format, *args)


def systemd_listener() -> socket.socket | None:
    """Return the socket systemd passed to this process, or None when it passed none.

    The variables are removed afterwards, so that children lvmvol starts do
    not take the socket for theirs.
    """
    pid = os.environ.get("LISTEN_PID")
    count = os.environ.get("LISTEN_FDS")
    if pid is None or count is None or pid != str(os.getpid()):
        return None
    for variable in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        os.environ.pop(variable, None)
    if not count.isdigit() or int(count) < 1:
        log.warning("ignoring LISTEN_FDS=%r: it names no socket", count)
        return None
    if int(count) > 1:
        log.warning("systemd passed %s sockets; using the first (fd %d)", count, LISTEN_FDS_START)
    os.set_inheritable(LISTEN_FDS_START, False)
    return socket.socket(fileno=LISTEN_FDS_START)


def bind_listener(path: str) -> socket.socket:
    """Bind and listen on the Unix socket ``path`` (mode 0660), replacing a stale socket file.

    Raises ``Conflict`` when another server answers on ``path``, and
    ``InvalidInput`` when ``path`` exists and is not a socket.
    """
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        mode = None
    if mode is not None:
        if not stat.S_ISSOCK(mode):
            raise InvalidInput(f"{path} exists and is not a socket", "remove it or pass another --socket")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
        except (ConnectionRefusedError, FileNotFoundError):
            os.unlink(path)  # left by a server that ended without removing it
        else:
            raise Conflict(f"another server listens on {path}", "stop it first, or pass another --socket")
        finally:
            probe.close()

    os.makedirs(os.path.dirname(path) or ".", mode=0o755, exist_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        old_umask = os.umask(0o117)
        try:
            listener.bind(path)
        finally:
            os.umask(old_umask)
        listener.listen(socketserver.TCPServer.request_queue_size)
    except BaseException:
        listener.close()
        raise
    return listener


def serve(plugin: VolumePlugin, socket_path: str) -> None:
    """Serve requests until SIGTERM or SIGINT; a socket this function bound is removed at the end."""
    listener = systemd_listener()
    activated = listener is not None
    if listener is None:
        listener = bind_listener(socket_path)
    where = f"systemd's socket {listener.getsockname()}" if activated else socket_path

    server = PluginServer(listener, plugin)
    signal.signal(signal.SIGTERM, _exit_on_signal)
    log.info("serving Docker volume plugin requests on %s", where)
    try:
        server.serve_forever()
    finally:
        # Requests in progress finish before the server exits.
        server.server_close()
        if not activated:
            try:
                os.unlink(socket_path)
            except FileNotFoundError:
                pass
        log.info("stopped serving on %s", where)


def _exit_on_signal(signum: int, frame) -> None:
    # Raised in the main thread, out of serve_forever, so that the cleanup runs.
    log.info("received %s", signal.Signals(signum).name)
    raise SystemExit(0)
