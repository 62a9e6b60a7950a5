#!/usr/bin/env bash
# The fleet lab: N throwaway Debian "servers" for testing the Ansible rollout
# for real, on one machine. Each host is a container running systemd as PID 1
# with its own IP on a dedicated Docker network, sshd with a throwaway key for
# root, and its own nested docker.io (installed by the playbook, not here).
#
# Why containers and not VMs: they boot in seconds on a 2-core CI machine and
# systemd still supervises the agent, so Type=notify, Restart=, the hardening
# options and `journalctl -u orion` are the real thing.
#
# The hosts may reach only the lab network, the controller (the registry on the
# network's gateway IP) and plain-HTTP port 80 (Debian's mirror, for apt):
# `up` puts an egress guard in DOCKER-USER so nothing else leaves the lab.
#
# Usage: tests/fleet/lab.sh image|wheelhouse|up|down|purge|status
#   image       build (once; cached in the engine) the host image with debootstrap
#   wheelhouse  build the orion wheel + its dependency wheels into $LAB_DIR/wheelhouse
#   up          image + wheelhouse + network + registry + hosts + inventory
#   down        remove everything `up` made (containers, volumes, network,
#               registry process, iptables rules, $LAB_DIR); keeps the caches
#   purge       down, then also drop the caches (host image, apt archives)
#   status      print the lab's inventory path and hosts
#
# Environment (all optional):
#   ORION_TEST_DOCKER_HOST / DOCKER_HOST  engine for the lab (default unix:///run/orion-test/docker.sock)
#   ORION_LAB_NAME      prefix of every lab object (default orion-fleet)
#   ORION_LAB_DIR       state dir: key, inventory, wheelhouse, registry (default /tmp/$ORION_LAB_NAME)
#   ORION_LAB_CACHE     apt archive cache kept between runs (default /var/cache/orion-fleet-lab)
#   ORION_LAB_HOSTS     number of hosts (default 3)
#   ORION_LAB_REGISTRY_PORT  registry port (default 5000)
#   ORION_LAB_MIRROR    Debian mirror (default http://deb.debian.org/debian)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
export DOCKER_HOST="${ORION_TEST_DOCKER_HOST:-${DOCKER_HOST:-unix:///run/orion-test/docker.sock}}"
LAB_NAME=${ORION_LAB_NAME:-orion-fleet}
LAB_DIR=${ORION_LAB_DIR:-/tmp/$LAB_NAME}
CACHE_DIR=${ORION_LAB_CACHE:-/var/cache/orion-fleet-lab}
HOSTS=${ORION_LAB_HOSTS:-3}
REGISTRY_PORT=${ORION_LAB_REGISTRY_PORT:-5000}
MIRROR=${ORION_LAB_MIRROR:-http://deb.debian.org/debian}
PY=${ORION_LAB_PYTHON:-$repo/.venv/bin/python}
# Bump when the recipe in build_image changes: the tag is the cache key.
RECIPE=3
IMAGE="orion/fleet-host:bookworm-r$RECIPE"
# What a freshly installed Debian server has, plus python3-apt for Ansible's apt module.
PACKAGES=systemd,systemd-sysv,openssh-server,python3,python3-apt,iproute2,dbus,procps
LABEL="org.orion.lab=$LAB_NAME"
TASK_IMAGE=${ORION_LAB_TASK_IMAGE:-orion/busybox:latest}

log() { echo "lab: $*" >&2; }

build_image() {
  if docker image inspect "$IMAGE" >/dev/null 2>&1; then
    log "host image $IMAGE cached"
    return
  fi
  command -v debootstrap >/dev/null || { log "need debootstrap (apt-get install -y debootstrap)"; exit 1; }
  local root
  root=$(mktemp -d /var/tmp/orion-fleet-root.XXXXXX)
  # shellcheck disable=SC2064
  trap "rm -rf '$root'" RETURN
  log "debootstrap bookworm into $root (about a minute)"
  debootstrap --variant=minbase --include="$PACKAGES" bookworm "$root" "$MIRROR" >"$root.log" 2>&1 \
    || { tail -20 "$root.log" >&2; exit 1; }
  rm -f "$root.log"
  cat >"$root/etc/apt/sources.list" <<EOF
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb ${MIRROR%/debian}/debian-security bookworm-security main
EOF
  # Every host must get its own machine-id (journald, D-Bus) and ssh host keys.
  : >"$root/etc/machine-id"
  rm -f "$root/var/lib/dbus/machine-id" "$root"/etc/ssh/ssh_host_*
  mkdir -p "$root/etc/systemd/system/ssh.service.d"
  cat >"$root/etc/systemd/system/ssh.service.d/lab-hostkeys.conf" <<'EOF'
[Service]
ExecStartPre=
ExecStartPre=/usr/bin/ssh-keygen -A
ExecStartPre=/usr/sbin/sshd -t
EOF
  install -d -m 0700 "$root/root/.ssh"
  # Units that make no sense in a container (no consoles, no udev, no kernel to tune).
  for unit in getty@tty1.service console-getty.service getty-static.service \
              systemd-remount-fs.service systemd-sysctl.service systemd-modules-load.service \
              sys-kernel-config.mount sys-kernel-debug.mount sys-kernel-tracing.mount \
              systemd-firstboot.service apt-daily.timer apt-daily-upgrade.timer; do
    ln -sf /dev/null "$root/etc/systemd/system/$unit"
  done
  chroot "$root" systemctl set-default multi-user.target >/dev/null 2>&1
  chroot "$root" apt-get -qq update >/dev/null
  chroot "$root" apt-get -qq clean
  rm -f "$root/etc/resolv.conf" "$root/etc/hostname"
  log "importing $IMAGE"
  tar -C "$root" --numeric-owner -c . | docker import \
    -c 'CMD ["/sbin/init"]' -c 'ENV container=docker' \
    -c "LABEL org.orion.lab-image=$RECIPE" - "$IMAGE" >/dev/null
}

build_wheelhouse() {
  # The hosts have no PyPI: the orion wheel and every dependency travel as files.
  local wh="$LAB_DIR/wheelhouse"
  rm -rf "$wh"
  mkdir -p "$wh"
  log "building wheelhouse in $wh"
  # One call builds orion and every dependency (pip's cache makes re-runs quick).
  "$PY" -m pip wheel -q -w "$wh" "$repo" >"$LAB_DIR/pip-wheel.log" 2>&1 \
    || { cat "$LAB_DIR/pip-wheel.log" >&2; exit 1; }
  ls "$wh"/orion-*.whl >/dev/null
}

net_field() { docker network inspect "$LAB_NAME" -f "$1"; }

registry_start() {  # addr
  local addr=$1 cfg="$LAB_DIR/registry.yml"
  cat >"$cfg" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $LAB_DIR/registry
  delete:
    enabled: true
http:
  addr: $addr
EOF
  mkdir -p "$LAB_DIR/registry"
  docker-registry serve "$cfg" >>"$LAB_DIR/registry.log" 2>&1 &
  echo $! >"$LAB_DIR/registry.pid"
  local i
  for i in $(seq 50); do
    if "$PY" - "$addr" <<'EOF' 2>/dev/null; then return 0; fi
import sys, urllib.request
urllib.request.urlopen(f"http://{sys.argv[1]}/v2/", timeout=1)
EOF
    sleep 0.2
  done
  log "registry on $addr did not come up"; cat "$LAB_DIR/registry.log" >&2; exit 1
}

registry_stop() {
  [ -f "$LAB_DIR/registry.pid" ] || return 0
  local pid
  pid=$(cat "$LAB_DIR/registry.pid")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  rm -f "$LAB_DIR/registry.pid"
}

start_registry() {  # gateway
  local gw=$1
  if ! command -v docker-registry >/dev/null; then
    log "installing Debian's docker-registry"
    # Keep the package's own service from starting (on all addresses) at install time.
    local prc=/usr/sbin/policy-rc.d made=""
    if [ ! -e $prc ]; then printf '#!/bin/sh\nexit 101\n' >$prc; chmod 755 $prc; made=1; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-registry >/dev/null \
      || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-registry >/dev/null; }
    [ -n "$made" ] && rm -f $prc
  fi
  # The engine trusts plain-HTTP registries only on loopback, the hosts reach only
  # the gateway: push through a loopback instance, then serve the same storage on the gateway.
  if ! docker image inspect "$TASK_IMAGE" >/dev/null 2>&1; then
    "$repo/scripts/build-test-image.sh" "$TASK_IMAGE"
  fi
  registry_start "127.0.0.1:$REGISTRY_PORT"
  docker tag "$TASK_IMAGE" "127.0.0.1:$REGISTRY_PORT/$TASK_IMAGE"
  docker push -q "127.0.0.1:$REGISTRY_PORT/$TASK_IMAGE" >/dev/null
  docker rmi "127.0.0.1:$REGISTRY_PORT/$TASK_IMAGE" >/dev/null
  registry_stop
  registry_start "$gw:$REGISTRY_PORT"
  log "registry serving $gw:$REGISTRY_PORT/$TASK_IMAGE"
}

