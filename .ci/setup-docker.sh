#!/usr/bin/env bash
# Idempotent: install Debian's docker.io (+ tools the image tests need), start
# dockerd if it is not answering, and make a debian:trixie-slim base image from
# Debian's packages (mmdebstrap + docker import) when the engine lacks it.
# Uses Debian's docker client (/usr/bin/docker): the newer client some machines
# carry earlier on PATH has no buildx, so DOCKER_BUILDKIT=1 fails with it.
set -euo pipefail

DOCKER=/usr/bin/docker
BASE_IMAGE=${BASE_IMAGE:-debian:trixie-slim}
LOG=${DOCKERD_LOG:-/tmp/dockerd.log}

need_pkgs=()
for pkg in docker.io mmdebstrap dnsmasq-base podman catatonit git iproute2 util-linux; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' \
        || need_pkgs+=("$pkg")
done
if [ "${#need_pkgs[@]}" -gt 0 ]; then
    echo "setup-docker: installing ${need_pkgs[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${need_pkgs[@]}" >/dev/null
fi

if ! "$DOCKER" info >/dev/null 2>&1; then
    echo "setup-docker: starting dockerd (log: $LOG)"
    setsid dockerd >"$LOG" 2>&1 < /dev/null &
    for _ in $(seq 1 120); do
        "$DOCKER" info >/dev/null 2>&1 && break
        sleep 0.5
    done
    if ! "$DOCKER" info >/dev/null 2>&1; then
        echo "setup-docker: dockerd did not come up" >&2
        tail -n 50 "$LOG" >&2 || true
        exit 1
    fi
fi

if ! "$DOCKER" image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    echo "setup-docker: making $BASE_IMAGE with mmdebstrap"
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    bash "$(dirname "${BASH_SOURCE[0]}")"/debian-rootfs.sh amd64 "$work/rootfs.tar"
    "$DOCKER" import --change 'CMD ["bash"]' \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        "$work/rootfs.tar" "$BASE_IMAGE" >/dev/null
fi
echo "setup-docker: $("$DOCKER" version --format '{{.Server.Version}}') ready, $BASE_IMAGE present"
