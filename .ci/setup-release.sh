#!/usr/bin/env bash
# Idempotent machine setup for `make release` and its end-to-end test (as root, Debian):
#   - Debian packages: buildah (multi-platform builds and OCI image indexes), skopeo (registry
#     inspection), docker-registry (a local OCI registry for the tests), qemu-user-static
#     (arm64 binaries under emulation), mmdebstrap + arch-test (base images from Debian's packages,
#     for a foreign architecture too);
#   - qemu-aarch64 registered with binfmt_misc, so arm64 containers run on an amd64 host;
#   - the per-platform debian:trixie-slim stand-ins in containers-storage (buildah's store):
#     linux/amd64 copied from the Docker engine (setup-docker.sh made it), linux/arm64 made once
#     with `mmdebstrap --arch=arm64` and kept (like the amd64 one, it is not made again).
# Env: RELEASE_BASE (default localhost/initkit-base:trixie-slim; the image for platform P is
# ${RELEASE_BASE}-P, e.g. ...:trixie-slim-arm64), DEBIAN_MIRROR.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

DOCKER=/usr/bin/docker
RELEASE_BASE=${RELEASE_BASE:-localhost/initkit-base:trixie-slim}
DOCKER_BASE=${BASE_IMAGE:-debian:trixie-slim}

need=()
# containernetworking-plugins: buildah (CNI) runs RUN steps on a bridge network
for pkg in buildah skopeo docker-registry qemu-user-static mmdebstrap arch-test containernetworking-plugins; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || need+=("$pkg")
done
if [ "${#need[@]}" -gt 0 ]; then
    echo "setup-release: installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# arm64 under emulation: the kernel runs aarch64 ELF files through qemu-aarch64-static.
if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi
if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
    echo "setup-release: registering qemu-aarch64 with binfmt_misc"
    cat /usr/lib/binfmt.d/qemu-aarch64.conf >/proc/sys/fs/binfmt_misc/register
fi

have() { buildah inspect --type image "$1" >/dev/null 2>&1; }

if ! have "${RELEASE_BASE}-amd64"; then
    echo "setup-release: copying ${DOCKER_BASE} from Docker to ${RELEASE_BASE}-amd64"
    "$DOCKER" image inspect "$DOCKER_BASE" >/dev/null  # made by setup-docker.sh
    skopeo copy --quiet "docker-daemon:${DOCKER_BASE}" "containers-storage:${RELEASE_BASE}-amd64"
fi

if ! have "${RELEASE_BASE}-arm64"; then
    echo "setup-release: making ${RELEASE_BASE}-arm64 with mmdebstrap --arch=arm64 (a minute or two)"
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    bash "$(dirname "${BASH_SOURCE[0]}")"/debian-rootfs.sh arm64 "$work/rootfs.tar"
    podman import --quiet --arch arm64 --os linux \
        --change 'CMD ["bash"]' \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        "$work/rootfs.tar" "${RELEASE_BASE}-arm64" >/dev/null
fi
echo "setup-release: buildah $(buildah --version | awk '{print $3}'), skopeo, docker-registry, qemu-aarch64 ready;" \
    "bases ${RELEASE_BASE}-amd64 and -arm64 present"
