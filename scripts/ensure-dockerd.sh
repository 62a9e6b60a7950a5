#!/usr/bin/env bash
# Make sure a Docker engine for Orion's tests answers, and that it has the test
# image. Idempotent: an engine that already answers is left alone.
#
#   scripts/ensure-dockerd.sh            # then: export ORION_TEST_DOCKER_HOST=<printed host>
#
# 1. If an engine answers at the socket, say so (and build the test image if it is
#    missing); exit 0.
# 2. Else, as root on Debian: install docker.io and busybox-static if dockerd is
#    missing, start a private dockerd (its own socket, data root, exec root, pid
#    file; detached with setsid), wait until it answers (60 s), build the test
#    image with scripts/build-test-image.sh; exit 0.
# 3. Else print what to do by hand; exit 1.
#
# Parameters (environment):
#   ORION_DOCKER_SOCK       socket path             (default: from DOCKER_HOST if unix://,
#                                                     else /run/orion-test/docker.sock)
#   ORION_DOCKER_DATA_ROOT  --data-root             (default /var/lib/orion-test/docker)
#   ORION_DOCKER_EXEC_ROOT  --exec-root             (default /run/orion-test/exec)
#   ORION_DOCKER_PIDFILE    --pidfile               (default /run/orion-test/docker.pid)
#   ORION_DOCKER_LOG        dockerd's log           (default /var/log/orion-test-dockerd.log,
#                                                     /tmp/orion-test-dockerd.log if not writable)
#   ORION_DOCKER_BRIDGE     --bridge: empty = the engine's default docker0; "none" = no
#                           default bridge (no published ports); any other name = that
#                           bridge, created if missing when ORION_DOCKER_BRIDGE_CIDR is set
#   ORION_DOCKER_BRIDGE_CIDR  address of a bridge to create, e.g. 172.31.250.1/24
#   ORION_DOCKER_IPTABLES   true|false (--iptables; default true)
#   ORION_DOCKER_EXTRA_ARGS more dockerd flags, word-split
#   ORION_TEST_IMAGE        image to ensure (default orion/busybox:latest)
#   ORION_DOCKER_WAIT       seconds to wait for the engine (default 60)
#
# A SECOND engine beside an existing one needs its own bridge and must keep off
# the first one's iptables chains, e.g.:
#   ORION_DOCKER_SOCK=/run/orion-test2/docker.sock ORION_DOCKER_DATA_ROOT=/var/lib/orion-test2 \
#   ORION_DOCKER_EXEC_ROOT=/run/orion-test2/exec ORION_DOCKER_PIDFILE=/run/orion-test2/docker.pid \
#   ORION_DOCKER_BRIDGE=orionbr2 ORION_DOCKER_BRIDGE_CIDR=172.31.250.1/24 ORION_DOCKER_IPTABLES=false \
#   scripts/ensure-dockerd.sh
# (with --iptables=false published ports still answer on the host through docker-proxy.)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)

if [ -n "${ORION_DOCKER_SOCK:-}" ]; then
  sock=$ORION_DOCKER_SOCK
elif [[ "${DOCKER_HOST:-}" == unix://* ]]; then
  sock=${DOCKER_HOST#unix://}
else
  sock=/run/orion-test/docker.sock
fi
host="unix://$sock"
data_root=${ORION_DOCKER_DATA_ROOT:-/var/lib/orion-test/docker}
exec_root=${ORION_DOCKER_EXEC_ROOT:-/run/orion-test/exec}
pidfile=${ORION_DOCKER_PIDFILE:-/run/orion-test/docker.pid}
bridge=${ORION_DOCKER_BRIDGE:-}
bridge_cidr=${ORION_DOCKER_BRIDGE_CIDR:-}
iptables=${ORION_DOCKER_IPTABLES:-true}
image=${ORION_TEST_IMAGE:-orion/busybox:latest}
wait_s=${ORION_DOCKER_WAIT:-60}
log=${ORION_DOCKER_LOG:-/var/log/orion-test-dockerd.log}
if ! { [ -w "$(dirname "$log")" ] || [ -w "$log" ]; }; then
  log=/tmp/orion-test-dockerd.log
fi

say() { echo "ensure-dockerd: $*"; }

answers() {
  command -v docker >/dev/null 2>&1 && timeout 10 docker -H "$host" info >/dev/null 2>&1
}

ensure_image() {
  if DOCKER_HOST=$host docker image inspect "$image" >/dev/null 2>&1; then
    say "image $image present"
    return 0
  fi
  DOCKER_HOST=$host "$here/build-test-image.sh" "$image"
}

done_msg() {
  say "engine answers at $host"
  echo "export ORION_TEST_DOCKER_HOST=$host DOCKER_HOST=$host"
}

if answers; then
  ensure_image
  done_msg
  exit 0
fi

if [ "$(id -u)" != 0 ] || [ ! -f /etc/debian_version ]; then
  cat >&2 <<EOF
ensure-dockerd: no Docker engine answers at $host, and this script can only start one
as root on Debian. Either:
  - point it at a running engine:  DOCKER_HOST=unix:///var/run/docker.sock $0
    (your user must be allowed to use that socket), then
    export ORION_TEST_DOCKER_HOST=unix:///var/run/docker.sock
  - or, as root on Debian/Ubuntu:  sudo $0
    (installs docker.io and busybox-static, starts a private dockerd at $host)
The test image is built with scripts/build-test-image.sh (needs busybox-static).
EOF
  exit 1
fi

need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
if ! [ -x /bin/busybox ] || ldd /bin/busybox >/dev/null 2>&1; then need+=(busybox-static); fi
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y "${need[@]}" || { apt-get update && apt-get install -y "${need[@]}"; }
fi

bridge_args=()
if [ -n "$bridge" ]; then
  if [ "$bridge" != none ] && ! ip link show "$bridge" >/dev/null 2>&1; then
    if [ -z "$bridge_cidr" ]; then
      say "bridge $bridge does not exist; set ORION_DOCKER_BRIDGE_CIDR to create it" >&2
      exit 1
    fi
    ip link add name "$bridge" type bridge
    ip addr add "$bridge_cidr" dev "$bridge"
    ip link set "$bridge" up
    say "created bridge $bridge ($bridge_cidr)"
  fi
  bridge_args=(--bridge "$bridge")
fi

if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  say "dockerd (pid $(cat "$pidfile")) runs but does not answer at $host; see $log" >&2
  exit 1
fi

mkdir -p "$(dirname "$sock")" "$data_root" "$exec_root" "$(dirname "$pidfile")"
say "starting dockerd at $host (data root $data_root, log $log)"
# shellcheck disable=SC2086  # EXTRA_ARGS is meant to be word-split
setsid dockerd --host "$host" --data-root "$data_root" --exec-root "$exec_root" \
  --pidfile "$pidfile" --iptables="$iptables" "${bridge_args[@]}" ${ORION_DOCKER_EXTRA_ARGS:-} \
  </dev/null >>"$log" 2>&1 &
started=$!

for _ in $(seq $((wait_s * 5))); do
  if answers; then
    ensure_image
    say "dockerd pid $started"
    done_msg
    exit 0
  fi
  if ! kill -0 "$started" 2>/dev/null; then
    say "dockerd exited; last lines of $log:" >&2
    tail -n 20 "$log" >&2
    exit 1
  fi
  sleep 0.2
done
say "dockerd did not answer within ${wait_s}s; last lines of $log:" >&2
tail -n 20 "$log" >&2
exit 1
