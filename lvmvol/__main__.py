"""The lvmvol command's entry point, for ``python -m lvmvol`` and the installed script.

``lvmvol --version`` is answered here, before Click and the command modules
load: scripts run it to check what is installed, and it then costs little
more than Python's own start-up. Every other command line goes to Click.
"""

# No "from __future__ import annotations": the --version path imports only what
# it needs, because each module costs about 15 ms in the emulated test VM.
import sys

from lvmvol import __version__

# The line Click's version option prints for prog_name "lvmvol".
VERSION_LINE = f"lvmvol, version {__version__}"


def main() -> None:
    if sys.argv[1:] == ["--version"]:
        print(VERSION_LINE)
        return
    from lvmvol.cli import main as run_cli

    run_cli()


if __name__ == "__main__":
    main()