egress_guard() {  # add|del subnet
  local op=$1 subnet=$2 c="$LAB_NAME egress guard"
  command -v iptables >/dev/null || { log "no iptables on the controller: egress guard skipped"; return 0; }
  iptables -n -L DOCKER-USER >/dev/null 2>&1 || { log "no DOCKER-USER chain: egress guard skipped"; return 0; }
  # Docker's embedded DNS forwards from inside each container's namespace, so
  # the controller's resolvers must stay reachable (port 53 only).
  local ns rules=() r
  rules+=("! -d $subnet -p tcp --dport 80")
  for ns in $(awk '/^nameserver/ {print $2}' /etc/resolv.conf | grep -v ':'); do
    rules+=("-d $ns -p udp --dport 53" "-d $ns -p tcp --dport 53")
  done
  if [ "$op" = add ]; then
    iptables -I DOCKER-USER -s "$subnet" ! -d "$subnet" -m comment --comment "$c" -j DROP
    for r in "${rules[@]}"; do
      # shellcheck disable=SC2086
      iptables -I DOCKER-USER -s "$subnet" $r -m comment --comment "$c" -j RETURN
    done
  else
    # Delete by comment: whatever the rules were when the lab came up.
    local line
    while line=$(iptables -S DOCKER-USER | grep -F -- "--comment \"$c\"" | head -1) && [ -n "$line" ]; do
      eval "iptables ${line/-A /-D }"
    done
  fi
}

