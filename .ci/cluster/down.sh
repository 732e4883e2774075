#!/usr/bin/env bash
# `make cluster-down`: stop everything `make cluster` started, in order, each waited for
# (kubelet, the containers and their shims, containerd, kube-proxy, CoreDNS, scheduler,
# controller-manager, apiserver, etcd); then unmount the kubelet's and containerd's mounts
# under the node's state folders, remove the KUBE-* iptables chains, the CNI rules for the pod
# network and the cni0 bridge. Also cleans up after a node that was SIGKILLed. Keeps the PKI,
# containerd's images and the build cache, so the next `make cluster` is quick.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=lib.sh
. "$repo/.ci/cluster/lib.sh"
[ "$(id -u)" = 0 ] || { say "needs root"; exit 1; }
down
left=$( { for piece in "${pieces[@]}"; do pid_of "$piece" || true; done; shim_pids; pod_pids; } | tr '\n' ' ')
[ -z "${left// /}" ] || { say "still running after cluster-down: pids $left"; exit 1; }
mounts=$(our_mounts | tr '\n' ' ')
[ -z "${mounts// /}" ] || { say "still mounted after cluster-down: $mounts"; exit 1; }
rm -f "$repo/.cluster/kubeconfig"
say "stopped"
