#!/usr/bin/env bash
# `compose up -d` and `down` of a 10-service app, and the time until all 20 services of a
# 5-deep `service_healthy` chain are healthy, side by side in one run:
#   wharf compose on wharfd   vs   docker-compose 1.29 (Debian's) on dockerd 20.10,
# and, for the record, wharf compose on dockerd. Medians of hyperfine runs, as a markdown
# table (a smaller time is better).
#   bench/compose.sh [runs]      (root; apt-get install -y docker-compose hyperfine)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
. bench/lib.sh
bench_before_cleanup() {
    for h in "$WS" "$DS"; do
        for p in bench chain; do
            "$bin/wharf" -H "$h" compose -f "$work/$p.yaml" -p "$p" down -t 1 >/dev/null 2>&1 || true
        done
    done
}
bench_start cbench 217 218

# The 10-service app: each service stops at once on SIGTERM (no grace period measured).
{
    echo "services:"
    for i in $(seq 10); do
        printf '  s%d:\n    image: busybox\n    command: ["sh", "-c", "trap \\"exit 0\\" TERM; sleep 3600 & wait"]\n' "$i"
    done
} >"$work/bench.yaml"
# The chain: 5 levels of 4 services, each level depending (service_healthy) on every
# service of the level before; a 1 s healthcheck interval.
{
    echo "services:"
    for l in $(seq 5); do
        for j in $(seq 4); do
            printf '  l%ds%d:\n    image: busybox\n    command: ["sh", "-c", "trap \\"exit 0\\" TERM; sleep 3600 & wait"]\n' "$l" "$j"
            printf '    healthcheck: {test: ["CMD", "true"], interval: 1s, timeout: 5s, retries: 30}\n'
            if [ "$l" -gt 1 ]; then
                echo "    depends_on:"
                for k in $(seq 4); do
                    printf '      l%ds%d: {condition: service_healthy}\n' $((l - 1)) "$k"
                done
            fi
        done
    done
} >"$work/chain.yaml"

wharf_c() { echo "$bin/wharf -H $1 compose -f $work/$2.yaml -p $2"; }
dc_c() { echo "env DOCKER_HOST=$DS docker-compose --ansi never -f $work/$1.yaml -p $1"; }
W=$(wharf_c "$WS" bench)
WD=$(wharf_c "$DS" bench)
DC=$(dc_c bench)

# Each once first, so that a failure shows its output.
for c in "$W" "$WD" "$DC"; do
    if ! out=$($c up -d 2>&1 && $c down -t 1 2>&1); then
        echo "failed: $c" >&2
        echo "$out" >&2
        exit 1
    fi
done
hyperfine -N --runs "$runs" --export-json "$work/up.json" \
    --prepare "$W down -t 1" "$W up -d" \
    --prepare "$DC down -t 1" "$DC up -d" \
    --prepare "$WD down -t 1" "$WD up -d" >/dev/null
hyperfine -N --runs "$runs" --export-json "$work/down.json" \
    --prepare "$W up -d" "$W down -t 1" \
    --prepare "$DC up -d" "$DC down -t 1" \
    --prepare "$WD up -d" "$WD down -t 1" >/dev/null

# The chain: `up -d` returns once the last level is started; the clock stops when all 20 are
# healthy (that wait polls `ps` every 50 ms: it is the measurement, not compose).
cat >"$work/chain.sh" <<'SH'
#!/bin/sh
# chain.sh HOST COMPOSE-COMMAND...
host=$1
shift
"$@" up -d >/dev/null 2>&1 || exit 1
while [ "$(docker -H "$host" ps -q --filter health=healthy | wc -l)" -lt 20 ]; do sleep 0.05; done
SH
chmod +x "$work/chain.sh"
CW=$(wharf_c "$WS" chain)
CWD=$(wharf_c "$DS" chain)
CDC=$(dc_c chain)
hyperfine -N --runs 3 --export-json "$work/chain.json" \
    --prepare "$CW down -t 1" "$work/chain.sh $WS $CW" \
    --prepare "$CDC down -t 1" "$work/chain.sh $DS $CDC" \
    --prepare "$CWD down -t 1" "$work/chain.sh $DS $CWD" >/dev/null

python3 - "$work" <<'PY'
import json, sys
work = sys.argv[1]
what = {"up": "`up -d`, 10 services", "down": "`down`, 10 services",
        "chain": "20 services healthy, 5-deep `service_healthy` chain (1 s interval)"}
print("| scenario | wharf compose, wharfd | docker-compose 1.29, dockerd 20.10 | wharf compose, dockerd 20.10 | wharfd / docker-compose |")
print("|---|---|---|---|---|")
for n in ["up", "down", "chain"]:
    w, dc, wd = [x["median"] for x in json.load(open(f"{work}/{n}.json"))["results"]]
    print(f"| {what[n]} | {w:.3f} s | {dc:.3f} s | {wd:.3f} s | {w/dc:.2f} |")
PY
