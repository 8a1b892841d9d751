#!/usr/bin/env bash
# Creates benchmarks/.venv-rejax (Python 3.11) with rejax 0.1.3 and the pins in requirements-rejax.txt
# (rejax 0.1.3 needs gymnax < 1.0 for the older step signature). Idempotent.
# Usage: bash benchmarks/peers/setup_rejax.sh   (PYTHON=... to pick the interpreter)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$(dirname "$HERE")/.venv-rejax"
REQ="$HERE/requirements-rejax.txt"
PYTHON="${PYTHON:-python3.11}"
MARKER="$VENV/.installed"

if [[ -f "$MARKER" ]] && cmp -s "$REQ" "$MARKER" && "$VENV/bin/python" -c 'import rejax' 2>/dev/null; then
    echo "rejax venv up to date: $VENV"
    exit 0
fi
if [[ ! -x "$VENV/bin/python" ]]; then
    "$PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 11), "the rejax venv needs Python 3.11"'
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQ"
cp "$REQ" "$MARKER"
echo "rejax venv ready: $VENV"
