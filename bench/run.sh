#!/usr/bin/env bash
# `docker run --rm busybox true` through wharfd with `--network none` and with the default
# bridge, against the floors (bare wharf-runtime and runc runs of the same rootfs) and, when
# dockerd is installed (Debian's docker.io), against a dockerd this script starts on its own
# socket, data-root and bridge (both network modes again), all in the same hyperfine run.
# Also: idle RSS of wharfd against dockerd + containerd, and of one container's wharf-shim
# against containerd-shim-runc-v2.
#   bench/run.sh [runs]      (root; prints a markdown table)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-30}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/wharf-target}
cargo build -q --release -p wharfd -p wharf-shim -p wharf-runtime
bin=$CARGO_TARGET_DIR/release
work=$(mktemp -d /tmp/wharf-bench-XXXXXX)
sock=$work/d.sock
cg=/$(basename "$work")
D="docker -H unix://$sock"
cleanup() {
    $D rm -f $($D ps -aq 2>/dev/null) >/dev/null 2>&1 || true
    [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    find /sys/fs/cgroup/*"$cg" -depth -type d 2>/dev/null | xargs -r rmdir 2>/dev/null || true
    runc --root "$work/runc" delete --force bench-floor >/dev/null 2>&1 || true
    "$bin/wharf-runtime" --root "$work/wr" delete --force bench-floor >/dev/null 2>&1 || true
    if [ -n "${dpid:-}" ]; then
        docker -H "unix://$work/docker.sock" rm -f $(docker -H "unix://$work/docker.sock" ps -aq 2>/dev/null) >/dev/null 2>&1 || true
        kill "$dpid" 2>/dev/null && wait "$dpid" 2>/dev/null || true
    fi
    [ -n "${dbr:-}" ] && ip link del "$dbr" 2>/dev/null || true
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
(cd "$work/bundle" && runc spec && CG="$cg" python3 - <<'PY'
import json, os
c = json.load(open("config.json"))
c["process"]["terminal"] = False
c["process"]["args"] = ["true"]
# Under the benchmark's own cgroup parent, removed at exit.
c["linux"]["cgroupsPath"] = os.environ["CG"] + "/floor"
json.dump(c, open("config.json", "w"))
PY
)

$D run --rm busybox true
cmds=("$D run --rm --network none busybox true" "runc --root $work/runc run -b $work/bundle bench-floor"
      "$bin/wharf-runtime --root $work/wr run -b $work/bundle bench-floor" "$D run --rm busybox true"
      "$D run --rm --network none --security-opt seccomp=unconfined busybox true")
names=("wharfd --network none (docker CLI)" "bare runc run" "bare wharf-runtime run" "wharfd default bridge (docker CLI)"
       "wharfd --network none, seccomp=unconfined")
if command -v dockerd >/dev/null 2>&1; then
    # dockerd and the containerd it manages, on their own socket, data-root and exec-root.
    # Its default bridge is one made here with a unique name (`-b`), so it never touches
    # docker0 or another engineer's bridge; `--iptables=false` because dockerd's chains
    # (DOCKER, DOCKER-ISOLATION-STAGE-*) have global names that another dockerd on the host
    # may own. Without published ports dockerd adds no rule per container anyway, so its
    # per-container bridge cost (veth pair, IPAM, sandbox) is all there.
    dbr=wd$(printf '%04x' $RANDOM)
    ip link add "$dbr" type bridge
    ip addr add 10.214.$((RANDOM % 250)).1/24 dev "$dbr"
    ip link set "$dbr" up
    echo '{}' >"$work/daemon.json"
    dockerd -H "unix://$work/docker.sock" --data-root "$work/docker-data" --exec-root "$work/docker-exec" \
        --pidfile "$work/docker.pid" -b "$dbr" --iptables=false --ip6tables=false \
        --config-file "$work/daemon.json" 2>"$work/dockerd.log" &
    dpid=$!
    for _ in $(seq 300); do docker -H "unix://$work/docker.sock" version >/dev/null 2>&1 && break; sleep 0.1; done
    docker -H "unix://$work/docker.sock" import "$work/rootfs.tar" busybox >/dev/null
    docker -H "unix://$work/docker.sock" run --rm --network none busybox true
    docker -H "unix://$work/docker.sock" run --rm busybox true
    cmds+=("docker -H unix://$work/docker.sock run --rm --network none busybox true"
           "docker -H unix://$work/docker.sock run --rm busybox true")
    names+=("dockerd --network none (docker CLI)" "dockerd default bridge (docker CLI)")
fi
hyperfine -N --warmup 3 --runs "$runs" --export-json "$work/h.json" "${cmds[@]}" >/dev/null
# The bridge's cost as paired differences: `--network none` and bridge runs alternate, so a
# burst of load from other work on the machine hits both of a pair (hyperfine runs each
# command's runs back to back).
python3 - "$work/pairs.json" "$runs" "$D" ${dpid:+"docker -H unix://$work/docker.sock"} <<'PY'
import json, statistics, subprocess, sys, time
out, runs, clis = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
def once(cli, extra):
    t = time.perf_counter()
    subprocess.run(cli.split() + ["run", "--rm"] + extra + ["busybox", "true"], check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - t
res = {}
for cli in clis:
    d = [once(cli, []) - once(cli, ["--network", "none"]) for _ in range(runs)]
    res[cli] = statistics.median(d)
# The default seccomp profile's cost on wharfd's start path, paired the same way.
none = ["--network", "none"]
sec = [once(clis[0], none) - once(clis[0], none + ["--security-opt", "seccomp=unconfined"])
       for _ in range(runs)]
json.dump({"n": runs, "costs": list(res.values()), "seccomp": statistics.median(sec)},
          open(out, "w"))
PY

idle=$(awk '/VmRSS/{print $2}' /proc/$pid/status)
$D run -d --name rss --network none busybox sleep 60 >/dev/null
sleep 1 # steady state: the shim has released its setup pages
shim=$(cat "$work"/exec/containers/*/shim.pid)
shim_rss=$(awk '/VmRSS/{print $2}' /proc/$shim/status)
shim_pss=$(awk '/^Pss:/{print $2}' /proc/$shim/smaps_rollup)
busy=$(awk '/VmRSS/{print $2}' /proc/$pid/status)
docker_rss=0; ctrd_rss=0; cshim_rss=0
if [ -n "${dpid:-}" ]; then
    docker_rss=$(awk '/VmRSS/{print $2}' /proc/$dpid/status)
    ctrd=$(pgrep -P "$dpid" -x containerd | head -1 || true)
    [ -n "$ctrd" ] && ctrd_rss=$(awk '/VmRSS/{print $2}' /proc/$ctrd/status)
    docker -H "unix://$work/docker.sock" run -d --network none busybox sleep 60 >/dev/null
    cs=$(for p in $(pgrep -x containerd-shim-runc-v2 || true); do grep -q "$work" /proc/$p/cmdline 2>/dev/null && echo $p; done | head -1)
    [ -z "$cs" ] && cs=$(pgrep -f "containerd-shim-runc-v2.*$(basename "$work")" | head -1 || true)
    [ -n "$cs" ] && cshim_rss=$(awk '/VmRSS/{print $2}' /proc/$cs/status)
fi

python3 - "$work/h.json" "$work/pairs.json" "$idle" "$busy" "$shim_rss" "$shim_pss" "$docker_rss" "$ctrd_rss" "$cshim_rss" "${names[@]}" <<'PY'
import json, sys
h = json.load(open(sys.argv[1]))["results"]
pairs = json.load(open(sys.argv[2]))
npairs, seccomp, pairs = pairs["n"], pairs["seccomp"], pairs["costs"]
idle, busy, shim, shim_pss, drss, crss, cshim = (int(x) for x in sys.argv[3:10])
names = sys.argv[10:]
floor = h[1]["median"]
print("| what | median | mean ± σ | × bare runc |")
print("|---|---|---|---|")
for n, r in zip(names, h):
    print(f"| {n} | {r['median']*1000:.1f} ms | {r['mean']*1000:.1f} ± {r['stddev']*1000:.1f} ms | {r['median']/floor:.2f} |")
print()
print(f"wharfd RSS idle: {idle/1024:.1f} MiB; with one container: {busy/1024:.1f} MiB; one wharf-shim: {shim/1024:.2f} MiB RSS, {shim_pss/1024:.2f} MiB PSS")
by = {n: r["median"] for n, r in zip(names, h)}
wn, wb = by["wharfd --network none (docker CLI)"], by["wharfd default bridge (docker CLI)"]
print(f"wharfd bridge cost: {(wb - wn)*1000:.1f} ms (medians above), {pairs[0]*1000:.1f} ms (median of {npairs} interleaved pairs)")
wu = by["wharfd --network none, seccomp=unconfined"]
print(f"wharfd default seccomp profile cost: {(wn - wu)*1000:.2f} ms (medians above), {seccomp*1000:.2f} ms (median of {npairs} interleaved pairs)")
if drss:
    dn, db = by["dockerd --network none (docker CLI)"], by["dockerd default bridge (docker CLI)"]
    print(f"dockerd bridge cost: {(db - dn)*1000:.1f} ms (medians above), {pairs[1]*1000:.1f} ms (interleaved pairs)")
    print(f"wharfd / dockerd: --network none {wn/dn:.2f}x, default bridge {wb/db:.2f}x")
    print(f"dockerd RSS: {drss/1024:.1f} MiB + containerd {crss/1024:.1f} MiB; containerd-shim-runc-v2: {cshim/1024:.2f} MiB")
PY
