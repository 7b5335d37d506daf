#!/usr/bin/env bash
# Builds wharf-init statically linked (it is bind-mounted into containers whose images have no
# libc or dynamic loader) at $CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release/wharf-init.
# An explicit --target keeps the static RUSTFLAGS away from the rest of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/wharf-target}
RUSTFLAGS="-C target-feature=+crt-static" "${CARGO:-cargo}" build -q --release -p wharf-init \
    --target x86_64-unknown-linux-gnu
echo "$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release/wharf-init"
