#!/usr/bin/env bash
# Writes a tar of a minimal busybox rootfs (static /bin/busybox plus its applet links and the
# usual top-level directories) to stdout, from the host's busybox-static. No registry needed.
#   scripts/mkbusybox-rootfs.sh | wharf import - busybox
set -euo pipefail
bb=${BUSYBOX:-/bin/busybox}
[ -x "$bb" ] || bb=/usr/bin/busybox
if ! [ -x "$bb" ] || ! file -L "$bb" 2>/dev/null | grep -q 'statically linked'; then
    if command -v apt-get >/dev/null; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null
        bb=/bin/busybox
    else
        echo "mkbusybox-rootfs: need a static busybox (Debian: apt-get install busybox-static)" >&2
        exit 1
    fi
fi
root=$(mktemp -d)
chmod 755 "$root"
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,dev,etc,proc,sys,tmp,root,var,home,usr/bin,usr/sbin,sbin}
chmod 1777 "$root/tmp"
cp "$bb" "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
tar --numeric-owner -C "$root" -c .
