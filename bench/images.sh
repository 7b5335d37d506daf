#!/usr/bin/env bash
# Image load/save throughput: wharf-image (through its imgbench example, the library the daemon
# calls) against skopeo copy between the same formats, and plain `tar -x` / `zcat | tar -x` of
# the same layers as the disk (and decompression) floor. Generates a ~320 MB image in 4 layers
# (each half random, half compressible text), as a Docker archive and as a gzip OCI layout.
#   bench/images.sh [runs]     (root for the overlay driver; prints a markdown table)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/wharf-target}
cargo build -q --release -p wharf-image --example imgbench
ib=$CARGO_TARGET_DIR/release/examples/imgbench
for t in skopeo hyperfine python3; do
    command -v $t >/dev/null || { echo "bench/images.sh: $t is needed" >&2; exit 1; }
done
work=$(mktemp -d /var/tmp/wharf-imgbench-XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"

# --- the image: 4 layers of 40 MB random + 40 MB compressible files ---
layers=()
for i in 1 2 3 4; do
    d=src$i
    mkdir -p $d/layer$i
    head -c $((40 << 20)) /dev/urandom >$d/layer$i/random.bin
    # Compressible: repeated words with a counter (gzip ~4x, like text or binaries).
    python3 -c "
import sys
w = sys.stdout.buffer
n = 0
line = 0
while n < (40 << 20):
    s = b'%08d the quick brown fox jumps over the lazy dog layer $i\n' % line
    w.write(s); n += len(s); line += 1
" >$d/layer$i/text.txt
    for k in $(seq 1 200); do echo "small file $k of layer $i" >$d/layer$i/small-$k; done
    tar --numeric-owner --owner=0 --group=0 -C $d -cf layer$i.tar .
    layers+=(layer$i.tar)
    rm -rf $d
done
python3 - "${layers[@]}" <<'PY'
import hashlib, json, sys, tarfile, io
diff = ["sha256:" + hashlib.sha256(open(l, "rb").read()).hexdigest() for l in sys.argv[1:]]
cfg = json.dumps({"architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
                  "config": {"Cmd": ["/bin/sh"]}, "rootfs": {"type": "layers", "diff_ids": diff},
                  "history": [{"created": "2024-01-01T00:00:00Z"} for _ in diff]}).encode()
cid = hashlib.sha256(cfg).hexdigest()
with tarfile.open("image.tar", "w", format=tarfile.GNU_FORMAT) as t:
    def add(name, data):
        ti = tarfile.TarInfo(name); ti.size = len(data); t.addfile(ti, io.BytesIO(data))
    add(cid + ".json", cfg)
    names = []
    for l, d in zip(sys.argv[1:], diff):
        n = d[7:] + "/layer.tar"; names.append(n); t.add(l, n)
    add("manifest.json", json.dumps([{"Config": cid + ".json", "RepoTags": ["bench:1"], "Layers": names}]).encode())
PY
size=$(stat -c %s image.tar)
mb=$(python3 -c "print(round($size / 1e6))")
skopeo copy -q --dest-compress --dest-compress-format gzip docker-archive:image.tar oci:gz:bench
gzmb=$(du -sbm gz | cut -f1)
tar -C gz -cf image-gz-oci.tar .
for i in 1 2 3 4; do gzip -1 -c layer$i.tar >layer$i.tar.gz; done

# A warm store holding the image, for the save runs.
"$ib" load saved-store image.tar >/dev/null

hyperfine -N --runs "$runs" --style basic --export-json times.json \
    --prepare "sh -c 'rm -rf $work/s $work/out $work/x; mkdir -p $work/x'" \
    -n "wharf load docker-archive" "$ib load $work/s $work/image.tar" \
    -n "wharf load OCI layout (gzip layers)" "$ib load $work/s $work/image-gz-oci.tar" \
    -n "skopeo copy docker-archive -> oci dir" "skopeo copy -q docker-archive:$work/image.tar oci:$work/out:b" \
    -n "skopeo copy oci (gzip) -> docker-archive" "skopeo copy -q oci:$work/gz:bench docker-archive:$work/out:b:1" \
    -n "floor: tar -x of the 4 layers" "sh -c 'for i in 1 2 3 4; do tar -C $work/x -xf $work/layer\$i.tar; done'" \
    -n "floor: zcat + tar -x of the 4 layers" "sh -c 'for i in 1 2 3 4; do zcat $work/layer\$i.tar.gz | tar -C $work/x -x; done'" \
    -n "wharf save docker-archive" "$ib save $work/saved-store bench:1 $work/out" \
    -n "wharf save OCI layout dir" "$ib save-oci $work/saved-store bench:1 $work/out" \
    -n "skopeo copy docker-archive -> docker-archive" "skopeo copy -q docker-archive:$work/image.tar docker-archive:$work/out:b:1" \
    >hyperfine.log 2>&1 || { cat hyperfine.log >&2; exit 1; }

echo "Image: 4 layers, $mb MB uncompressed (Docker archive), $gzmb MB as gzip OCI layout; $runs runs each, median."
echo
echo "| operation | median s | min s | MB/s (uncompressed) | user s | sys s |"
echo "| --- | ---: | ---: | ---: | ---: | ---: |"
python3 - "$mb" <<'PY'
import json, statistics, sys
mb = float(sys.argv[1])
for r in json.load(open("times.json"))["results"]:
    med = statistics.median(r["times"])
    print(f"| {r['command']} | {med:.2f} | {min(r['times']):.2f} | {mb / med:.0f} | {r['user']:.2f} | {r['system']:.2f} |")
PY
rm -rf s out x
