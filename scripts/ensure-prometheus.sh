#!/usr/bin/env bash
# Make `prometheus` and `promtool` available (Debian's package), for the metrics tests.
# Idempotent. Debian's postinst would start a service under systemd; on a machine
# without systemd as PID 1 nothing is started, and the tests run their own
# `prometheus --config.file ... --web.listen-address 127.0.0.1:PORT` process anyway.
# Prints where the binaries are; exits non-zero only when it cannot install them.
set -euo pipefail
if command -v prometheus >/dev/null && command -v promtool >/dev/null; then
  echo "ensure-prometheus: $(prometheus --version 2>&1 | head -1)"
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "ensure-prometheus: prometheus/promtool missing; install Debian's 'prometheus' package (needs root + apt)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# A fresh machine may not have package lists yet; refresh only when the package is unknown.
if ! apt-cache show prometheus >/dev/null 2>&1; then
  apt-get update -qq
fi
# policy-rc.d 101: never start the packaged service here; tests start their own instance.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created_policy=1
fi
trap 'if [ "$created_policy" = 1 ]; then rm -f "$policy"; fi' EXIT
apt-get install -y -qq --no-install-recommends prometheus >/dev/null
echo "ensure-prometheus: $(prometheus --version 2>&1 | head -1)"
