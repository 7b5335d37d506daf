#!/usr/bin/env bash
# `docker run --rm --network none busybox true` through wharfd, against the floor (bare runc
# run of the same rootfs) and, when dockerd is installed, against dockerd in the same run.
# Also: wharfd idle RSS and the RSS of one container's shim.
#   bench/run.sh [runs]      (root; prints a markdown table)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-30}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/wharf-target}
cargo build -q --release -p wharfd -p wharf-shim
bin=$CARGO_TARGET_DIR/release
work=$(mktemp -d /tmp/wharf-bench-XXXXXX)
sock=$work/d.sock
cg=/$(basename "$work")
D="docker -H unix://$sock"
cleanup() {
    $D rm -f $($D ps -aq 2>/dev/null) >/dev/null 2>&1 || true
    [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    for h in /sys/fs/cgroup/*"$cg"; do rmdir "$h" 2>/dev/null || true; done
    runc --root "$work/runc" delete --force bench-floor >/dev/null 2>&1 || true
    if [ -n "${br:-}" ]; then
        ip link del "$br" 2>/dev/null || true
        iptables -S FORWARD | grep -- "$br" | sed 's/^-A/-D/' | xargs -r -L1 iptables 2>/dev/null || true
        iptables -t nat -S POSTROUTING | grep -- "$br" | sed 's/^-A/-t nat -D/' | xargs -r -L1 iptables 2>/dev/null || true
        # wharfd's own chains, all named after its bridge, and the jumps into them.
        for c in PREROUTING OUTPUT; do
            iptables -t nat -S $c | grep -- "$br-" | sed 's/^-A/-t nat -D/' | xargs -r -L1 iptables 2>/dev/null || true
        done
        for t in filter nat; do
            for ch in $(iptables -t $t -S | awk -v p="-N $br-" 'index($0, p) == 1 {print $2}'); do
                iptables -t $t -F "$ch" 2>/dev/null || true
            done
            for ch in $(iptables -t $t -S | awk -v p="-N $br-" 'index($0, p) == 1 {print $2}'); do
                iptables -t $t -X "$ch" 2>/dev/null || true
            done
        done
    fi
    grep -o "$work[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

br=wb$(printf '%04x' $RANDOM)
"$bin/wharfd" -H "unix://$sock" --data-root "$work/data" --exec-root "$work/exec" \
    --config-file /nonexistent --cgroup-parent "$cg" --bridge "$br" --bip 10.213.$((RANDOM % 250)).1/24 \
    2>"$work/wharfd.log" &
pid=$!
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
scripts/mkbusybox-rootfs.sh >"$work/rootfs.tar"
$D import "$work/rootfs.tar" busybox >/dev/null
$D run --rm --network none busybox true

# The floor: runc alone on the same rootfs (create+start+wait+delete of `true`).
mkdir -p "$work/bundle/rootfs"
tar -C "$work/bundle/rootfs" -xf "$work/rootfs.tar"
(cd "$work/bundle" && runc spec && python3 - <<'PY'
import json
c = json.load(open("config.json"))
c["process"]["terminal"] = False
c["process"]["args"] = ["true"]
json.dump(c, open("config.json", "w"))
PY
)

$D run --rm busybox true
cmds=("$D run --rm --network none busybox true" "runc --root $work/runc run -b $work/bundle bench-floor" "$D run --rm busybox true")
names=("wharfd --network none (docker CLI, runc)" "bare runc run" "wharfd default bridge (docker CLI, runc)")
if command -v dockerd >/dev/null 2>&1 && [ -n "${DOCKERD_SOCK:-}" ]; then
    cmds+=("docker -H unix://$DOCKERD_SOCK run --rm --network none busybox true")
    names+=("dockerd (docker CLI)")
fi
hyperfine -N --warmup 3 --runs "$runs" --export-json "$work/h.json" "${cmds[@]}" >/dev/null

idle=$(awk '/VmRSS/{print $2}' /proc/$pid/status)
$D run -d --name rss --network none busybox sleep 60 >/dev/null
shim=$(cat "$work"/exec/containers/*/shim.pid)
shim_rss=$(awk '/VmRSS/{print $2}' /proc/$shim/status)
shim_pss=$(awk '/^Pss:/{print $2}' /proc/$shim/smaps_rollup)
busy=$(awk '/VmRSS/{print $2}' /proc/$pid/status)

python3 - "$work/h.json" "$idle" "$busy" "$shim_rss" "$shim_pss" "${names[@]}" <<'PY'
import json, sys
h = json.load(open(sys.argv[1]))["results"]
idle, busy, shim, shim_pss = (int(x) for x in sys.argv[2:6])
names = sys.argv[6:]
floor = h[1]["median"]
print("| what | median | mean ± σ | × bare runc |")
print("|---|---|---|---|")
for n, r in zip(names, h):
    print(f"| {n} | {r['median']*1000:.1f} ms | {r['mean']*1000:.1f} ± {r['stddev']*1000:.1f} ms | {r['median']/floor:.2f} |")
print()
print(f"wharfd RSS idle: {idle/1024:.1f} MiB; with one container: {busy/1024:.1f} MiB; one wharf-shim: {shim/1024:.2f} MiB RSS, {shim_pss/1024:.2f} MiB PSS")
PY
