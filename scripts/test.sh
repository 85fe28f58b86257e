#!/usr/bin/env bash
# Set up and run every check: lint, types and the test suite. `bash scripts/test.sh [pytest args]`.
set -euo pipefail
cd "$(dirname "$0")/.."
ECGSCAN_EXTRAS=dev,train,serve,cluster bash scripts/setup.sh
echo "== browser (for the web page test)"
bash scripts/install-browser.sh || echo "warning: chromium not installed; the browser test will be skipped" >&2
echo "== ruff"
.venv/bin/ruff check src tests benchmarks
echo "== mypy"
.venv/bin/mypy
echo "== pytest"
.venv/bin/python -m pytest -q "$@"
