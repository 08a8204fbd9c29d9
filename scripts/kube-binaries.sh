#!/usr/bin/env bash
# Builds the real Kubernetes control plane from its Go modules, into a cache outside the
# repository, and reuses what is already there:
#
#   scripts/kube-binaries.sh [VERSION]      # default v1.36.3, the release of data/openapi
#
# kube-apiserver, kube-controller-manager, kube-scheduler, kubectl and e2e.test come from
# k8s.io/kubernetes, etcd from go.etcd.io/etcd/server/v3 (the version Kubernetes pins), ginkgo
# from github.com/onsi/ginkgo/v2, all through the wrapper module in scripts/kube (k8s.io/kubernetes
# cannot be built as a dependency without pinning its staging modules). Nothing prebuilt is
# downloaded: only modules, through the Go module proxy.
#
# The cache is $WHAKAPAPA_KUBE_CACHE (default ~/.cache/whakapapa/kubernetes/VERSION); the tests
# find it the same way. Prints the directory on its last line.
set -euo pipefail

version=${1:-v1.36.3}
here=$(cd "$(dirname "$0")" && pwd)
cache=${WHAKAPAPA_KUBE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/whakapapa/kubernetes/$version}
binaries=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl e2e.test ginkgo kwok)
kwok=v0.8.0

if ! command -v go >/dev/null; then
  echo "kube-binaries: go is not installed; the real-cluster tests will be skipped" >&2
  exit 1
fi

# The stamp names what the binaries were built from: another wrapper module or release
# rebuilds them all; otherwise only the missing ones are built.
stamp="$(cat "$here/kube/go.mod" "$here/kube/go.sum" | sha256sum | cut -c1-16)-$version-kwok-$kwok"
if [[ ! -f "$cache/STAMP" || "$(cat "$cache/STAMP")" != "$stamp" ]]; then
  rm -f "${binaries[@]/#/$cache/}"
fi
missing=()
for b in "${binaries[@]}"; do [[ -x "$cache/$b" ]] || missing+=("$b"); done
[[ -f "$cache/kwok-stages.yaml" ]] || missing+=(kwok-stages.yaml)
if [[ ${#missing[@]} == 0 ]]; then
  echo "kube-binaries: reusing $cache" >&2
  echo "$cache"
  exit 0
fi
wanted() { [[ " ${missing[*]} " == *" $1 "* ]]; }

mkdir -p "$cache"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$here/kube/go.mod" "$here/kube/go.sum" "$here/kube/tools.go" "$work/"
cd "$work"

# Another release: the same wrapper, every staging module moved to the matching v0 release.
default=$(awk '$1 == "k8s.io/kubernetes" {print $2}' go.mod | head -1)
if [[ "$version" != "$default" ]]; then
  staging="v0.${version#v1.}"
  go mod edit -require "k8s.io/kubernetes@$version"
  for m in $(awk '/=>/ {print $1}' go.mod); do
    go mod edit -replace "$m=$m@$staging"
  done
  go mod tidy
fi

IFS=. read -r major minor _ <<<"${version#v}"
# What `kubectl version` and the client-go user agent say (kubernetes/<commit>): the module
# carries no git commit, so KUBE_GIT_COMMIT may supply it.
pkgs=(k8s.io/component-base/version k8s.io/client-go/pkg/version)
ldflags="-s -w"
for p in "${pkgs[@]}"; do
  ldflags+=" -X $p.gitVersion=$version -X $p.gitMajor=$major -X $p.gitMinor=$minor"
  ldflags+=" -X $p.gitTreeState=clean -X $p.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  [[ -n "${KUBE_GIT_COMMIT:-}" ]] && ldflags+=" -X $p.gitCommit=$KUBE_GIT_COMMIT"
done

export CGO_ENABLED=0
start=$SECONDS
build() {
  local t=$SECONDS
  "$@"
  echo "kube-binaries: ${*: -1} in $((SECONDS - t)) s" >&2
}
wanted etcd && build go build -trimpath -ldflags "$ldflags" -o "$cache/etcd" go.etcd.io/etcd/server/v3
for c in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
  wanted $c && build go build -trimpath -ldflags "$ldflags" -o "$cache/$c" "k8s.io/kubernetes/cmd/$c"
done
wanted ginkgo && build go build -trimpath -o "$cache/ginkgo" github.com/onsi/ginkgo/v2/ginkgo
wanted e2e.test && build go test -c -trimpath -ldflags "$ldflags" -o "$cache/e2e.test" k8s.io/kubernetes/test/e2e
# kwok is its own module with its own Kubernetes libraries: built by version, outside the wrapper.
wanted kwok && (cd / && build env GOBIN="$cache" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$kwok")
# kwok's own default stages (nodes Ready with heartbeats; pods Running, then deleted), from the
# module it was built from.
if wanted kwok || wanted kwok-stages.yaml; then
  (cd / && go mod download "sigs.k8s.io/kwok@$kwok")
  stages="$(go env GOMODCACHE)/sigs.k8s.io/kwok@$kwok/kustomize/stage"
  for f in "$stages"/node/fast/node-initialize.yaml "$stages"/node/heartbeat/node-heartbeat.yaml \
    "$stages"/pod/fast/*.yaml; do
    echo "---"
    cat "$f"
  done >"$cache/kwok-stages.yaml"
fi
echo "$stamp" >"$cache/STAMP"
echo "kube-binaries: built $version in $((SECONDS - start)) s into $cache" >&2
echo "$cache"
