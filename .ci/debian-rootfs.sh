#!/usr/bin/env bash
# The one recipe of the debian:trixie-slim stand-in, for every architecture:
#   bash .ci/debian-rootfs.sh ARCH OUT.tar
# setup-docker.sh imports it for amd64, setup-release.sh for arm64, so the two bases
# cannot drift apart. Minbase, no docs but copyright files, no locales, no apt lists.
set -euo pipefail
arch=$1 out=$2
# The mirror this machine's apt already uses (a deb822 .sources URIs: line, or sources.list),
# unless DEBIAN_MIRROR says otherwise: the tree names no mirror of its own.
mirror=${DEBIAN_MIRROR:-$(
    { awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/*.sources 2>/dev/null
      awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; exit } }' /etc/apt/sources.list 2>/dev/null
    } | grep -v -- '-security' | head -n1
)}
if [ -z "$mirror" ]; then
    echo "debian-rootfs: no Debian mirror in /etc/apt/sources.list{,.d/*.sources}; set DEBIAN_MIRROR" >&2
    exit 1
fi
mmdebstrap --quiet --arch="$arch" --variant=minbase \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --aptopt='Acquire::Languages "none"' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
    trixie "$out" "$mirror"
