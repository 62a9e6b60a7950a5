#!/usr/bin/env bash
# THE main-job command: on a fresh Debian machine, set up Orion, start a local
# 3-node cluster on loopback, deploy a task with a port binding and show it
# answering, listed by `orion ps` and `orion nodes`; then a service `hello` with
# three replicas answering by its name (hello.service.orion, through its VIP) from a
# client container. The three agents share one engine, so they share one subnet
# lease, one Docker network `orion` and one DNS server (whichever agent binds it).
#   scripts/demo.sh        # up (idempotent: restarts the demo cluster)
#   scripts/demo.sh down   # stop the cluster, remove its containers and data
set -euo pipefail
cd "$(dirname "$0")/.."
DEMO=.demo
export DOCKER_HOST="${DOCKER_HOST:-unix:///run/orion-test/docker.sock}"
API_PORTS=(8001 8002 8003); RAFT_PORTS=(7001 7002 7003); GOSSIP_PORTS=(6001 6002 6003)
TASK_PORT=${ORION_DEMO_PORT:-8080}

down() {
  for pidfile in "$DEMO"/node*.pid; do
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile"); kill -TERM -- "-$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL -- "-$pid" 2>/dev/null || true
    rm -f "$pidfile"
  done
  if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
    ids=$(docker ps -aq --filter label=orion.demo=1 --filter label=orion.managed=1) || true
    ids="$ids $(for n in demo1 demo2 demo3; do docker ps -aq --filter "label=orion.node=$n"; done)"
    # shellcheck disable=SC2086
    [ -z "${ids// /}" ] || docker rm -f $ids >/dev/null
  fi
  # The overlay outlives its agents by design (nothing is torn down on stop); the demo's
  # `down` is an uninstall of this host's part of it.
  if command -v docker >/dev/null && docker network inspect orion >/dev/null 2>&1; then
    docker network rm orion >/dev/null 2>&1 || true
  fi
  ip link del orion.1 2>/dev/null || true
  for table in orion orion-lb; do nft delete table ip "$table" 2>/dev/null || true; done
  # ...and the one DOCKER-USER rule the datapath inserted (its words are orion/network/firewall.py's).
  if [ -x .venv/bin/python ] && command -v iptables >/dev/null; then
    mapfile -t rule < <(.venv/bin/python -c 'from orion.network.firewall import DOCKER_USER_RULE as r; print("\n".join(r))')
    while iptables -w -D DOCKER-USER "${rule[@]}" 2>/dev/null; do :; done
  fi
  rm -rf "$DEMO"
}

if [ "${1:-up}" = down ]; then down; echo "demo: stopped and cleaned"; exit 0; fi

scripts/setup-venv.sh
scripts/ensure-dockerd.sh
down
mkdir -p "$DEMO"
# The Raft secret lives in a file only we can read, never on a command line (ps shows those).
(umask 077 && .venv/bin/python -c 'import secrets; print(secrets.token_hex(16))' > "$DEMO/raft-secret")
start_node() {  # i, extra args...
  local i=$1; shift
  setsid .venv/bin/orion agent --id "demo$((i+1))" --port "${API_PORTS[$i]}" --raft-port "${RAFT_PORTS[$i]}" \
    --gossip-port "${GOSSIP_PORTS[$i]}" --data-dir "$DEMO/demo$((i+1))" --docker-host "$DOCKER_HOST" \
    --raft-secret-file "$DEMO/raft-secret" "$@" > "$DEMO/demo$((i+1)).log" 2>&1 < /dev/null &
  echo $! > "$DEMO/node$((i+1)).pid"
}
wait_healthy() {
  for _ in $(seq 300); do
    curl -sf "http://127.0.0.1:$1/health" >/dev/null && return 0; sleep 0.1
  done
  echo "demo: node on port $1 did not become healthy; its log:" >&2; tail -30 "$DEMO"/*.log >&2; exit 1
}
echo "demo: starting demo1 (bootstrap) and joining demo2, demo3"
start_node 0 --bootstrap; wait_healthy 8001
start_node 1 --join 127.0.0.1:6001; start_node 2 --join 127.0.0.1:6001
wait_healthy 8002; wait_healthy 8003
export ORION_ADDR=http://127.0.0.1:8002
for _ in $(seq 100); do
  [ "$(curl -s http://127.0.0.1:8001/nodes | .venv/bin/python -c 'import json,sys; print(len(json.load(sys.stdin)))' 2>/dev/null)" = 3 ] && break
  sleep 0.1
done
echo "demo: deploying orion/busybox:latest with port $TASK_PORT -> 80 (through a follower's API)"
.venv/bin/orion run orion/busybox:latest --name web --memory 64M --cpu 0.25 -p "$TASK_PORT:80"
for _ in $(seq 100); do
  out=$(curl -sf "http://127.0.0.1:$TASK_PORT/" 2>/dev/null) && break; sleep 0.1
done
echo "demo: curl http://127.0.0.1:$TASK_PORT/ -> ${out:-NO ANSWER}"
echo "demo: deploying service hello (3 replicas, each answering its own hostname) and asking for it by name"
HELLO='hostname > /www/index.html && exec httpd -f -p 80 -h /www'
curl -sf -X PUT "$ORION_ADDR/services/hello" -H 'Content-Type: application/json' -d "{\"image\": \"orion/busybox:latest\",
  \"memory\": \"16M\", \"count\": 3, \"command\": [\"sh\", \"-c\", \"$HELLO\"], \"portBindings\": {\"80/tcp\": \"\"}}" >/dev/null
gw=""
for _ in $(seq 150); do
  gw=$(docker network inspect orion -f '{{(index .IPAM.Config 0).Gateway}}' 2>/dev/null) && [ -n "$gw" ] && \
    [ "$(curl -s "$ORION_ADDR/tasks?service=hello" | .venv/bin/python -c 'import json,sys; print(sum(1 for t in json.load(sys.stdin) if t["state"] == "running" and t.get("ip")))' 2>/dev/null)" = 3 ] && break
  sleep 0.2
done
# A client container as a task gets it: on the orion network, Orion's DNS, the service.orion search domain.
names=$(docker run --rm --network orion --dns "$gw" --dns-search service.orion orion/busybox:latest \
  sh -c 'for i in 1 2 3 4 5 6 7 8 9; do wget -qO- http://hello.service.orion/; done' 2>&1 | sort | uniq -c) || true
echo "demo: 9 requests to http://hello.service.orion/ from a client container, answered by:"; echo "$names"
answered=$(echo "$names" | grep -c . || true)
echo; .venv/bin/orion ps -o wide; echo; .venv/bin/orion nodes; echo; .venv/bin/orion network
echo; .venv/bin/orion status
echo
echo "demo: the cluster keeps running (logs in $DEMO/). Try: ORION_ADDR=$ORION_ADDR .venv/bin/orion ps"
echo "demo: stop it with: scripts/demo.sh down"
[ -n "${out:-}" ] && [ "${answered:-0}" -ge 2 ]