ssh_ok() {  # ip
  ssh -i "$LAB_DIR/id_ed25519" -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
    -o ConnectTimeout=2 -o LogLevel=ERROR "root@$1" true 2>/dev/null
}

up() {
  if docker network inspect "$LAB_NAME" >/dev/null 2>&1; then
    log "lab $LAB_NAME already up (run down first)"; exit 1
  fi
  build_image
  mkdir -p "$LAB_DIR" "$CACHE_DIR"
  build_wheelhouse
  docker network create --label "$LABEL" "$LAB_NAME" >/dev/null
  local subnet gw
  subnet=$(net_field '{{(index .IPAM.Config 0).Subnet}}')
  gw=$(net_field '{{(index .IPAM.Config 0).Gateway}}')
  echo "$subnet" >"$LAB_DIR/subnet"
  egress_guard add "$subnet"
  rm -f "$LAB_DIR/id_ed25519" "$LAB_DIR/id_ed25519.pub"
  ssh-keygen -q -t ed25519 -N '' -C "$LAB_NAME" -f "$LAB_DIR/id_ed25519"
  start_registry "$gw"
  local i name
  for i in $(seq "$HOSTS"); do
    name="$LAB_NAME-$i"
    mkdir -p "$CACHE_DIR/apt-$i/partial"
    docker run -d --name "$name" --hostname "orion-$i" --network "$LAB_NAME" --label "$LABEL" \
      --cap-add ALL --cap-drop SYS_RESOURCE \
      --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
      --cgroupns=host -v /sys/fs/cgroup:/sys/fs/cgroup:rw --tmpfs /run --tmpfs /run/lock \
      -v /var/lib/docker -v "$CACHE_DIR/apt-$i:/var/cache/apt/archives" \
      --stop-signal SIGRTMIN+3 "$IMAGE" >/dev/null
  done
  local inv="$LAB_DIR/inventory.yml" ip hosts_json="" pub
  pub=$(cat "$LAB_DIR/id_ed25519.pub")
  {
    echo "# Written by tests/fleet/lab.sh up: the lab's hosts, reachable only from this machine."
    echo "all:"
    echo "  vars:"
    echo "    ansible_user: root"
    echo "    ansible_ssh_private_key_file: $LAB_DIR/id_ed25519"
    echo "    ansible_ssh_common_args: -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"
    echo "    ansible_python_interpreter: /usr/bin/python3"
    echo "    docker_engine_insecure_registries: ['$gw:$REGISTRY_PORT']"
    echo "    orion_wheel_dir: $LAB_DIR/wheelhouse"
    echo "    orion_wheelhouse: true"
    echo "    orion_firewall_manage: true"
    echo "    orion_firewall_sources: ['$subnet']"
    echo "    orion_raft_secret: $(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')"
    echo "  children:"
    echo "    orion_servers:"
    echo "      hosts:"
  } >"$inv"
  for i in $(seq "$HOSTS"); do
    name="$LAB_NAME-$i"
    ip=$(docker inspect -f "{{(index .NetworkSettings.Networks \"$LAB_NAME\").IPAddress}}" "$name")
    docker exec "$name" sh -c "umask 077; echo '$pub' > /root/.ssh/authorized_keys"
    {
      echo "        orion-$i:"
      echo "          ansible_host: $ip"
      echo "          orion_node_id: orion-$i"
      echo "          orion_bind_address: $ip"
      echo "          orion_advertise_address: $ip"
    } >>"$inv"
    hosts_json+="${hosts_json:+,}{\"name\":\"orion-$i\",\"container\":\"$name\",\"ip\":\"$ip\"}"
  done
  for i in $(seq "$HOSTS"); do
    ip=$(docker inspect -f "{{(index .NetworkSettings.Networks \"$LAB_NAME\").IPAddress}}" "$LAB_NAME-$i")
    for _ in $(seq 100); do ssh_ok "$ip" && break; sleep 0.3; done
    ssh_ok "$ip" || { log "no ssh on $LAB_NAME-$i ($ip)"; docker logs "$LAB_NAME-$i" 2>&1 | tail -20 >&2; exit 1; }
  done
  cat >"$LAB_DIR/lab.json" <<EOF
{"name":"$LAB_NAME","dir":"$LAB_DIR","inventory":"$inv","subnet":"$subnet","gateway":"$gw",
 "registry":"$gw:$REGISTRY_PORT","task_image":"$gw:$REGISTRY_PORT/$TASK_IMAGE",
 "key":"$LAB_DIR/id_ed25519","docker_host":"$DOCKER_HOST","hosts":[$hosts_json]}
EOF
  log "up: $HOSTS hosts, inventory $inv"
}

