#!/usr/bin/env bash
# Set up a fresh Debian 12 machine for dbgscaffold: the system packages
# (as root, through sudo when needed), then .venv with dbgscaffold and its
# test extras installed from this checkout.  Safe to run again.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if [ "$(id -u)" -eq 0 ]; then
    bash "$here/scripts/setup-system.sh"
else
    sudo bash "$here/scripts/setup-system.sh"
fi

python=python3
if ! "$python" -m venv --help >/dev/null 2>&1; then
    echo "setup.sh: $python cannot create virtual environments" >&2
    exit 4
fi
[ -x "$here/.venv/bin/python" ] || "$python" -m venv "$here/.venv"
"$here/.venv/bin/python" -m pip install --quiet -e "$here[test]"
echo "setup.sh: ready: $here/.venv/bin/dbgscaffold"
