#!/usr/bin/env bash
# Fresh machine -> a container running under wharfd:
# builds wharf, starts wharfd on unix:///run/wharf.sock (unless one answers there already),
# makes a `busybox` image from the host's busybox-static (installed when missing), and runs a
# container from it with the `wharf` client.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/wharf-target}
sock=${WHARF_SOCK:-/run/wharf.sock}
host="unix://$sock"

need=()
[ -x /bin/busybox ] && file -L /bin/busybox 2>/dev/null | grep -q static || need+=(busybox-static file)
command -v iptables >/dev/null || need+=(iptables)
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

cargo build --release -p wharfd -p wharf-shim -p wharf-cli -p wharf-runtime
bin="$CARGO_TARGET_DIR/release"
wharf() { "$bin/wharf" -H "$host" "$@"; }

if ! wharf version >/dev/null 2>&1; then
    echo "starting wharfd on $host (log: /var/log/wharfd.log)"
    nohup "$bin/wharfd" -H "$host" >>/var/log/wharfd.log 2>&1 &
    for _ in $(seq 100); do wharf version >/dev/null 2>&1 && break; sleep 0.05; done
fi

scripts/mkbusybox-rootfs.sh | wharf import - busybox:latest >/dev/null
wharf run --rm busybox echo "hello from a wharf container"
echo "wharfd is running: try  $bin/wharf -H $host run -it busybox sh   (or docker -H $host ...)"
