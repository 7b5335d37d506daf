# Shared setup of the benches that run wharfd beside a test dockerd (bench/compose.sh,
# bench/build.sh). Sourced after `set -euo pipefail` and `cd` to the repository:
#   bench_start PREFIX W D   builds the release binaries; makes $work (/tmp/wharf-PREFIX-XXXXXX,
#                            removed on exit with everything below); starts wharfd on $WS
#                            (bridge <P>w<rand>, 10.W.x.1/24) and a dockerd on $DS with its own
#                            bridge (10.D.x.1/24, no iptables); imports busybox into both.
# Sets bin (the release binaries), work, WS, DS. A bench's own cleanup goes in a function
# `bench_before_cleanup`, run first on exit.
bench_before_cleanup() { :; }

bench_cleanup() {
    bench_before_cleanup || true
    [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    if [ -n "${dpid:-}" ]; then
        kill "$dpid" 2>/dev/null && wait "$dpid" 2>/dev/null || true
    fi
    [ -n "${dbr:-}" ] && ip link del "$dbr" 2>/dev/null || true
    [ -n "${br:-}" ] && ip link del "$br" 2>/dev/null || true
    grep -o "$work[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    find /sys/fs/cgroup/*"$cg" -depth -type d 2>/dev/null | xargs -r rmdir 2>/dev/null || true
    rm -rf "$work"
}

bench_start() {
    local prefix=$1 wnet=$2 dnet=$3
    export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/wharf-target}
    cargo build -q --release -p wharfd -p wharf-shim -p wharf-runtime -p wharf-cli
    bin=$CARGO_TARGET_DIR/release
    work=$(mktemp -d "/tmp/wharf-$prefix-XXXXXX")
    cg=/$(basename "$work")
    WS="unix://$work/d.sock"
    DS="unix://$work/docker.sock"
    trap bench_cleanup EXIT

    br=${prefix:0:2}w$(printf '%04x' $RANDOM)
    "$bin/wharfd" -H "$WS" --data-root "$work/data" --exec-root "$work/exec" \
        --config-file /nonexistent --cgroup-parent "$cg" --bridge "$br" \
        --bip "10.$wnet.$((RANDOM % 250)).1/24" 2>"$work/wharfd.log" &
    pid=$!
    for _ in $(seq 100); do [ -S "$work/d.sock" ] && break; sleep 0.05; done
    scripts/mkbusybox-rootfs.sh >"$work/rootfs.tar"
    "$bin/wharf" -H "$WS" import "$work/rootfs.tar" busybox >/dev/null

    dbr=${prefix:0:2}d$(printf '%04x' $RANDOM)
    ip link add "$dbr" type bridge
    ip addr add "10.$dnet.$((RANDOM % 250)).1/24" dev "$dbr"
    ip link set "$dbr" up
    echo '{}' >"$work/daemon.json"
    dockerd -H "$DS" --data-root "$work/docker-data" --exec-root "$work/docker-exec" \
        --pidfile "$work/docker.pid" -b "$dbr" --iptables=false --ip6tables=false \
        --config-file "$work/daemon.json" 2>"$work/dockerd.log" &
    dpid=$!
    for _ in $(seq 300); do docker -H "$DS" version >/dev/null 2>&1 && break; sleep 0.1; done
    docker -H "$DS" import "$work/rootfs.tar" busybox >/dev/null
}
