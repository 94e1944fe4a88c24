#!/usr/bin/env bash
# Builds the real control plane and tools that integration and e2e tests run:
# etcd, kube-apiserver, kube-controller-manager, kubectl, opa and helm.
#
# Every binary comes from the Go module proxy at the versions pinned by the
# go.mod files under hack/tools/. Binaries land in a versioned directory
# outside the checkout, keyed by those go.mod/go.sum files and the Go version,
# so a clean clone on the same machine reuses them and a version bump builds
# into a fresh directory. Anything already built is skipped.
#
# Usage:
#   hack/build-binaries.sh            build what is missing, print progress
#   hack/build-binaries.sh --print-dir  print the binary directory and exit
#
# Environment:
#   EXECGUARD_CACHE_DIR   cache root (default: ~/.cache/execguard)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tools="$here/tools"
cache_root="${EXECGUARD_CACHE_DIR:-$HOME/.cache/execguard}"

if ! command -v go >/dev/null 2>&1; then
  echo "build-binaries: the Go toolchain is missing (no 'go' on PATH); install Go >= 1.25" >&2
  exit 2
fi

go_version="$(go env GOVERSION)"
key="$(cat "$tools"/*/go.mod "$tools"/*/go.sum | { cat; echo "$go_version"; } | sha256sum | cut -c1-12)"
k8s_version="$(awk '$1 == "require" && $2 == "k8s.io/kubernetes" {print $3}' "$tools/kubernetes/go.mod")"
bin_dir="$cache_root/bin/k8s-$k8s_version-$key"

if [[ "${1:-}" == "--print-dir" ]]; then
  echo "$bin_dir"
  exit 0
fi

mkdir -p "$bin_dir"
started=$SECONDS

# build NAME MODULE_DIR PACKAGE [LDFLAGS]
build() {
  local name="$1" module_dir="$2" package="$3" ldflags="${4:-}"
  if [[ -x "$bin_dir/$name" ]]; then
    echo "build-binaries: $name is built ($bin_dir/$name)"
    return
  fi
  echo "build-binaries: building $name from $package ($(basename "$module_dir") module) ..."
  local t0=$SECONDS
  # Build to a temporary name and rename, so an interrupted build never
  # leaves a half-written binary that a later run would take as done.
  if ! (cd "$module_dir" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w $ldflags" -o "$bin_dir/.$name.tmp" "$package"); then
    echo "build-binaries: building $name from $package failed (see the go output above)" >&2
    rm -f "$bin_dir/.$name.tmp"
    exit 1
  fi
  mv "$bin_dir/.$name.tmp" "$bin_dir/$name"
  echo "build-binaries: built $name in $((SECONDS - t0))s"
}

# kubectl and the apiserver report this version; without it they say v0.0.0,
# and kubectl warns about version skew against its own server.
major="${k8s_version#v}"; major="${major%%.*}"
minor="$(echo "$k8s_version" | cut -d. -f2)"
k8s_ldflags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
done

build etcd "$tools/etcd" go.etcd.io/etcd/server/v3
build kube-apiserver "$tools/kubernetes" k8s.io/kubernetes/cmd/kube-apiserver "$k8s_ldflags"
build kube-controller-manager "$tools/kubernetes" k8s.io/kubernetes/cmd/kube-controller-manager "$k8s_ldflags"
build kubectl "$tools/kubernetes" k8s.io/kubernetes/cmd/kubectl "$k8s_ldflags"
build opa "$tools/opa" github.com/open-policy-agent/opa
build helm "$tools/helm" helm.sh/helm/v3/cmd/helm

echo "build-binaries: all binaries ready in $bin_dir ($((SECONDS - started))s)"
