#!/usr/bin/env bash
# Build Orion's local demo/test image without any registry: a rootfs holding
# Debian's static busybox, imported with `docker import`. The image serves
# HTTP with busybox httpd, so a task's port binding can be checked for real.
#
# Usage: scripts/build-test-image.sh [TAG]   (default orion/busybox:latest)
# Needs: busybox-static (apt-get install busybox-static), a reachable engine
# (DOCKER_HOST honoured).
set -euo pipefail
tag="${1:-orion/busybox:latest}"
bb=/bin/busybox
if ! [ -x "$bb" ] || ldd "$bb" >/dev/null 2>&1; then
  echo "build-test-image: need Debian's static busybox: apt-get install -y busybox-static" >&2
  exit 1
fi
if docker image inspect "$tag" >/dev/null 2>&1; then
  echo "build-test-image: $tag already present"
  exit 0
fi
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,sbin,etc,www,tmp,proc,sys,dev}
cp "$bb" "$root/bin/busybox"
for app in $("$bb" --list); do
  [ "$app" = busybox ] || ln -sf /bin/busybox "$root/bin/$app"
done
echo 'root:x:0:0:root:/root:/bin/sh' > "$root/etc/passwd"
echo 'root:x:0:' > "$root/etc/group"
echo 'hello from orion' > "$root/www/index.html"
chmod 1777 "$root/tmp"
tar -C "$root" -c . | docker import \
  -c 'CMD ["/bin/httpd", "-f", "-p", "80", "-h", "/www"]' \
  -c 'EXPOSE 80/tcp' - "$tag" >/dev/null
echo "build-test-image: built $tag"
