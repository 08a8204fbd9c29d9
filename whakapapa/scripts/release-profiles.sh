#!/bin/sh
# Builds whakapapa/examples/release_probe.rs in release with each `debug` setting of the
# release profile and prints, per setting, what the probe reports (the user agent it sent, the
# frame it should name, whether it does, the binary size). Slow: one release build per setting.
set -eu
cd "$(dirname "$0")/../.."
target="${CARGO_TARGET_DIR:-target}"
for debug in none line-tables-only limited; do
    cargo build --release -p whakapapa --example release_probe \
        --config "profile.release.debug=\"$debug\"" >&2
    printf '%s\t' "$debug"
    "$target/release/examples/release_probe"
done
