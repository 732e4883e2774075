#!/usr/bin/env bash
# Everything the test suite needs on a fresh Debian machine, as root; idempotent.
#   Debian packages: the real servers the tests start (dnsmasq, git daemon, sshd),
#   PostgreSQL, MariaDB and Redis for wait-for's database targets (libpq5 for psycopg),
#   unshare/mount for a pod-like resolv.conf, GNU time and busybox for bench/, and the
#   single-node Kubernetes's host side (CNI plugins, iptables, conntrack, a C compiler and
#   libseccomp for runc and pause); its Go binaries are built once into a cache (cluster/build.sh);
#   then Docker + the debian:trixie-slim base (setup-docker.sh), the release tools + the arm64
#   base and qemu (setup-release.sh) and helm 3 + 4
#   (setup-helm.sh). The Python side (a venv with the test extras) is the Makefile's.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

need=()
for pkg in dnsmasq-base git openssh-server openssh-client util-linux iproute2 busybox time python3-venv make netavark aardvark-dns tinyproxy openssl \
    containernetworking-plugins iptables conntrack curl gcc libc6-dev libseccomp-dev pkg-config \
    postgresql libpq5 mariadb-server redis-server redis-tools; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || need+=("$pkg")
done
# keytool (Java) reads the JKS and PKCS#12 files of initkit certs in tests/commands/test_certs.py
command -v keytool >/dev/null || need+=(default-jre-headless)
if [ "${#need[@]}" -gt 0 ]; then
    echo "setup: installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
mkdir -p /run/sshd

bash .ci/setup-docker.sh
bash .ci/setup-release.sh
PYTHON="${PYTHON:-python3}" bash .ci/setup-helm.sh
# about 25 min on 2 cores the first time, nothing once cached (/var/cache/initkit-cluster)
bash .ci/cluster/build.sh >/dev/null
