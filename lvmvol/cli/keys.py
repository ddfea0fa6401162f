"""Key options shared by commands that open or format LUKS2 volumes."""

from __future__ import annotations

import sys
from typing import Callable

import click

from lvmvol.crypt import Key
from lvmvol.errors import InvalidInput
from lvmvol.keys import validate_key_file


def key_options(create: bool) -> Callable:
    """Add --key-file, --passphrase, --passphrase-stdin and --allow-discards to a command."""
    discards_help = (
        "Pass discards (TRIM) through dm-crypt so freed blocks return to the thin pool; "
        "this reveals which blocks are in use. Off by default."
    )
    if create:
        discards_help += " Recorded, so later mounts use it too."

    def decorate(command: Callable) -> Callable:
        command = click.option("--allow-discards", is_flag=True, help=discards_help)(command)
        command = click.option(
            "--passphrase-stdin", is_flag=True, help="Read the passphrase from standard input (for scripts)."
        )(command)
        command = click.option(
            "--passphrase",
            is_flag=True,
            help="Ask for a passphrase on the terminal instead of using a key file.",
        )(command)
        command = click.option(
            "--key-file",
            # A plain string: lvmvol's own key file checks give every
            # problem (missing, directory, empty, unsafe mode) one message form.
            type=str,
            help="Key file (mode 0600 or stricter, owned by root)"
            + (" whose path is recorded with the volume." if create else " instead of the recorded one."),
        )(command)
        return command

    return decorate


def read_key(key_file: str | None, passphrase: bool, passphrase_stdin: bool, confirm: bool) -> Key | None:
    """Return the key the options name, or None when none was given.

    A passphrase is read from the terminal (twice when ``confirm``) or from
    standard input; one trailing newline from standard input is dropped.
    """
    choices = (
        ("--key-file", key_file is not None),
        ("--passphrase", passphrase),
        ("--passphrase-stdin", passphrase_stdin),
    )
    given = [option for option, used in choices if used]
    if len(given) > 1:
        raise InvalidInput(f"{' and '.join(given)} exclude each other", "pass one of them")
    if key_file is not None:
        if not key_file:
            raise InvalidInput("--key-file is empty", "pass the path of a key file")
        return Key(path=validate_key_file(key_file))
    if passphrase:
        if not sys.stdin.isatty():
            raise InvalidInput("--passphrase needs a terminal", "use --passphrase-stdin in scripts")
        text = click.prompt("Passphrase", hide_input=True, confirmation_prompt=confirm, err=True)
        return _passphrase_key(text.encode("utf-8"))
    if passphrase_stdin:
        data = sys.stdin.buffer.read()
        if data.endswith(b"\n"):
            data = data[:-1]
        return _passphrase_key(data)
    return None


def _passphrase_key(data: bytes) -> Key:
    if not data:
        raise InvalidInput("the passphrase is empty")
    return Key(passphrase=data)
