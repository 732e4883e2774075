#!/usr/bin/env bash
# `make cluster`: a single-node Kubernetes on this machine, for the tests and for you. Idempotent:
#   - builds what is missing (build.sh; a no-op when cached) and a static pause;
#   - when the node is already up and Ready, only rewrites .cluster/; otherwise cleans up what a
#     stopped or SIGKILLed node left (down.sh's logic), then starts a fresh one: etcd, the
#     apiserver (on cni0's 10.244.0.1, PodSecurity on), controller-manager, scheduler,
#     containerd (its own root, state and socket), kubelet, kube-proxy (iptables) and CoreDNS
#     (10.244.0.1:53, cluster.local only: no query leaves the machine);
#   - imports initkit:dev and initkit:dev-slim from Docker into the node's containerd (no
#     registry; pods use imagePullPolicy Never or IfNotPresent);
#   - returns once the node is Ready and the default ServiceAccount exists.
# Writes .cluster/kubeconfig and .cluster/bin/{kubectl,helm}. Logs: /var/lib/initkit-cluster/log/.
# A failure is one line: the piece, why, its log. Root, Debian, cgroup v1 or v2.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=lib.sh
. "$repo/.ci/cluster/lib.sh"

started=$(date +%s%N)
[ "$(id -u)" = 0 ] || { say "needs root"; exit 1; }

# --- prerequisites and binaries -----------------------------------------------------------
for tool in iptables openssl gcc docker ip curl; do
    command -v "$tool" >/dev/null || fail prerequisites "$tool is not installed (bash .ci/setup.sh)"
done
for plugin in bridge host-local portmap firewall loopback; do
    [ -x "/usr/lib/cni/$plugin" ] || fail prerequisites "/usr/lib/cni/$plugin is missing (apt-get install containernetworking-plugins)"
done
bash "$repo/.ci/cluster/build.sh" >/dev/null || exit 1  # it said which piece and why, in one line

kubectl_admin=("$kbin/kubectl" --kubeconfig "$state/admin.kubeconfig")

publish() { # .cluster/: the admin kubeconfig, kubectl and helm
    local dir="$repo/.cluster" helm
    mkdir -p "$dir/bin"
    install -m 0600 "$state/admin.kubeconfig" "$dir/kubeconfig"
    ln -sfn "$kbin/kubectl" "$dir/bin/kubectl"
    for helm in "$repo/.ci/bin/helm3" "$repo/.ci/bin/helm4"; do
        if [ -x "$helm" ]; then ln -sfn "$helm" "$dir/bin/helm" && break; fi
    done
    [ -e "$dir/bin/helm" ] || say "no helm in .ci/bin (bash .ci/setup-helm.sh): .cluster/bin has kubectl only"
}

