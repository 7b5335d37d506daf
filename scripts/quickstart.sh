#!/usr/bin/env bash
# Fresh machine -> a container running under wharfd:
# builds wharf, starts wharfd on unix:///run/wharf.sock (unless one answers there already),
# makes a `busybox` image from the host's busybox-static, and runs a container from it.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/wharf-target}
sock=${WHARF_SOCK:-/run/wharf.sock}
host="unix://$sock"

command -v busybox >/dev/null && file -L "$(command -v busybox)" | grep -q static \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static file; }

cargo build --release --bins
bin="$CARGO_TARGET_DIR/release"

if ! "$bin/wharf" -H "$host" version >/dev/null 2>&1; then
    echo "starting wharfd on $host (log: /var/log/wharfd.log)"
    nohup "$bin/wharfd" -H "$host" >>/var/log/wharfd.log 2>&1 &
    for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
fi

scripts/mkbusybox-rootfs.sh | "$bin/wharf" -H "$host" import - busybox:latest >/dev/null
"$bin/wharf" -H "$host" run --rm busybox echo "hello from a wharf container"
echo "wharfd is running: try  $bin/wharf -H $host run -it busybox sh   (or: docker -H $host ...)"
