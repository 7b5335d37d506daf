#!/usr/bin/env bash
# Pull of an image of ~100 MB in 5 layers (random content, nothing cached) from a local
# registry (Debian's docker-registry on loopback): wharfd against dockerd (Debian docker.io,
# started here on its own socket and data-root) in the same hyperfine run, and `skopeo copy`
# to an OCI layout as the copy-only reference. Then wharfd's peak RSS during a pull (VmHWM,
# reset through /proc/<pid>/clear_refs just before it) of images of ~100 MB with layers of
# 2, 20 and 100 MB: it should not grow with the layer size.
#   sudo bench/pull.sh [runs]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/wharf-target}
cargo build -q --release -p wharfd -p wharf-shim
bin=$CARGO_TARGET_DIR/release
for t in docker-registry skopeo hyperfine dockerd; do
    command -v $t >/dev/null || { echo "bench/pull.sh: needs $t" >&2; exit 1; }
done
work=$(mktemp -d /tmp/wharf-bench-pull-XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
reg=127.0.0.1:$port
W="docker -H unix://$work/w.sock"
K="docker -H unix://$work/d.sock"
cleanup() {
    [ -n "${wpid:-}" ] && kill "$wpid" 2>/dev/null && wait "$wpid" 2>/dev/null || true
    [ -n "${dpid:-}" ] && kill "$dpid" 2>/dev/null && wait "$dpid" 2>/dev/null || true
    [ -n "${rpid:-}" ] && kill "$rpid" 2>/dev/null && wait "$rpid" 2>/dev/null || true
    grep -o "$work[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    for h in /sys/fs/cgroup/*/wbpull-$$; do rmdir "$h" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

cat >"$work/reg.yml" <<YML
version: 0.1
storage:
  filesystem:
    rootdirectory: $work/reg
http:
  addr: $reg
log:
  level: error
YML
docker-registry serve "$work/reg.yml" >"$work/reg.log" 2>&1 &
rpid=$!
"$bin/wharfd" -H "unix://$work/w.sock" --data-root "$work/wdata" --exec-root "$work/wexec" \
    --config-file /nonexistent --cgroup-parent /wbpull-$$ --bridge none 2>"$work/wharfd.log" &
wpid=$!
echo '{}' >"$work/daemon.json"
dockerd -H "unix://$work/d.sock" --data-root "$work/ddata" --exec-root "$work/dexec" \
    --pidfile "$work/d.pid" --bridge none --iptables=false --ip6tables=false \
    --config-file "$work/daemon.json" 2>"$work/dockerd.log" &
dpid=$!
for _ in $(seq 300); do $W version >/dev/null 2>&1 && $K version >/dev/null 2>&1 && break; sleep 0.1; done

# mkimage NAME COUNT BYTES: busybox plus COUNT layers of BYTES random bytes, pushed through
# wharfd as $reg/bench/NAME:1 and removed locally (with what it shares with busybox).
scripts/mkbusybox-rootfs.sh >"$work/busybox.tar"
mkimage() {
    $W import - busybox <"$work/busybox.tar" >/dev/null
    local img=busybox i
    for i in $(seq "$2"); do
        $W rm -f lay >/dev/null 2>&1 || true
        $W run --name lay --network none "$img" sh -c "head -c $3 /dev/urandom > /layer$i" >/dev/null
        $W commit lay "bench-$1:$i" >/dev/null
        img=bench-$1:$i
    done
    $W tag "$img" "$reg/bench/$1:1"
    $W push "$reg/bench/$1:1" >/dev/null
    $W rm -f lay >/dev/null
    $W rmi -f "$reg/bench/$1:1" $(for i in $(seq "$2"); do echo "bench-$1:$i"; done) busybox >/dev/null
}
# The benchmark's image: 5 layers of 20 MB.
mkimage big 5 20000000
size=$(du -sb "$work/reg/docker/registry/v2/blobs" | cut -f1)
# For the memory check: the same volume in 50 layers of 2 MB, and in one layer of 100 MB.
mkimage small 50 2000000
mkimage huge 1 100000000

json=$work/h.json
hyperfine -N -w 1 -r "$runs" --export-json "$json" \
    --prepare "sh -c '$W rmi -f $reg/bench/big:1 >/dev/null 2>&1; true'" \
    -n wharfd "$W pull -q $reg/bench/big:1" \
    --prepare "sh -c '$K rmi -f $reg/bench/big:1 >/dev/null 2>&1; true'" \
    -n dockerd "$K pull -q $reg/bench/big:1" \
    --prepare "rm -rf $work/oci" \
    -n "skopeo copy (no unpack)" "skopeo copy -q --src-tls-verify=false docker://$reg/bench/big:1 oci:$work/oci:x" \
    >/dev/null
peak=$(awk '/VmHWM/{print $2}' /proc/$wpid/status)
# Peak RSS of wharfd during one pull (KiB): the high-water mark reset just before it.
pull_peak() {
    $W rmi -f "$reg/bench/$1:1" >/dev/null 2>&1 || true
    echo 5 >/proc/$wpid/clear_refs
    local before=$(awk '/VmRSS/{print $2}' /proc/$wpid/status)
    $W pull -q "$reg/bench/$1:1" >/dev/null
    echo "$before $(awk '/VmHWM/{print $2}' /proc/$wpid/status)"
}
mem=""
for img in small big huge; do
    for _ in 1 2 3; do mem="$mem $img $(pull_peak $img)"; done
done
python3 - "$json" "$size" "$peak" $mem <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
size, peak = int(sys.argv[2]), int(sys.argv[3])
mem = sys.argv[4:]
w = r["wharfd"]["median"]
print(f"image: {size/1e6:.0f} MB in the registry")
print(f"{'what':<26}{'median s':>10}{'MB/s':>8}{'wharfd/x':>10}")
for n in ["wharfd", "dockerd", "skopeo copy (no unpack)"]:
    m = r[n]["median"]
    print(f"{n:<26}{m:>10.2f}{size/1e6/m:>8.0f}{w/m:>10.2f}")
print(f"wharfd peak RSS (VmHWM) over the whole run: {peak/1024:.1f} MiB")
print("wharfd RSS during one pull of ~100 MB (3 pulls each; MiB):")
print(f"{'layers':<18}{'RSS before':>12}{'peak (max)':>12}{'peak - before':>15}")
for img, what in [("small", "50 x 2 MB"), ("big", "5 x 20 MB"), ("huge", "1 x 100 MB")]:
    rows = [(int(mem[i + 1]), int(mem[i + 2])) for i in range(0, len(mem), 3) if mem[i] == img]
    before = max(b for b, _ in rows)
    top = max(p for _, p in rows)
    grow = max(p - b for b, p in rows)
    print(f"{what:<18}{before/1024:>12.1f}{top/1024:>12.1f}{grow/1024:>15.1f}")
PY
