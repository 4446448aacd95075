#!/usr/bin/env bash
# Create (or bring up to date) the auto-circuit venv used by benchmarks/autocircuit_side.py.
# Idempotent: does nothing when .autocircuit-venv already holds exactly the pinned versions.
# Usage: bash benchmarks/setup_autocircuit.sh    (PYTHON=python3.11 by default; VENV overrides the path)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
req="$here/autocircuit-requirements.txt"
venv="${VENV:-$repo/.autocircuit-venv}"
py="${PYTHON:-python3.11}"

if [ ! -x "$venv/bin/python" ]; then
    echo "setup_autocircuit: creating $venv with $py" >&2
    "$py" -m venv "$venv"
fi

# Already satisfied? Compare the pinned lines with what the venv has (names normalised).
want="$(grep -Ev '^\s*(#|$)' "$req" | tr 'A-Z_' 'a-z-' | sort)"
have="$("$venv/bin/python" -m pip freeze 2>/dev/null | tr 'A-Z_' 'a-z-' | sort)"
missing="$(comm -23 <(echo "$want") <(echo "$have"))"
if [ -z "$missing" ]; then
    echo "setup_autocircuit: $venv is up to date" >&2
else
    echo "setup_autocircuit: installing $(echo "$missing" | tr '\n' ' ')" >&2
    "$venv/bin/python" -m pip install --disable-pip-version-check -q -r "$req"
fi
if "$venv/bin/python" -m pip list 2>/dev/null | grep -qi '^nvidia-'; then
    echo "setup_autocircuit: warning: CUDA packages (nvidia-*) were installed; torch must be the CPU build" >&2
fi
"$venv/bin/python" -c "import sys, torch.optim.adam; torch = sys.modules['torch']; torch.optim.adam = sys.modules['torch.optim.adam']; import auto_circuit, transformer_lens; print('setup_autocircuit: auto-circuit OK, torch', torch.__version__, 'transformer_lens', transformer_lens.__version__ if hasattr(transformer_lens, '__version__') else '2.4.0')" >&2
