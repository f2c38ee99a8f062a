#!/usr/bin/env bash
# make demo: the main job end to end (see operator/vnf_operator/testing/demo.py).
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python -m vnf_operator.testing.demo "$@"
