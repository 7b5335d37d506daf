#!/usr/bin/env bash
# Builds every fuzz target and runs each for the given number of seconds (default 600), two at
# a time, niced: `fuzz/run.sh [seconds] [target...]`. Needs cargo-fuzz (`cargo install
# cargo-fuzz`); stable rustc is enough (RUSTC_BOOTSTRAP lets it take cargo-fuzz's nightly
# flags). New corpus entries go to fuzz/corpus/<target>/ (only the seed-* files are
# committed), crashes to fuzz/artifacts/<target>/, each run's log to fuzz/logs/<target>.log,
# and one summary line per target (time, executions, coverage, crashes) is printed at the end:
# copy it into docs/security.md (Fuzzing).
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-600}
shift || true
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/wharf-target-fuzz}
all=$(cargo fuzz list --fuzz-dir .)
targets=${*:-$all}
if [ $# -eq 0 ]; then
    nice -n 15 cargo fuzz build --fuzz-dir .
else
    for t in $targets; do nice -n 15 cargo fuzz build --fuzz-dir . "$t"; done
fi
mkdir -p logs /var/tmp/wharf-fuzz-scratch
bin=$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release
run() {
    local t=$1 extra=""
    mkdir -p "corpus/$t" "artifacts/$t"
    # Structured inputs (a tar, a profile, an archive) need room from the start.
    case $t in layer_apply | seccomp_compile | image_load) extra="-len_control=0 -max_len=4096" ;; esac
    # The binary itself rather than `cargo fuzz run`, which would take cargo's locks (shared
    # with other builds) every time. -rss_limit_mb: ASan's shadow memory needs headroom.
    # shellcheck disable=SC2086
    nice -n 15 "$bin/$t" -artifact_prefix="artifacts/$t/" -max_total_time="$secs" \
        -rss_limit_mb=4096 -timeout=30 -print_final_stats=1 $extra "corpus/$t" \
        >"logs/$t.log" 2>&1 || true
}
set -- $targets
while [ $# -gt 0 ]; do
    run "$1" &
    if [ $# -gt 1 ]; then run "$2" & fi
    wait
    shift $(($# > 1 ? 2 : 1))
done
printf '%-16s %8s %12s %8s %8s %s\n' target seconds executions exec/s cov crashes
for t in $targets; do
    log="logs/$t.log"
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
    rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
    cov=$(grep -E '^#[0-9]+' "$log" | grep -o 'cov: [0-9]*' | tail -1 | grep -o '[0-9]*' || echo '?')
    crashes=$(find "artifacts/$t" -type f | wc -l)
    printf '%-16s %8s %12s %8s %8s %s\n' "$t" "$secs" "${execs:-?}" "${rate:-?}" "${cov:-?}" "$crashes"
done
