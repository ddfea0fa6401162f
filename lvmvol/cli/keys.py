"""Key options shared by commands that open or format LUKS2 volumes."""

from __future__ import annotations

import sys
from typing import Callable

from typing import TYPE_CHECKING

import click

from lvmvol.errors import InvalidInput

if TYPE_CHECKING:
    from lvmvol.crypt import Key


def key_options(create: bool, discards: bool = True) -> Callable:
    """Add --key-file, --passphrase, --passphrase-stdin and (with ``discards``) --allow-discards to a command."""
    discards_help = (
        "Pass discards (TRIM) through dm-crypt so freed blocks return to the thin pool; "
        "this reveals which blocks are in use. Off by default."
    )
    if create:
        discards_help += " Recorded, so later mounts use it too."

    def decorate(command: Callable) -> Callable:
        if discards:
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


def read_key(
    key_file: str | None, passphrase: bool, passphrase_stdin: bool, confirm: bool, prompt: str = "Passphrase"
) -> Key | None:
    """Return the key the options name, or None when none was given.

    A passphrase is read from the terminal (twice when ``confirm``) or from
    standard input; one trailing newline from standard input is dropped.
    """
    _check_exclusive({"--key-file": key_file, "--passphrase": passphrase, "--passphrase-stdin": passphrase_stdin})
    if key_file is not None:
        if not key_file:
            raise InvalidInput("--key-file is empty", "pass the path of a key file")
        return _key_file_key(key_file)
    if passphrase:
        if not sys.stdin.isatty():
            raise InvalidInput("--passphrase needs a terminal", "use --passphrase-stdin in scripts")
        text = click.prompt(prompt, hide_input=True, confirmation_prompt=confirm, err=True)
        return _passphrase_key(text.encode("utf-8"))
    if passphrase_stdin:
        return _passphrase_key(_read_stdin())
    return None


def new_key_options(command: Callable) -> Callable:
    """Add --new-key-file, --new-passphrase and --new-passphrase-stdin to a command."""
    command = click.option(
        "--new-passphrase-stdin",
        is_flag=True,
        help="Read the new passphrase from standard input (for scripts). With --passphrase-stdin too, "
        "standard input holds the current passphrase on the first line and the new one on the second.",
    )(command)
    command = click.option(
        "--new-passphrase", is_flag=True, help="Ask for the new passphrase on the terminal (twice)."
    )(command)
    command = click.option(
        "--new-key-file",
        type=click.Path(dir_okay=False),
        help="New key file (mode 0600 or stricter, owned by root), whose path is recorded with the volume.",
    )(command)
    return command


def read_rekey_keys(
    new_key_file: str | None,
    new_passphrase: bool,
    new_passphrase_stdin: bool,
    key_file: str | None,
    passphrase: bool,
    passphrase_stdin: bool,
) -> tuple[Key, Key | None]:
    """Return the new key and the current key (None: the recorded key file) that the options name.

    When both passphrases come from standard input, the first line is the
    current passphrase and the rest, without one trailing newline, the new one.
    """
    given = _check_exclusive(
        {"--new-key-file": new_key_file, "--new-passphrase": new_passphrase, "--new-passphrase-stdin": new_passphrase_stdin}
    )
    if not given:
        raise InvalidInput(
            "the new key is missing", "pass --new-key-file, --new-passphrase or --new-passphrase-stdin"
        )
    _check_exclusive({"--key-file": key_file, "--passphrase": passphrase, "--passphrase-stdin": passphrase_stdin})
    if passphrase_stdin and new_passphrase_stdin:
        current_line, separator, rest = sys.stdin.buffer.read().partition(b"\n")
        if not separator:
            raise InvalidInput(
                "standard input contains one line, but --passphrase-stdin with --new-passphrase-stdin "
                "needs the current passphrase on the first line and the new one on the second"
            )
        return _passphrase_key(rest.removesuffix(b"\n")), _passphrase_key(current_line)

    current = read_key(key_file, passphrase, passphrase_stdin, confirm=False, prompt="Current passphrase")
    if new_key_file is not None:
        if not new_key_file:
            raise InvalidInput("--new-key-file is empty", "pass the path of a key file")
        return _key_file_key(new_key_file), current
    if new_passphrase:
        if not sys.stdin.isatty():
            raise InvalidInput("--new-passphrase needs a terminal", "use --new-passphrase-stdin in scripts")
        text = click.prompt("New passphrase", hide_input=True, confirmation_prompt=True, err=True)
        return _passphrase_key(text.encode("utf-8")), current
    return _passphrase_key(_read_stdin()), current


def _read_stdin() -> bytes:
    """Read standard input and drop one trailing newline."""
    return sys.stdin.buffer.read().removesuffix(b"\n")


def _check_exclusive(options: dict[str, object]) -> list[str]:
    """Return the options that were given; raise ``InvalidInput`` when more than one was."""
    given = [option for option, value in options.items() if value is not None and value is not False]
    if len(given) > 1:
        raise InvalidInput(f"{' and '.join(given)} exclude each other", "pass one of them")
    return given


def _key_file_key(path: str) -> Key:
    # Imported here: commands given no key option never load cryptsetup's helpers.
    from lvmvol.crypt import Key
    from lvmvol.keys import validate_key_file

    return Key(path=validate_key_file(path))


def _passphrase_key(data: bytes) -> Key:
    from lvmvol.crypt import Key

    if not data:
        raise InvalidInput("the passphrase is empty")
    return Key(passphrase=data)
