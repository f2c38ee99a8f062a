#!/usr/bin/env bash
# Build kube-apiserver, kubectl and etcd from their published Go modules, once.
# Binaries are cached outside the repo, keyed by version, so later runs are instant.
# Prints the directory holding the binaries on stdout.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=/dev/null
. "$here/versions.env"
cache="${VNF_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/vnf-operator}"
out="$cache/controlplane/k8s-${KUBE_VERSION}-etcd-${ETCD_VERSION}"
mkdir -p "$out"
# Concurrent callers (several test sessions, make deps) wait for one build instead of racing on *.tmp.
exec 9>"$out/.lock"
if ! flock -n 9; then
  echo "waiting for another build of the control plane to finish..." >&2
  flock 9
fi
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
ldflags="-s -w"
kver="-X k8s.io/component-base/version.gitVersion=v${KUBE_VERSION} -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${KUBE_VERSION#1.}"
kver="${kver%.*}"
build() { # name module-dir package extra-ldflags
  local name=$1 dir=$2 pkg=$3 extra=${4:-}
  if [ -x "$out/$name" ]; then return 0; fi
  command -v go >/dev/null || { echo "go is required to build $name (or set VNF_CONTROLPLANE_BIN to a dir with etcd, kube-apiserver, kubectl)" >&2; exit 1; }
  echo "building $name (first time only; takes minutes)..." >&2
  local start=$SECONDS
  (cd "$here/$dir" && go build -trimpath -ldflags "$ldflags $extra" -o "$out/$name.tmp" "$pkg")
  mv "$out/$name.tmp" "$out/$name"
  echo "built $name in $((SECONDS - start))s" >&2
}
build etcd etcd go.etcd.io/etcd/server/v3
build kube-apiserver kube k8s.io/kubernetes/cmd/kube-apiserver "$kver"
build kubectl kube k8s.io/kubernetes/cmd/kubectl "$kver"
echo "$out"
