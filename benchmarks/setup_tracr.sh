#!/usr/bin/env bash
# Create (or bring up to date) the tracr venv used by benchmarks/tracr_side.py.
# Idempotent: does nothing when .tracr-venv already holds exactly the pinned versions.
# Usage: bash benchmarks/setup_tracr.sh    (PYTHON=python3.11 by default; VENV overrides the path)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
req="$here/tracr-requirements.txt"
venv="${VENV:-$repo/.tracr-venv}"
py="${PYTHON:-python3.11}"

if [ ! -x "$venv/bin/python" ]; then
    echo "setup_tracr: creating $venv with $py" >&2
    "$py" -m venv "$venv"
fi

# Already satisfied? Compare the pinned lines with what the venv has (names normalised).
want="$(grep -Ev '^\s*(#|$)' "$req" | tr 'A-Z_' 'a-z-' | sort)"
have="$("$venv/bin/python" -m pip freeze 2>/dev/null | tr 'A-Z_' 'a-z-' | sort)"
missing="$(comm -23 <(echo "$want") <(echo "$have"))"
if [ -z "$missing" ]; then
    echo "setup_tracr: $venv is up to date" >&2
else
    echo "setup_tracr: installing $(echo "$missing" | tr '\n' ' ')" >&2
    "$venv/bin/python" -m pip install --disable-pip-version-check -q -r "$req"
fi
"$venv/bin/python" -c "import tracr.compiler.compiling, haiku, jax; print('setup_tracr: tracr OK, jax', jax.__version__)" >&2
