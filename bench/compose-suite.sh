#!/usr/bin/env bash
# Runs docker-compose 1.29.2's own test suite (the sdist's tests/, against Debian's installed
# compose package and /usr/bin/docker-compose) against the daemon at DOCKER_HOST and prints
# the tally per file (passed/failed/errored/skipped).
#   DOCKER_HOST=unix:///run/wharf.sock bench/compose-suite.sh [test files or node ids...]
# Without arguments: the acceptance and integration files. The images the tests name are
# loaded first (bench/compose-images.sh). Needs: docker-compose (Debian), python3-venv.
# SUITE_DIR (default /var/tmp/compose-suite) holds the venv and the unpacked sdist.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
: "${DOCKER_HOST:?set DOCKER_HOST to the daemon under test}"
dir=${SUITE_DIR:-/var/tmp/compose-suite}
ver=1.29.2
sha=4c8cd9d21d237412793d18bd33110049ee9af8dab3fe2c213bbd0733959b09b7
url=https://files.pythonhosted.org/packages/1f/6a/f4703077123ad0c90026985cb9780c0703922c2a5451ab93fb63511d915a/docker-compose-$ver.tar.gz
mkdir -p "$dir"
if ! [ -d "$dir/tests" ]; then
    # pip download runs the sdist's metadata step, which fails on Python 3.11: fetch the file
    curl -fsSL -o "$dir/sdist.tar.gz" "$url"
    echo "$sha  $dir/sdist.tar.gz" | sha256sum -c --quiet
    tar -C "$dir" -xzf "$dir/sdist.tar.gz" "docker-compose-$ver/tests"
    mv "$dir/docker-compose-$ver/tests" "$dir/tests"
    rmdir "$dir/docker-compose-$ver"
fi
if ! [ -x "$dir/venv/bin/pytest" ]; then
    /usr/bin/python3 -m venv --system-site-packages "$dir/venv"
    "$dir/venv/bin/pip" install -q pytest ddt mock pytest-timeout
fi
"$here/compose-images.sh" >/dev/null
if [ $# -eq 0 ]; then
    set -- tests/acceptance/cli_test.py tests/integration
fi
out=$dir/results-$(date +%s).xml
cd "$dir"
status=0
"$dir/venv/bin/python" -m pytest -p no:cacheprovider --timeout "${SUITE_TIMEOUT:-180}" -q \
    --junitxml "$out" "$@" >"$dir/last.log" 2>&1 || status=$?
"$dir/venv/bin/python" - "$out" <<'PY'
import sys, collections, xml.etree.ElementTree as ET
t = collections.defaultdict(collections.Counter)
for case in ET.parse(sys.argv[1]).iter('testcase'):
    f = case.get('classname', '').rsplit('.', 1)[0].replace('.', '/') + '.py'
    kind = 'passed'
    for child in case:
        if child.tag in ('failure', 'error', 'skipped'):
            kind = {'failure': 'failed', 'error': 'errored', 'skipped': 'skipped'}[child.tag]
    t[f][kind] += 1
print('%-40s %7s %7s %7s %7s' % ('file', 'passed', 'failed', 'errored', 'skipped'))
for f in sorted(t):
    c = t[f]
    print('%-40s %7d %7d %7d %7d' % (f, c['passed'], c['failed'], c['errored'], c['skipped']))
PY
echo "log: $dir/last.log  junit: $out"
exit $status
