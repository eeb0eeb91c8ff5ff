#!/usr/bin/env bash
# Lint and type-check, as CI does: ruff on everything, mypy on the package (config: pyproject.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
ruff check minicnn tests examples bench
mypy minicnn
