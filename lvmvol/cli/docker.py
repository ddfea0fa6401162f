"""``lvmvol docker``: the Docker volume plugin server."""

from __future__ import annotations

import contextlib
import logging
from typing import Iterator

import click

from lvmvol.cli.common import ReadOnlyCommand, command_lock, operation_context, require_root
from lvmvol.docker import DEFAULT_SOCKET, DEFAULT_STATE_DIR


@click.group()
def docker() -> None:
    """Serve lvmvol volumes to Docker as the volume driver 'lvmvol'.

    \b
    Example:
      $ lvmvol docker serve
      $ docker volume create --driver lvmvol --opt size=100M pgdata
    """


@docker.command("serve", cls=ReadOnlyCommand)
@click.option(
    "--socket",
    "socket_path",
    default=DEFAULT_SOCKET,
    show_default=True,
    type=click.Path(dir_okay=False),
    help="Unix socket to listen on, unless systemd passes one (socket activation).",
)
@click.option(
    "--state-dir",
    default=DEFAULT_STATE_DIR,
    show_default=True,
    type=click.Path(file_okay=False),
    help="Directory for docker-mounts.json, the mount IDs per volume; keep it on a tmpfs such as /run.",
)
@click.pass_context
def serve(click_ctx: click.Context, socket_path: str, state_dir: str) -> None:
    """Answer Docker's volume plugin requests on SOCKET until stopped (SIGTERM or Ctrl-C).

    'docker volume create --driver lvmvol --opt size=100M' then creates an
    lvmvol volume. Options: size, thinpool (or pool), vg, fs, snapshot,
    keyfile, crypt=luks. A volume stays mounted until every container that
    mounted it has unmounted it. Each request that changes the system
    takes the command lock while it runs, so the server runs as root.
    Every request is logged on stderr.

    \b
    Example:
      $ lvmvol docker serve --socket /run/docker/plugins/lvmvol.sock
      $ docker volume create --driver lvmvol --opt size=100M --opt crypt=luks --opt keyfile=/run/keys/db.key db
    """
    from lvmvol.docker.mount_ids import MountIds
    from lvmvol.docker.plugin import VolumePlugin
    from lvmvol.docker.server import serve as serve_requests

    # The server is read-only as a command: each mutating request takes the lock itself.
    ctx = operation_context(click_ctx)
    logger = logging.getLogger("lvmvol.docker")
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)

    @contextlib.contextmanager
    def mutation_guard(request: str) -> Iterator[None]:
        require_root(f"lvmvol docker serve ({request})")
        lock = command_lock(ctx.config)
        lock.argv = ["lvmvol", "docker", "serve", request]
        with lock:
            yield

    plugin = VolumePlugin(ctx, MountIds(state_dir), mutation_guard)
    plugin.start()
    serve_requests(plugin, socket_path)
