#!/usr/bin/env bash
# Orion's and Docker Swarm's failure figures in one run, side by side (issue #4):
# leader SIGKILL -> writes accepted again, node SIGKILL -> replacement answering.
#   bench/selfheal_compare.sh [--leader-trials 20] [--node-trials 10]
# Needs root (private Docker engines). Writes bench/results/failover.json and
# bench/results/swarm_compare.json (the latter carries the side-by-side ratios).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-venv.sh >/dev/null
.venv/bin/python bench/failover_bench.py "$@" --out bench/results/failover.json
.venv/bin/python bench/swarm_compare.py "$@" --orion bench/results/failover.json \
  --out bench/results/swarm_compare.json