is_up() {
    local piece
    for piece in "${pieces[@]}"; do pid_of "$piece" >/dev/null || return 1; done
    [ "$("${kubectl_admin[@]}" get node "$node" \
        -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}

ctr=("$cbin/ctr" -a "$sock" -n k8s.io)
import_image() { # docker image [more...]: imported unless containerd has that very image already
    local img id mark need=()
    for img in "$@"; do
        id=$(docker image inspect -f '{{.Id}}' "$img")
        mark="$state/images/$(echo "$img" | tr '/:' '__')"
        if [ "$(cat "$mark" 2>/dev/null)" != "$id" ] || ! "${ctr[@]}" images ls -q 2>/dev/null | grep -qx "docker.io/library/$img\|$img"; then
            need+=("$img")
        fi
    done
    [ "${#need[@]}" -gt 0 ] || return 0
    mkdir -p "$state/images"
    docker save "${need[@]}" | "${ctr[@]}" images import - >>"$logs/containerd.log" 2>&1 || return 1
    for img in "${need[@]}"; do
        docker image inspect -f '{{.Id}}' "$img" >"$state/images/$(echo "$img" | tr '/:' '__')"
    done
}

if is_up; then
    # a rebuilt initkit:dev (make images) replaces the node's copy even when the node is up
    for img in initkit:dev initkit:dev-slim; do
        docker image inspect "$img" >/dev/null 2>&1 || continue
        import_image "$img" || fail containerd "docker save | ctr images import failed"
    done
    publish
    say "the node is up already ($apiserver); KUBECONFIG=$repo/.cluster/kubeconfig"
    exit 0
fi

# Whatever a previous node left (stopped, crashed or SIGKILLed): processes, mounts, rules.
down

# --- a fresh node: state kept across runs is the PKI and containerd's images ---------------
rm -rf "$state/etcd" "$state/kubelet" "$state/pod-logs" "$state/cni-ipam"
mkdir -p "$state" "$run/pids" "$logs" "$pki" "$state/cni" "$state/cni-ipam" "$state/pod-logs"
for piece in "${pieces[@]}"; do : >"$logs/$piece.log"; done

# pause: static, cached by the hash of its source
pause_dir="$cache/bin/pause-$(sha256sum "$repo/.ci/cluster/pause.c" | cut -c1-12)"
if [ ! -x "$pause_dir/pause" ]; then
    mkdir -p "$pause_dir"
    gcc -static -Os -s -o "$pause_dir/pause" "$repo/.ci/cluster/pause.c" 2>"$logs/pause.log" ||
        fail pause "gcc -static could not build it"
fi
pause_image="initkit.local/pause:$(basename "$pause_dir" | cut -d- -f2)"

# --- PKI (openssl): a CA, the serving certificates, a client certificate per component --------
cert() { # name subject [extensions]: an EC key and a certificate signed by the CA
    local name=$1 subj=$2 ext=${3:-} extfile
    [ -s "$pki/$name.crt" ] && openssl x509 -checkend 86400 -noout -in "$pki/$name.crt" >/dev/null && return 0
    echo "== $name" >&2
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$pki/$name.key" || return 1
    extfile="$pki/$name.ext"
    printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n%s\n' "$ext" >"$extfile"
    openssl req -new -key "$pki/$name.key" -subj "$subj" -out "$pki/$name.csr" || return 1
    openssl x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial -days 3650 \
        -extfile "$extfile" -out "$pki/$name.crt" || return 1
    rm -f "$extfile" "$pki/$name.csr"
}
make_pki() { # every step returns its failure: set -e does not reach into `make_pki || fail`
    if [ ! -s "$pki/ca.crt" ] || ! openssl x509 -checkend 86400 -noout -in "$pki/ca.crt" >/dev/null; then
        rm -f "$pki"/*
        openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$pki/ca.key" || return 1
        openssl req -x509 -new -key "$pki/ca.key" -subj "/CN=initkit-cluster-ca" -days 3650 \
            -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
            -out "$pki/ca.crt" || return 1
    fi
    local server="extendedKeyUsage=serverAuth" client="extendedKeyUsage=clientAuth"
    cert apiserver "/CN=kube-apiserver" "$server
subjectAltName=DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost,IP:$gateway,IP:$service_apiserver_ip,IP:127.0.0.1" || return 1
    cert etcd "/CN=initkit-etcd" "extendedKeyUsage=serverAuth,clientAuth
subjectAltName=DNS:localhost,IP:127.0.0.1" || return 1
    cert kubelet-serving "/CN=$node" "$server
subjectAltName=DNS:$node,IP:$gateway" || return 1
    cert apiserver-etcd-client "/CN=kube-apiserver-etcd-client" "$client" || return 1
    cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "$client" || return 1
    cert admin "/O=system:masters/CN=initkit-admin" "$client" || return 1
    cert kubelet "/O=system:nodes/CN=system:node:$node" "$client" || return 1
    cert controller-manager "/CN=system:kube-controller-manager" "$client" || return 1
    cert scheduler "/CN=system:kube-scheduler" "$client" || return 1
    cert kube-proxy "/CN=system:kube-proxy" "$client" || return 1
    cert coredns "/CN=initkit:coredns" "$client" || return 1
    if [ ! -s "$pki/sa.key" ]; then
        openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$pki/sa.key" || return 1
        openssl pkey -in "$pki/sa.key" -pubout -out "$pki/sa.pub" || return 1
    fi
}
kubeconfig() { # name: a kubeconfig for that client certificate, everything embedded
    local b64='base64 -w0'
    cat >"$state/$1.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: initkit
  cluster: {server: "$apiserver", certificate-authority-data: $($b64 <"$pki/ca.crt")}
users:
- name: $1
  user: {client-certificate-data: $($b64 <"$pki/$1.crt"), client-key-data: $($b64 <"$pki/$1.key")}
contexts:
- name: initkit
  context: {cluster: initkit, user: $1, namespace: default}
current-context: initkit
EOF
    chmod 600 "$state/$1.kubeconfig"
}
(umask 077 && make_pki) 2>"$logs/pki.log" || fail pki "openssl could not make the certificates in $pki"
for who in admin kubelet controller-manager scheduler kube-proxy coredns; do kubeconfig "$who"; done

# --- network: cni0 before anything starts, the CNI config in a folder of its own ------------
ip link add "$bridge" type bridge 2>"$logs/network.log" || fail network "cannot create the bridge $bridge"
ip addr add "$gateway/24" dev "$bridge" && ip link set "$bridge" up || fail network "cannot address $bridge"
modprobe br_netfilter 2>/dev/null || true
echo 1 >/proc/sys/net/ipv4/ip_forward
[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ] ||
    fail network "no /proc/sys/net/bridge/bridge-nf-call-iptables (the br_netfilter module)"
echo 1 >/proc/sys/net/bridge/bridge-nf-call-iptables
# bridge, then portmap, then firewall: dockerd's FORWARD policy is DROP, and the firewall
# plugin lets the pods' traffic through. No ipMasq: pod traffic is not NATed off the machine.
cat >"$state/cni/10-initkit.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "initkit-cluster",
  "plugins": [
    {"type": "bridge", "bridge": "$bridge", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": "$state/cni-ipam",
              "ranges": [[{"subnet": "$pod_cidr", "gateway": "$gateway"}]],
              "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}},
    {"type": "firewall"}
  ]
}
EOF
# Pods with dnsPolicy Default get this, not the host's resolver: names stay on the machine.
echo "nameserver $gateway" >"$state/resolv.conf"

# --- etcd and containerd (in parallel), then the apiserver ---------------------------------
start_piece etcd --name initkit --data-dir "$state/etcd" --unsafe-no-fsync \
    --listen-client-urls "https://127.0.0.1:$etcd_port" --advertise-client-urls "https://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$etcd_peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer_port" \
    --initial-cluster "initkit=http://127.0.0.1:$etcd_peer_port" \
    --cert-file "$pki/etcd.crt" --key-file "$pki/etcd.key" --client-cert-auth --trusted-ca-file "$pki/ca.crt"

cat >"$state/containerd.toml" <<EOF
version = 3
root = "$state/containerd"
state = "$run/containerd"
[grpc]
  address = "$sock"
[ttrpc]
  address = "$sock.ttrpc"
[plugins.'io.containerd.internal.v1.opt']
  path = "$state/containerd-opt"
[plugins.'io.containerd.nri.v1.nri']
  disable = true
[plugins.'io.containerd.cri.v1.images'.pinned_images]
  sandbox = "$pause_image"
[plugins.'io.containerd.cri.v1.runtime']
  # no CAP_SYS_RESOURCE in some VMs: lowering oom_score_adj fails every sandbox otherwise
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
[plugins.'io.containerd.cri.v1.runtime'.cni]
  bin_dirs = ["/usr/lib/cni"]
  conf_dir = "$state/cni"
  max_conf_num = 1
[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
  BinaryName = "$rbin/runc"
  SystemdCgroup = false
EOF
PATH="$cbin:$rbin:$PATH" start_piece containerd --config "$state/containerd.toml"

wait_for() { # piece seconds what command...: until the command succeeds, or the piece exits
    local piece=$1 seconds=$2 what=$3 tenths=$(($2 * 10))
    shift 3
    until "$@" >/dev/null 2>&1; do
        pid_of "$piece" >/dev/null || fail "$piece" "it exited before $what"
        tenths=$((tenths - 1))
        [ "$tenths" -gt 0 ] || fail "$piece" "no $what within ${seconds}s"
        sleep 0.1
    done
}
curl_etcd=(curl -sf --cacert "$pki/ca.crt" --cert "$pki/apiserver-etcd-client.crt" --key "$pki/apiserver-etcd-client.key")
wait_for etcd 60 "a healthy /health" "${curl_etcd[@]}" "https://127.0.0.1:$etcd_port/health"

start_piece kube-apiserver --bind-address "$gateway" --advertise-address "$gateway" --secure-port "$apiserver_port" \
    --etcd-servers "https://127.0.0.1:$etcd_port" --etcd-cafile "$pki/ca.crt" \
    --etcd-certfile "$pki/apiserver-etcd-client.crt" --etcd-keyfile "$pki/apiserver-etcd-client.key" \
    --client-ca-file "$pki/ca.crt" --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
    --kubelet-client-certificate "$pki/apiserver-kubelet-client.crt" --kubelet-client-key "$pki/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority "$pki/ca.crt" --kubelet-preferred-address-types InternalIP \
    --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-cluster-ip-range "$service_cidr" --authorization-mode Node,RBAC \
    --enable-admission-plugins NodeRestriction,PodSecurity --allow-privileged=true \
    --cert-dir "$state/apiserver-certs" --profiling=false

# --- images: pause and the project's, into the node's containerd ---------------------------
wait_for containerd 30 "its socket answering" "$cbin/ctr" -a "$sock" version
if ! docker image inspect "$pause_image" >/dev/null 2>&1; then
    tar -C "$pause_dir" -c pause | docker import -c 'ENTRYPOINT ["/pause"]' -c 'USER 65535:65535' - "$pause_image" \
        >"$logs/pause.log" 2>&1 || fail pause "docker import failed"
fi
for img in initkit:dev initkit:dev-slim; do
    docker image inspect "$img" >/dev/null 2>&1 && continue
    say "$img is missing: make images"
    make -C "$repo" images >"$logs/images.log" 2>&1 || fail images "make images failed"
done
import_image "$pause_image" initkit:dev initkit:dev-slim || fail containerd "docker save | ctr images import failed"
# A fresh cluster: no container of an earlier node's pods is left in containerd's records.
for c in $("${ctr[@]}" containers ls -q 2>/dev/null); do "${ctr[@]}" containers rm "$c" >/dev/null 2>&1 || true; done

kubectl_ready() { "${kubectl_admin[@]}" get --raw /readyz; }
wait_for kube-apiserver 90 "a ready /readyz" kubectl_ready

# CoreDNS reads Services, EndpointSlices and Namespaces: only that, bound to its own user.
"${kubectl_admin[@]}" apply -f - >>"$logs/kube-apiserver.log" 2>&1 <<EOF || fail kube-apiserver "kubectl apply of CoreDNS's RBAC was refused"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "initkit:coredns"}
rules:
- {apiGroups: [""], resources: [services, namespaces, endpoints], verbs: [list, watch]}
- {apiGroups: [discovery.k8s.io], resources: [endpointslices], verbs: [list, watch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "initkit:coredns"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "initkit:coredns"}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: "initkit:coredns"}]
EOF

# --- the rest ------------------------------------------------------------------------------
start_piece kube-controller-manager --kubeconfig "$state/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$state/controller-manager.kubeconfig" \
    --authorization-kubeconfig "$state/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --leader-elect=false --use-service-account-credentials \
    --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
    --cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key" \
    --service-cluster-ip-range "$service_cidr" --profiling=false
start_piece kube-scheduler --kubeconfig "$state/scheduler.kubeconfig" \
    --authentication-kubeconfig "$state/scheduler.kubeconfig" --authorization-kubeconfig "$state/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --leader-elect=false --profiling=false

cat >"$state/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# this host may have cgroup v1 (Debian 12 in a VM): refused by default since 1.35
failCgroupV1: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://$sock
address: $gateway
port: 10250
healthzBindAddress: 127.0.0.1
readOnlyPort: 0
tlsCertFile: $pki/kubelet-serving.crt
tlsPrivateKeyFile: $pki/kubelet-serving.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $pki/ca.crt}
authorization: {mode: Webhook}
clusterDomain: cluster.local
clusterDNS: [$gateway]
resolvConf: $state/resolv.conf
podLogsDir: $state/pod-logs
failSwapOn: false
rotateCertificates: false
serializeImagePulls: false
# the imported images cannot be pulled again: never collect them, never evict for disk
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%}
EOF
start_piece kubelet --config "$state/kubelet.yaml" --kubeconfig "$state/kubelet.kubeconfig" \
    --root-dir "$state/kubelet" --hostname-override "$node" --node-ip "$gateway"

cat >"$state/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
hostnameOverride: $node
clusterCIDR: $pod_cidr
clientConnection: {kubeconfig: $state/kube-proxy.kubeconfig}
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: ["$gateway/32"]
conntrack: {maxPerCore: 0}
EOF
start_piece kube-proxy --config "$state/kube-proxy.yaml"

cat >"$state/Corefile" <<EOF
.:53 {
    bind $gateway
    errors
    ready 127.0.0.1:$coredns_ready_port
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig $state/coredns.kubeconfig initkit
    }
}
EOF
start_piece coredns -conf "$state/Corefile"

node_ready() {
    [ "$("${kubectl_admin[@]}" get node "$node" \
        -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" = True ]
}
wait_for coredns 60 "a ready /ready" curl -sf "http://127.0.0.1:$coredns_ready_port/ready"
wait_for kubelet 120 "node $node Ready" node_ready
for piece in kube-controller-manager kube-scheduler kube-proxy; do
    pid_of "$piece" >/dev/null || fail "$piece" "it exited"
done
wait_for kube-controller-manager 60 "the default ServiceAccount" "${kubectl_admin[@]}" get serviceaccount default -n default

publish
say "node $node Ready in $((($(date +%s%N) - started) / 1000000)) ms ($apiserver); KUBECONFIG=$repo/.cluster/kubeconfig"
