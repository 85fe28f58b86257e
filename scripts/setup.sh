#!/usr/bin/env bash
# Create .venv (if needed) and install ecgscan with the extras named in $ECGSCAN_EXTRAS.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${ECGSCAN_EXTRAS:-serve}"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip >/dev/null 2>&1 || true
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[${extras}]" 2>&1 \
  | grep -v -E "^WARNING: Location .* is ignored" || true
.venv/bin/python -c "import ecgscan" || { echo "error: ecgscan did not install" >&2; exit 1; }
