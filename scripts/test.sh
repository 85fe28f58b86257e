#!/usr/bin/env bash
# Set up and run every check: lint, types and the test suite. `bash scripts/test.sh [pytest args]`.
set -euo pipefail
cd "$(dirname "$0")/.."
ECGSCAN_EXTRAS=dev,train,serve bash scripts/setup.sh
echo "== ruff"
.venv/bin/ruff check src tests benchmarks
echo "== mypy"
.venv/bin/mypy
echo "== pytest"
.venv/bin/python -m pytest -q "$@"
