#!/usr/bin/env bash
# The one recipe of the debian:trixie-slim stand-in, for every architecture:
#   bash .ci/debian-rootfs.sh ARCH OUT.tar
# setup-docker.sh imports it for amd64, setup-release.sh for arm64, so the two bases
# cannot drift apart. Minbase, no docs but copyright files, no locales, no apt lists.
set -euo pipefail
arch=$1 out=$2
mmdebstrap --quiet --arch="$arch" --variant=minbase \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --aptopt='Acquire::Languages "none"' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
    trixie "$out" "${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
