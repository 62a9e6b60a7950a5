#!/usr/bin/env bash
# THE test command: sets up everything the suite needs on a fresh Debian machine
# (venv, Docker engine, test image) and runs lint + the whole test suite.
#   scripts/test.sh                 # everything CI runs
#   scripts/test.sh tests/unit -x   # extra args go to pytest
# The Ansible lab test runs by default (ORION_TEST_FLEET=0 skips it).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-venv.sh
export DOCKER_HOST="${ORION_TEST_DOCKER_HOST:-unix:///run/orion-test/docker.sock}"
scripts/ensure-dockerd.sh
export ORION_TEST_DOCKER_HOST="$DOCKER_HOST"
scripts/ensure-prometheus.sh
scripts/ensure-test-tools.sh
export ORION_TEST_FLEET="${ORION_TEST_FLEET:-1}"
echo "== ruff"
.venv/bin/ruff check .
echo "== pytest"
if [ $# -gt 0 ]; then
  exec .venv/bin/pytest "$@"
fi
exec .venv/bin/pytest -q -rfEs --durations=15
