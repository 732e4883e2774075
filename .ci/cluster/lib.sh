# Shared by up.sh and down.sh (sourced): where the node's files live, and how its processes
# are started, checked and stopped. One node per machine: the bridge, ports and iptables
# chains are machine-wide, so the state lives outside the clone, in folders of its own.
# shellcheck shell=bash

cache=${INITKIT_CLUSTER_CACHE:-/var/cache/initkit-cluster}
state=${INITKIT_CLUSTER_STATE:-/var/lib/initkit-cluster}  # etcd, PKI, containerd root, kubelet root, logs
run=${INITKIT_CLUSTER_RUN:-/run/initkit-cluster}          # sockets, pid files, containerd state
logs="$state/log"
pki="$state/pki"

node=initkit-node
bridge=cni0
gateway=10.244.0.1            # cni0's address: the apiserver, kubelet and CoreDNS listen here
pod_cidr=10.244.0.0/24
service_cidr=10.96.0.0/16
service_apiserver_ip=10.96.0.1  # the first address of service_cidr: the kubernetes Service
etcd_port=12379 etcd_peer_port=12380 apiserver_port=6443 coredns_ready_port=18181
sock="$run/containerd.sock"
apiserver="https://$gateway:$apiserver_port"

K8S=v1.37.2 ETCD=v3.6.16 CONTAINERD=v2.4.2 RUNC=v1.5.3 COREDNS=v1.15.0
kbin="$cache/bin/kubernetes-$K8S"
ebin="$cache/bin/etcd-$ETCD"
cbin="$cache/bin/containerd-$CONTAINERD"
rbin="$cache/bin/runc-$RUNC"
dbin="$cache/bin/coredns-$COREDNS"

# The pieces, in start order; down.sh stops them in its own order.
pieces=(etcd containerd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy coredns)

exe_of() { # piece -> its binary
    case $1 in
        etcd) echo "$ebin/etcd" ;;
        containerd) echo "$cbin/containerd" ;;
        coredns) echo "$dbin/coredns" ;;
        *) echo "$kbin/$1" ;;
    esac
}

say() { echo "cluster: $*" >&2; }

# The one line a failure prints: the piece, why (its log's last error line) and the log.
fail() { # piece reason
    local piece=$1 why=$2 log="$logs/$1.log" last=""
    if [ -f "$log" ]; then
        # the last error line; of a JSON log line (etcd's), only its message and error
        last=$(grep -aiE 'error|fatal|fail|panic|refus|denied|invalid' "$log" | tail -n 1 |
            sed -E 's/^\{.*"msg":"([^"]*)".*"error":"([^"]*)".*/\1: \2/' | cut -c1-300)
    fi
    echo "cluster: $piece failed: $why${last:+: $last} (log: $log)" >&2
    exit 1
}

