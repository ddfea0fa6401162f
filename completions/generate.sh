#!/bin/bash
# Regenerate the shell completion files from the Click commands, using
# Click's own completion support. Run from the repository: completions/generate.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
python=${PYTHON:-../.venv/bin/python}
for shell in bash zsh fish; do
    _LVMVOL_COMPLETE=${shell}_source "$python" -c 'from lvmvol.cli import cli; cli(prog_name="lvmvol")' > "lvmvol.$shell"
done
