#!/usr/bin/env bash
# Loads the images docker-compose 1.29.2's test suite names (busybox, alpine tags) into the
# daemon at DOCKER_HOST, built from the host's busybox-static (no Docker Hub needed).
#   DOCKER_HOST=unix:///run/wharf.sock bench/compose-images.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
docker=${DOCKER:-docker}
"$here/../scripts/mkbusybox-rootfs.sh" | "$docker" import -c 'CMD ["sh"]' - busybox:latest >/dev/null
for tag in busybox:1.31.0-uclibc busybox:1.27.2 alpine:latest alpine:3.10.1 alpine:3.12 alpine:edge; do
    "$docker" tag busybox:latest "$tag"
done
"$docker" images --format '{{.Repository}}:{{.Tag}}' | sort | tr '\n' ' '
echo
