#!/usr/bin/env bash
# Dockerfile builds, side by side in one run: wharfd (the docker CLI 28 with
# DOCKER_BUILDKIT=0 against it, and wharf's own CLI against it), dockerd 20.10's classic builder (DOCKER_BUILDKIT=0),
# dockerd 20.10's BuildKit (Debian's docker CLI 20.10 at /usr/bin/docker, DOCKER_BUILDKIT=1)
# and buildah (with runc: crun 1.8 refuses this host's hybrid cgroups), on
#   (a) a cold (--no-cache) build of a 3-stage Dockerfile,
#   (b) a fully cached rebuild with a 100 MB / 10,000-file context,
#   (c) the same rebuild after one source file changed,
#   (d) 8 independent stages each `RUN sleep 2`, and a last stage copying from each.
# Every builder runs with --network none (the builders are measured, not their networks).
# Medians and ratios to BuildKit and to the classic builder, as a markdown table.
#   bench/build.sh [runs]      (root)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
. bench/lib.sh
bench_before_cleanup() { [ -z "${BA:-}" ] || $BA rm --all >/dev/null 2>&1 || true; }
bench_start bbench 215 216
BA="buildah --root $work/buildah --runroot $work/buildah-run --storage-driver overlay"
W="docker -H $WS"
$W save busybox -o "$work/busybox.tar"
$BA pull -q "docker-archive:$work/busybox.tar" >/dev/null
$BA tag "$($BA images -q | head -1)" busybox

# The contexts.
mkdir -p "$work/three/src" "$work/big/big" "$work/big/src" "$work/eight"
echo 'hello' >"$work/three/src/main.txt"
cat >"$work/three/Dockerfile" <<'EOF'
FROM busybox AS a
RUN echo a > /a
COPY src/ /src/
FROM busybox AS b
RUN echo b > /b
FROM busybox
COPY --from=a /a /src /out/
COPY --from=b /b /out/
RUN cat /out/a /out/b > /out/ab
CMD ["cat", "/out/ab"]
EOF
python3 - "$work/big/big" <<'PY'
import os, sys
d = sys.argv[1]
for i in range(10000):
    sub = os.path.join(d, f"d{i // 100:03d}")
    os.makedirs(sub, exist_ok=True)
    with open(os.path.join(sub, f"f{i:05d}"), "wb") as f:
        f.write(os.urandom(10000))
PY
for i in $(seq 10); do echo "source $i" >"$work/big/src/s$i.txt"; done
cat >"$work/big/Dockerfile" <<'EOF'
FROM busybox
COPY big/ /big/
COPY src/ /src/
RUN cat /src/* | wc -c > /size
EOF
{
    for i in $(seq 8); do printf 'FROM busybox AS s%d\nRUN sleep 2 && echo %d > /r%d\n' "$i" "$i" "$i"; done
    echo 'FROM busybox'
    for i in $(seq 8); do printf 'COPY --from=s%d /r%d /\n' "$i" "$i"; done
} >"$work/eight/Dockerfile"

wharf_b() { echo "env DOCKER_BUILDKIT=0 docker -H $WS build -q --network none $*"; }
wcli_b() { echo "$bin/wharf -H $WS build -q --network none $*"; }
classic_b() { echo "env DOCKER_BUILDKIT=0 docker -H $DS build -q --network none $*"; }
kit_b() { echo "env DOCKER_BUILDKIT=1 /usr/bin/docker -H $DS build -q --network none $*"; }
buildah_b() { echo "$BA build -q --runtime runc --network none --layers $*"; }

results=()
bench() { # name runs prepare cmd...
    local name=$1 n=$2 prep=$3
    shift 3
    # Each command once first, so that a failure shows its output.
    for c in "$@"; do
        if ! out=$($c 2>&1); then
            echo "failed: $c" >&2
            echo "$out" >&2
            exit 1
        fi
    done
    if ! hyperfine -N --runs "$n" --warmup 1 --prepare "$prep" --export-json "$work/$name.json" "$@" >/dev/null; then
        # hyperfine does not say which one failed: each once more, its output shown.
        echo "($name) failed; once more each:" >&2
        for c in "$@"; do
            $c >"$work/out" 2>&1 || { echo "failed: $c" >&2; tail -20 "$work/out" >&2; }
        done
        exit 1
    fi
    results+=("$name")
}
# (a) cold 3-stage builds.
bench a "$runs" "true" \
    "$(wharf_b --no-cache -t t3 "$work/three")" "$(classic_b --no-cache -t t3 "$work/three")" \
    "$(kit_b --no-cache -t t3 "$work/three")" "$(buildah_b --no-cache -t t3 "$work/three")" \
    "$(wcli_b --no-cache -t t3 "$work/three")"
# (b) no-op rebuilds of the big context (the warmup run fills each cache).
bench b "$runs" "true" \
    "$(wharf_b -t big "$work/big")" "$(classic_b -t big "$work/big")" \
    "$(kit_b -t big "$work/big")" "$(buildah_b -t big "$work/big")" \
    "$(wcli_b -t big "$work/big")"
# (c) one source file changed before each run.
bench c "$runs" "sh -c 'date +%s%N > $work/big/src/s1.txt'" \
    "$(wharf_b -t big "$work/big")" "$(classic_b -t big "$work/big")" \
    "$(kit_b -t big "$work/big")" "$(buildah_b -t big "$work/big")" \
    "$(wcli_b -t big "$work/big")"
# (d) 8 independent stages of 2 s each.
bench d 3 "true" \
    "$(wharf_b --no-cache -t eight "$work/eight")" "$(classic_b --no-cache -t eight "$work/eight")" \
    "$(kit_b --no-cache -t eight "$work/eight")" "$(buildah_b --no-cache -t eight "$work/eight")" \
    "$(wcli_b --no-cache -t eight "$work/eight")"

python3 - "$work" "${results[@]}" <<'PY'
import json, sys
work, names = sys.argv[1], sys.argv[2:]
what = {"a": "(a) cold 3-stage build", "b": "(b) no-op rebuild, 100 MB / 10,000 files",
        "c": "(c) rebuild after one source file changed", "d": "(d) 8 independent stages × RUN sleep 2"}
print("| scenario | wharfd (docker CLI) | wharfd (wharf CLI) | classic builder | BuildKit | buildah "
      "| wharf / BuildKit (docker CLI, wharf CLI) | wharf / classic |")
print("|---|---|---|---|---|---|---|---|")
for n in names:
    r = [x["median"] for x in json.load(open(f"{work}/{n}.json"))["results"]]
    w, c, k, b, wc = r
    print(f"| {what[n]} | {w:.2f} s | {wc:.2f} s | {c:.2f} s | {k:.2f} s | {b:.2f} s "
          f"| {w/k:.2f}, {wc/k:.2f} | {w/c:.2f} |")
PY
