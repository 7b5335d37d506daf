#!/usr/bin/env bash
# Runs runc's own bats integration suite (tests/integration of a runc git tag) against an OCI
# runtime binary, for sessions (CI does not run it: it needs runc's sources, which stay out of
# this repository). Nothing is downloaded: runc's rootfs tarballs are replaced by our busybox
# rootfs (scripts/mkbusybox-rootfs.sh) and its Go recvtty helper by a small Python stand-in.
#
#   bench/runc-bats.sh RUNC_GIT_DIR RUNTIME [BATS_FILE...]
#     RUNC_GIT_DIR  a git directory of opencontainers/runc (e.g. from a session's fetch tool)
#     RUNTIME       the runtime to test: $(command -v runc), or target/debug/wharf-runtime
#   env: TAG (default v1.1.5), WORK (default /var/tmp/runc-bats-$TAG), TEST_TIMEOUT (seconds a
#        test may take, default 120), FILE_TIMEOUT (seconds a .bats file may take, default 900),
#        EXCLUDE (files not run, default seccomp-notify.bats: it needs runc's Go seccompagent,
#        and without it bats itself hangs on a pipe after the test times out)
#
# Prints the TAP of each file to $WORK/<runtime name>.tap and a tally at the end. A test that
# hangs is killed after TEST_TIMEOUT (bats' BATS_TEST_TIMEOUT; not for events.bats, whose
# `wait` would wait for bats' own timer, so that file only has FILE_TIMEOUT).
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2,19p' "$0"; exit 2; }
git_dir=$1
runtime=$(readlink -f "$2")
shift 2
here=$(cd "$(dirname "$0")/.." && pwd)
tag=${TAG:-v1.1.5}
work=${WORK:-/var/tmp/runc-bats-$tag}
test_timeout=${TEST_TIMEOUT:-120}
file_timeout=${FILE_TIMEOUT:-900}
for t in bats jq gawk python3; do
    command -v "$t" >/dev/null || { echo "runc-bats: $t is needed" >&2; exit 1; }
done
[ -x "$runtime" ] || { echo "runc-bats: $runtime is not an executable" >&2; exit 1; }

it=$work/tests/integration
if [ ! -d "$it" ]; then
    mkdir -p "$work"
    git --git-dir="$git_dir" archive "$tag" tests/integration | tar -x -C "$work"
    "$here/scripts/mkbusybox-rootfs.sh" >"$it/testdata/busybox.tar"
    # The images: our busybox for both (debian is only used by hooks.bats' setup).
    cat >"$it/get-images.sh" <<'EOS'
#!/bin/bash
d=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/testdata
echo "BUSYBOX_IMAGE=$d/busybox.tar"
echo "DEBIAN_IMAGE=$d/busybox.tar"
EOS
    # The Python recvtty starts slower than the Go one: wait for its socket.
    python3 - "$it/helpers.bash" <<'EOS'
import sys
p = sys.argv[1]
s = open(p).read()
old = '\t("$RECVTTY" --pid-file "$dir/pid" --mode null "$CONSOLE_SOCKET" &) &\n'
assert old in s, "setup_recvtty changed upstream"
s = s.replace(old, old + '\tretry 50 0.1 [ -S "$CONSOLE_SOCKET" ]\n')
open(p, "w").write(s)
EOS
    mkdir -p "$work/contrib/cmd/recvtty"
    cat >"$work/contrib/cmd/recvtty/recvtty" <<'EOS'
#!/usr/bin/env python3
# Stand-in for runc's contrib/cmd/recvtty: receive a pty master over a unix socket
# (SCM_RIGHTS) and copy its output to stdout (--mode single) or discard it (--mode null).
import argparse, array, os, socket, sys, termios, threading

def recv_fd(conn):
    fds = array.array("i")
    _, anc, _, _ = conn.recvmsg(4096, socket.CMSG_SPACE(fds.itemsize))
    for level, typ, data in anc:
        if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
    if not fds:
        raise OSError("no fd received")
    return fds[0]

def copy(src, dst):
    try:
        while True:
            b = os.read(src, 65536)
            if not b:
                return
            if dst is not None:
                os.write(dst, b)
    except OSError:
        return

p = argparse.ArgumentParser()
p.add_argument("--mode", "-m", default="single")
p.add_argument("--pid-file")
p.add_argument("--no-stdin", action="store_true")
p.add_argument("path")
a = p.parse_args()
if a.pid_file:
    with open(a.pid_file, "w") as f:
        f.write("%d\n" % os.getpid())
ln = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
ln.bind(a.path)
ln.listen(16)
if a.mode == "single":
    conn, _ = ln.accept()
    ln.close()
    m = recv_fd(conn)
    attrs = termios.tcgetattr(m)
    attrs[1] &= ~termios.ONLCR
    termios.tcsetattr(m, termios.TCSANOW, attrs)
    if not a.no_stdin:
        threading.Thread(target=copy, args=(0, m), daemon=True).start()
    copy(m, 1)
elif a.mode == "null":
    def serve(c):
        try:
            m = recv_fd(c)
        except OSError:
            return
        finally:
            c.close()
        copy(m, None)
    while True:
        conn, _ = ln.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()
else:
    sys.exit("recvtty: need to select a valid mode: " + a.mode)
EOS
    chmod +x "$work/contrib/cmd/recvtty/recvtty"
fi

name=$(basename "$runtime")
tap=$work/$name.tap
# The suite calls the runtime "runc" and help.bats/version.bats match that name in the texts:
# run it as a `runc` link (wharf-runtime names itself as invoked, as clap's usage lines do).
bindir=$work/bin-$name
mkdir -p "$bindir"
ln -sfn "$runtime" "$bindir/runc"
: >"$tap"
cd "$it"
files=("$@")
if [ ${#files[@]} -eq 0 ]; then
    for f in *.bats; do
        [[ " ${EXCLUDE-seccomp-notify.bats} " == *" $f "* ]] || files+=("$f")
    done
fi
for f in "${files[@]}"; do
    f=$(basename "$f")
    t=$test_timeout
    [ "$f" = events.bats ] && t=
    echo "# $f" >>"$tap"
    # Under a pty (script): several tests run `runc run` in the foreground with a terminal,
    # which needs a controlling tty, as in runc's CI.
    BATS_TEST_TIMEOUT=$t RUNC=$bindir/runc timeout -k 10 "$file_timeout" \
        script -qefc "bats -t $f" /dev/null </dev/null | tr -d '\r' >>"$tap" 2>&1 ||
        { rc=$?; [ $rc -ne 124 ] || echo "not ok - $f: killed after ${file_timeout}s" >>"$tap"; }
done
ok=$(grep -c '^ok .*# skip' "$tap" || true)
pass=$(grep '^ok ' "$tap" | grep -vc '# skip' || true)
fail=$(grep -c '^not ok ' "$tap" || true)
echo "$name ($("$runtime" --version | sed -n 1p)): $pass passed, $fail failed, $ok skipped (of $((pass + fail + ok))); $tap"
grep '^not ok ' "$tap" || true
