#!/usr/bin/env bash
# One venv per supported ansible-core release (tests/fleet/ansible-versions.txt),
# at .venv-ansible-<version> in the repository root, made once and then reused.
# Prints the venvs' bin directories, one a line. Idempotent and quick when they exist.
#   tests/fleet/ensure-ansible-versions.sh
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PY=${PYTHON:-python3}
grep -v '^\s*\(#\|$\)' "$repo/tests/fleet/ansible-versions.txt" | while read -r version; do
  venv="$repo/.venv-ansible-$version"
  if [ ! -x "$venv/bin/ansible-playbook" ] || ! "$venv/bin/ansible-playbook" --version 2>/dev/null | grep -q "core $version\]"; then
    rm -rf "$venv"
    "$PY" -m venv "$venv"
    # pyyaml and jinja2 come with ansible-core; nothing else is needed (no collections).
    "$venv/bin/pip" install -q --disable-pip-version-check "ansible-core==$version" >&2
  fi
  echo "$venv/bin"
done