down() {
  local ids subnet=""
  ids=$(docker ps -aq --filter "label=$LABEL")
  [ -n "$ids" ] && docker rm -f -v $ids >/dev/null
  [ -f "$LAB_DIR/subnet" ] && subnet=$(cat "$LAB_DIR/subnet")
  if [ -z "$subnet" ] && docker network inspect "$LAB_NAME" >/dev/null 2>&1; then
    subnet=$(net_field '{{(index .IPAM.Config 0).Subnet}}')
  fi
  [ -n "$subnet" ] && egress_guard del "$subnet"
  docker network rm "$LAB_NAME" >/dev/null 2>&1 || true
  registry_stop
  rm -rf "$LAB_DIR"
  log "down: $LAB_NAME removed"
}

purge() {
  down
  docker rmi "$IMAGE" >/dev/null 2>&1 || true
  rm -rf "$CACHE_DIR"
  log "purged caches"
}

status() {
  [ -f "$LAB_DIR/lab.json" ] || { log "lab $LAB_NAME is not up"; exit 1; }
  cat "$LAB_DIR/lab.json"
  docker ps --filter "label=$LABEL" --format '{{.Names}}\t{{.Status}}'
}

case "${1:-}" in
  image) build_image ;;
  wheelhouse) mkdir -p "$LAB_DIR"; build_wheelhouse ;;
  up) up ;;
  down) down ;;
  purge) purge ;;
  status) status ;;
  *) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 2 ;;
esac
