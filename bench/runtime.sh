#!/usr/bin/env bash
# OCI runtime lifecycle benchmark: `run` (= create + start + wait + delete) of `true` in a
# busybox bundle, wharf-runtime against runc and crun, in one hyperfine run. Prints median
# times and ratios; `--markdown FILE` also writes hyperfine's table.
#
# crun 1.8 refuses hybrid cgroup hosts (v1 + /sys/fs/cgroup/unified), so all three run in one
# private mount namespace with the unified mount detached: the same layout for each.
#   sudo bench/runtime.sh [--runs N]
set -euo pipefail
runs=200
md=""
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) runs=$2; shift 2 ;;
        --markdown) md=$2; shift 2 ;;
        *) echo "usage: $0 [--runs N] [--markdown FILE]" >&2; exit 2 ;;
    esac
done
here=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/wharf-target}
cargo build -q --release -p wharf-runtime --manifest-path "$here/Cargo.toml"
wr=$CARGO_TARGET_DIR/release/wharf-runtime
for t in runc crun hyperfine; do
    command -v $t >/dev/null || { echo "bench/runtime.sh: needs $t (apt-get install $t)" >&2; exit 1; }
done
work=$(mktemp -d /tmp/wharf-bench-rt.XXXXXX)
cg=/wharf-bench-rt-$$
cleanup() {
    for r in "$wr" runc crun; do
        for id in bw br bc; do "$r" --root "$work/root-$(basename "$r")" delete -f "$id" >/dev/null 2>&1 || true; done
    done
    for d in /sys/fs/cgroup/*/"$cg" /sys/fs/cgroup/*/"$cg"/* ; do [ -d "$d" ] && rmdir "$d" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/bundle/rootfs"
"$here/scripts/mkbusybox-rootfs.sh" | tar -C "$work/bundle/rootfs" -x
(cd "$work/bundle" && "$wr" spec)
python3 - "$work/bundle/config.json" "$cg" <<'PY'
import json, sys
p, cg = sys.argv[1], sys.argv[2]
c = json.load(open(p))
c["process"]["terminal"] = False
c["process"]["args"] = ["true"]
c["linux"]["cgroupsPath"] = cg + "/x"
json.dump(c, open(p, "w"), indent=1)
PY
json=$work/result.json
unshare -m --propagation private sh -c "
    umount /sys/fs/cgroup/unified 2>/dev/null || true
    hyperfine -N -w 10 -r $runs --export-json '$json' ${md:+--export-markdown '$md'} \
        -n wharf-runtime '$wr --root $work/root-wr run -b $work/bundle bw' \
        -n runc 'runc --root $work/root-runc run -b $work/bundle br' \
        -n crun 'crun --root $work/root-crun run -b $work/bundle bc'
" >/dev/null
python3 - "$json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
w = r["wharf-runtime"]["median"]
print(f"{'runtime':<14}{'median ms':>10}{'mean ms':>10}{'stddev':>8}{'vs wharf':>10}")
for name in ["wharf-runtime", "runc", "crun"]:
    x = r[name]
    print(f"{name:<14}{x['median']*1e3:>10.2f}{x['mean']*1e3:>10.2f}{x['stddev']*1e3:>8.2f}{x['median']/w:>9.2f}x")
PY
