#!/usr/bin/env bash
# A new user's figures: a kube-rs application (main.rs) built without and with whakapapa, each
# from an empty target dir in release (cargo's default: no debug info). Prints the crates each
# compiles, the clean build times, the binary sizes, and first-request latency against the
# loopback stand-in (standin.py): medians of 15 rounds, each round one process of each variant.
# Slow (two clean release builds). Usage: whakapapa/scripts/new-user/run.sh [WORKDIR]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
lib=$(cd "$here/../.." && pwd)
work=${1:-$(mktemp -d)}
mkdir -p "$work/src"
cp "$here/main.rs" "$work/src/main.rs"
cat > "$work/Cargo.toml" <<TOML
[package]
name = "new-user"
version = "0.1.0"
edition = "2024"

[dependencies]
anyhow = "1"
k8s-openapi = { version = "0.29", features = ["latest"] }
kube = { version = "5", default-features = false, features = ["client", "rustls-tls", "ring"] }
tokio = { version = "1", features = ["macros", "rt-multi-thread"] }
whakapapa = { path = "$lib", optional = true }

[features]
whakapapa = ["dep:whakapapa"]

[workspace]
TOML
cd "$work"
cargo fetch -q
crates() { cargo tree -e normal,build --prefix none "$@" | sed 's/ (\*)//' | sort -u | grep -c .; }
echo "crates: kube-rs alone $(crates), with whakapapa $(crates --features whakapapa)"
for variant in alone with; do
  flags=(); [ "$variant" = with ] && flags=(--features whakapapa)
  rm -rf "target-$variant"
  start=$(date +%s.%N)
  CARGO_TARGET_DIR="target-$variant" cargo build --release -q "${flags[@]}"
  end=$(date +%s.%N)
  bin="target-$variant/release/new-user"
  cp "$bin" "$bin.stripped" && strip "$bin.stripped"
  printf 'clean release build, %s: %.0f s; binary %s bytes, stripped %s\n' "$variant" \
    "$(echo "$end - $start" | bc)" "$(stat -c %s "$bin")" "$(stat -c %s "$bin.stripped")"
done
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 "$here/standin.py" "$port" & standin=$!
trap 'kill $standin' EXIT
cat > kubeconfig <<YAML
apiVersion: v1
kind: Config
clusters: [{name: standin, cluster: {server: "http://127.0.0.1:$port"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: standin, context: {cluster: standin, user: u, namespace: default}}]
current-context: standin
YAML
export KUBECONFIG=$work/kubeconfig
sleep 0.5
: > rounds.txt
for _ in $(seq 15); do
  echo "alone $(target-alone/release/new-user)" >> rounds.txt
  echo "with,off $(target-with/release/new-user)" >> rounds.txt
  echo "with,on $(KUBE_CLIENT_SUBMIT_PURPOSE=1 target-with/release/new-user)" >> rounds.txt
done
python3 - rounds.txt <<'PY'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    variant, record = line.split(' ', 1)
    rows.setdefault(variant, []).append(json.loads(record))
for variant, records in rows.items():
    m = lambda f: statistics.median(r[f] for r in records) / 1000
    print(f"{variant:9} first request {m('first_request_us'):.2f} ms, from start "
          f"{m('from_start_us'):.2f} ms, steady get {m('steady_get_us'):.2f} ms")
PY
