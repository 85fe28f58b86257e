#!/usr/bin/env bash
# Set up and run the main job on the built-in example: `bash scripts/demo.sh [OUTPUT_DIR]`.
set -euo pipefail
cd "$(dirname "$0")/.."
ECGSCAN_EXTRAS=serve bash scripts/setup.sh
exec .venv/bin/ecgscan demo -o "${1:-ecgscan-demo}"
