#!/usr/bin/env bash
# Debian packages the test suite drives for real: debootstrap and ssh (the fleet lab),
# systemd-analyze (unit checks), iptables and iproute2 (partitions), openssl (TLS tests), tmux (orion top's
# screen), nftables, iputils' ping (don't-fragment probes) and iperf3 (the overlay lab and its benchmark). Idempotent; as root
# on Debian installs what is missing, elsewhere says what to install.
set -euo pipefail
need=()
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v ssh >/dev/null || need+=(openssh-client)
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v iptables >/dev/null || need+=(iptables)
command -v ip >/dev/null || need+=(iproute2)
command -v curl >/dev/null || need+=(curl)
command -v openssl >/dev/null || need+=(openssl)  # the TLS tests make a throwaway CA
command -v tmux >/dev/null || need+=(tmux)
command -v nft >/dev/null || need+=(nftables)
ping -V >/dev/null 2>&1 || need+=(iputils-ping)  # busybox's ping has no -M do
command -v iperf3 >/dev/null || need+=(iperf3)
command -v docker-registry >/dev/null || [ -x /usr/bin/docker-registry ] || need+=(docker-registry)
[ ${#need[@]} -eq 0 ] && { echo "ensure-test-tools: all present"; exit 0; }
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "ensure-test-tools: missing ${need[*]}; install them (apt-get install -y ${need[*]})" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1 \
  || { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; }
echo "ensure-test-tools: installed ${need[*]}"
