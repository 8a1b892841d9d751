#!/usr/bin/env bash
# Creates benchmarks/.venv-peers (Python 3.11) with the peer libraries pinned in requirements.txt:
# CPU torch, stable-baselines3, gymnasium. Idempotent: does nothing when the venv already holds
# exactly these pins. Usage: bash benchmarks/peers/setup_peers.sh   (PYTHON=... to pick the interpreter)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$(dirname "$HERE")/.venv-peers"
REQ="$HERE/requirements.txt"
PYTHON="${PYTHON:-python3.11}"
MARKER="$VENV/.installed"   # a copy of the requirements.txt it was installed from

if [[ -f "$MARKER" ]] && cmp -s "$REQ" "$MARKER" \
   && "$VENV/bin/python" -c 'import torch, stable_baselines3, gymnasium' 2>/dev/null; then
    echo "peers venv up to date: $VENV"
    exit 0
fi

if [[ ! -x "$VENV/bin/python" ]]; then
    "$PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 11), "the peers venv needs Python 3.11"'
    "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check)

# 1. torch first, alone, at its pin (the CPU build); 2. the rest, with torch held at that pin.
TORCH_PIN="$(grep -E '^torch==' "$REQ")"
"${PIP[@]}" "$TORCH_PIN"
CONSTRAINT="$(mktemp)"
trap 'rm -f "$CONSTRAINT"' EXIT
echo "$TORCH_PIN" > "$CONSTRAINT"
"${PIP[@]}" -r "$REQ" -c "$CONSTRAINT"

# Refuse a CUDA build: it would mean the pin was bypassed.
if "$VENV/bin/python" -m pip list --disable-pip-version-check 2>/dev/null | grep -qi '^nvidia-'; then
    echo "error: CUDA packages were installed into $VENV; check the torch pin" >&2
    exit 1
fi
"$VENV/bin/python" - <<'PY'
import gymnasium, stable_baselines3, torch
assert torch.version.cuda is None, f"expected a CPU torch, got CUDA {torch.version.cuda}"
print(f"peers venv ready: torch {torch.__version__}, stable-baselines3 {stable_baselines3.__version__}, "
      f"gymnasium {gymnasium.__version__}")
PY
cp "$REQ" "$MARKER"