pid_of() { # piece -> pid of the process running its binary (recorded, else found in /proc)
    local pidfile="$run/pids/$1.pid" exe pid
    exe=$(exe_of "$1")
    pid=$(cat "$pidfile" 2>/dev/null || true)
    if [ -n "$pid" ] && [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$exe" ]; then
        echo "$pid"
        return 0
    fi
    pid=$(find /proc/[0-9]*/exe -maxdepth 0 -printf '%l %p\n' 2>/dev/null |
        awk -v e="$exe" '$1 == e { split($2, f, "/"); print f[3]; exit }')
    [ -n "$pid" ] && echo "$pid"
}

start_piece() { # piece args...: in its own session, output to its log, pid recorded
    local piece=$1
    shift
    mkdir -p "$logs" "$run/pids"
    echo "=== $(date -u +%FT%TZ) start" >>"$logs/$piece.log"
    setsid "$(exe_of "$piece")" "$@" </dev/null >>"$logs/$piece.log" 2>&1 &
    echo $! >"$run/pids/$piece.pid"
}

wait_gone() { # pid seconds: true once the process has exited
    local pid=$1 tenths=$(($2 * 10))
    while [ "$tenths" -gt 0 ] && kill -0 "$pid" 2>/dev/null; do
        # a zombie child of ours counts as gone
        [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" = Z ] && return 0
        sleep 0.1
        tenths=$((tenths - 1))
    done
    ! kill -0 "$pid" 2>/dev/null || [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" = Z ]
}

stop_pid() { # pid name: SIGTERM, up to 20 s, then SIGKILL; waits until it has exited
    local pid=$1 name=$2
    kill -TERM "$pid" 2>/dev/null || return 0
    if ! wait_gone "$pid" 20; then
        say "$name (pid $pid) ignored SIGTERM for 20 s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        wait_gone "$pid" 10 || say "$name (pid $pid) is still there after SIGKILL"
    fi
}

stop_piece() {
    local pid tries=3
    while [ "$tries" -gt 0 ] && pid=$(pid_of "$1"); do
        stop_pid "$pid" "$1"
        tries=$((tries - 1))
    done
    rm -f "$run/pids/$1.pid"
}

# The shims of our containerd (they outlive it): found by the address they were given.
shim_pids() {
    local p
    for p in $(pgrep -f -- "containerd-shim-runc-v2 .*-address $sock" || true); do
        [ "$(readlink "/proc/$p/exe" 2>/dev/null)" = "$cbin/containerd-shim-runc-v2" ] && echo "$p"
    done
    return 0
}

# Processes in the kubelet's pod cgroups (kubepods): the containers, when their shims are gone.
pod_pids() {
    grep -ls ':/kubepods' /proc/[0-9]*/cgroup 2>/dev/null | cut -d/ -f3 || true
}

# Our mounts, deepest first: the kubelet's volumes, containerd's rootfs and network namespaces.
our_mounts() {
    awk -v s="$state/" -v r="$run/" '
        { p = $5; gsub(/\\040/, " ", p) }
        index(p "/", s) == 1 || index(p "/", r) == 1 { print length(p) "\t" p }' /proc/self/mountinfo |
        sort -rn | cut -f2- | uniq
}

# iptables: the chains the kubelet and kube-proxy made (KUBE-*), and the CNI plugins' rules for
# the pod network (other CNI users, buildah's, keep theirs).
clean_iptables() {
    local cmd t rule chain
    for cmd in iptables ip6tables; do
        command -v "$cmd" >/dev/null || continue
        for t in filter nat mangle raw; do
            "$cmd" -t "$t" -S >/dev/null 2>&1 || continue
            # jumps into KUBE-* from chains that are not ours
            "$cmd" -t "$t" -S | { grep -E -- '-j KUBE-' || true; } | { grep -vE '^-A KUBE-' || true; } | while read -r rule; do
                eval "$cmd -t $t ${rule/#-A/-D}" 2>/dev/null || true
            done
            # the CNI rules about the pod network, and the per-pod chains they jump to
            "$cmd" -t "$t" -S | { grep -F -- "${pod_cidr%.*}." || true; } | { grep -E '^-A (POSTROUTING|CNI-)' || true; } | while read -r rule; do
                eval "$cmd -t $t ${rule/#-A/-D}" 2>/dev/null || true
            done
            for chain in $("$cmd" -t "$t" -S | awk '$1 == "-N" && $2 ~ /^KUBE-/ {print $2}'); do
                "$cmd" -t "$t" -F "$chain" 2>/dev/null || true
            done
            # the firewall plugin's chains, once no CNI user has a rule in them (it remakes them)
            if "$cmd" -t "$t" -S CNI-FORWARD >/dev/null 2>&1 &&
                [ "$("$cmd" -t "$t" -S CNI-FORWARD 2>/dev/null | grep -vc -e '^-N' -e 'CNI-ADMIN')" = 0 ] &&
                [ "$("$cmd" -t "$t" -S CNI-ADMIN 2>/dev/null | grep -vc '^-N')" = 0 ]; then
                "$cmd" -t "$t" -D FORWARD -m comment --comment "CNI firewall plugin rules" -j CNI-FORWARD 2>/dev/null || true
                { "$cmd" -t "$t" -F CNI-FORWARD && "$cmd" -t "$t" -X CNI-FORWARD && "$cmd" -t "$t" -X CNI-ADMIN; } 2>/dev/null || true
            fi
            for chain in $("$cmd" -t "$t" -S | awk '$1 == "-N" && $2 ~ /^KUBE-/ {print $2}'); do
                "$cmd" -t "$t" -X "$chain" 2>/dev/null || true
            done
        done
    done
}

# Everything up.sh started, in order, each waited for; then mounts, iptables, the bridge.
# Also what a SIGKILLed node leaves: stale shims, pod processes, mounts and rules.
down() {
    local p
    mkdir -p "$logs"
    stop_piece kubelet
    if pid_of containerd >/dev/null; then
        # the pods' containers, through containerd, so the shims exit on their own
        local ctr=("$cbin/ctr" -a "$sock" -n k8s.io) task
        for task in $("${ctr[@]}" tasks ls -q 2>/dev/null); do
            "${ctr[@]}" tasks kill -a -s SIGKILL "$task" >/dev/null 2>&1 || true
        done
        for task in $("${ctr[@]}" tasks ls -q 2>/dev/null); do
            "${ctr[@]}" tasks rm -f "$task" >/dev/null 2>&1 || true
        done
    fi
    for p in $(shim_pids); do stop_pid "$p" containerd-shim-runc-v2; done
    for p in $(pod_pids); do kill -KILL "$p" 2>/dev/null || true; done
    for p in $(pod_pids); do wait_gone "$p" 10 || say "pod process $p is still there"; done
    stop_piece containerd
    stop_piece kube-proxy
    stop_piece coredns
    stop_piece kube-scheduler
    stop_piece kube-controller-manager
    stop_piece kube-apiserver
    stop_piece etcd
    local m
    while read -r m; do
        [ -n "$m" ] || continue
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || say "could not unmount $m"
    done < <(our_mounts)
    if [ -x "$kbin/kube-proxy" ]; then
        "$kbin/kube-proxy" --cleanup >>"$logs/kube-proxy.log" 2>&1 || true
    fi
    clean_iptables
    ip link del "$bridge" 2>/dev/null || true
    # the kubelet's pod cgroups (cgroupfs driver), empty now
    find /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods -depth -type d -exec rmdir {} + 2>/dev/null || true
    # libcni's cached results for our pods (their network and loopback), which a killed pod keeps
    local result id
    for result in /var/lib/cni/results/initkit-cluster-*-eth0; do
        [ -e "$result" ] || continue
        id=${result#/var/lib/cni/results/initkit-cluster-}
        rm -f "$result" "/var/lib/cni/results/cni-loopback-${id%-eth0}-lo"
    done
    # the kubelet's links to our pod logs
    find /var/log/containers -maxdepth 1 -type l -lname "$state/*" -delete 2>/dev/null || true
    rm -rf "$run"
}
