#!/usr/bin/env bash
# Build the single-node Kubernetes the suite runs on, from pinned Go modules, into a cache
# outside the clone (reused by every later run; nothing is downloaded twice):
#   bash .ci/cluster/build.sh            # prints the bin directory
# Cache: $INITKIT_CLUSTER_CACHE (default /var/cache/initkit-cluster): gomod/ (module cache),
# gobuild/ (build cache), bin/<piece>-<version>/ (binaries). A piece whose binary is there is
# not rebuilt. CPU-bound: about 22 min cold on 2 cores, under a minute warm.
set -euo pipefail

cache=${INITKIT_CLUSTER_CACHE:-/var/cache/initkit-cluster}
export GOMODCACHE="$cache/gomod" GOCACHE="$cache/gobuild" GOFLAGS=-buildvcs=false GOTOOLCHAIN=local
# INITKIT_CLUSTER_BUILD_P: parallel package builds (go build -p); 1 leaves a core to the rest.
par=${INITKIT_CLUSTER_BUILD_P:-2}

K8S=v1.37.2 K8S_STAGING=v0.37.2 ETCD=v3.6.16 CONTAINERD=v2.4.2 RUNC=v1.5.3 COREDNS=v1.15.0
bin="$cache/bin"
mkdir -p "$bin" "$cache/src"
# one build at a time (make test's setup and make cluster may both ask)
exec 9>"$cache/.build.lock"
flock 9

if ! command -v go >/dev/null; then
    for d in /usr/local/go/bin /usr/lib/go/bin; do [ -x "$d/go" ] && PATH="$d:$PATH"; done
fi
command -v go >/dev/null || { echo "cluster-build: go not found (Go 1.26 is needed)" >&2; exit 1; }
need=()
for pkg in libseccomp-dev pkg-config gcc; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || need+=("$pkg")
done
if [ "${#need[@]}" -gt 0 ]; then
    echo "cluster-build: installing ${need[*]}" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# module NAME VERSION: a throwaway module of our own that requires NAME@VERSION, in $cache/src/NAME
module() {
    local dir="$cache/src/$1"
    if [ ! -f "$dir/.ready-$2" ]; then
        rm -rf "$dir" && mkdir -p "$dir"
        (cd "$dir" && go mod init "initkit.local/cluster/$1" >/dev/null 2>&1 && go mod edit -go=1.26)
    fi
    echo "$dir"
}

# (set -e does not reach into a function run as an if's condition: each step returns its failure)
build() { # piece version function args...
    local piece=$1 version=$2 out="$bin/$1-$2"
    if [ -f "$out/.done" ]; then return 0; fi
    echo "cluster-build: building $piece $version (log: $cache/build-$piece.log)" >&2
    shift 2
    mkdir -p "$out"
    if ! "$@" >"$cache/build-$piece.log" 2>&1; then
        local why
        why=$(grep -aiE 'error|cannot|fatal|undefined|not found' "$cache/build-$piece.log" | tail -n 1 | cut -c1-300)
        echo "cluster: build of $piece $version failed: ${why:-see its log} (log: $cache/build-$piece.log)" >&2
        exit 1
    fi
    touch "$out/.done"
}

build_kubernetes() {
    local dir out="$bin/kubernetes-$K8S"
    dir=$(module kubernetes "$K8S")
    cd "$dir"
    if [ ! -f ".ready-$K8S" ]; then
        # k8s.io/kubernetes replaces its staging modules with ./staging/...: point each at its release
        go mod download -json "k8s.io/kubernetes@$K8S" | python3 -c '
import json, sys
print(open(json.load(sys.stdin)["GoMod"]).read())' >upstream.mod || return 1
        for m in $(awk '$1 ~ /^k8s.io\// && $2 == "=>" && $3 ~ /^\.\/staging/ {print $1}' upstream.mod); do
            go mod edit -replace "$m=$m@$K8S_STAGING" || return 1
        done
        go mod edit -require "k8s.io/kubernetes@$K8S" || return 1
        for cmd in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl; do
            go get "k8s.io/kubernetes/cmd/$cmd@$K8S" || return 1
        done
        touch ".ready-$K8S"
    fi
    local v=${K8S#v} ld=""
    for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        ld="$ld -X $p.gitVersion=$K8S -X $p.gitMajor=${v%%.*} -X $p.gitMinor=$(echo "$v" | cut -d. -f2)"
        ld="$ld -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
    done
    CGO_ENABLED=0 go build -p "$par" -trimpath -ldflags "-s -w $ld" -o "$out/" \
        k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
        k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubelet \
        k8s.io/kubernetes/cmd/kube-proxy k8s.io/kubernetes/cmd/kubectl
}

build_simple() { # name module-version cgo tags ldflags pkgs...
    local name=$1 modver=$2 cgo=$3 tags=$4 ld=$5 dir out
    shift 5
    out="$bin/$name-${modver##*@}"
    dir=$(module "$name" "${modver##*@}")
    cd "$dir"
    if [ ! -f ".ready-${modver##*@}" ]; then
        for pkg in "$@"; do go get "$pkg@${modver##*@}" || return 1; done
        touch ".ready-${modver##*@}"
    fi
    CGO_ENABLED=$cgo go build -p "$par" -trimpath -tags "$tags" -ldflags "-s -w $ld" -o "$out/" "$@"
}

build_etcd() {
    build_simple etcd "go.etcd.io/etcd/server/v3@$ETCD" 0 "" "" go.etcd.io/etcd/server/v3
    # go build names a .../server/v3 command after its path ("server"): give it its name
    local b
    for b in server v3; do
        if [ -f "$bin/etcd-$ETCD/$b" ]; then mv "$bin/etcd-$ETCD/$b" "$bin/etcd-$ETCD/etcd"; fi
    done
    [ -x "$bin/etcd-$ETCD/etcd" ]
}

build kubernetes "$K8S" build_kubernetes
build etcd "$ETCD" build_etcd
build containerd "$CONTAINERD" build_simple containerd "x@$CONTAINERD" 0 "no_btrfs no_devmapper no_zfs no_aufs" \
    "-X github.com/containerd/containerd/v2/version.Version=$CONTAINERD" \
    github.com/containerd/containerd/v2/cmd/containerd github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2 \
    github.com/containerd/containerd/v2/cmd/ctr
build runc "$RUNC" build_simple runc "x@$RUNC" 1 "seccomp" "-X main.version=${RUNC#v}" github.com/opencontainers/runc
build coredns "$COREDNS" build_simple coredns "x@$COREDNS" 0 "" "" github.com/coredns/coredns
echo "$bin"
