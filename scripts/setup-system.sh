#!/usr/bin/env bash
# Install the system packages dbgscaffold needs on Debian 12 (bookworm), as root.
# Idempotent: safe to run again. Kernels: Debian's 6.1 (image + headers) and
# 6.12 from bookworm-backports (image + headers), so modules are checked on both.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    echo "setup-system.sh: run as root (sudo bash $0)" >&2
    exit 2
fi

export DEBIAN_FRONTEND=noninteractive

# bookworm-backports carries the 6.12 kernel; add it to the existing Debian source.
if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
        sed -i -E '0,/^Suites: bookworm( |$)/s//Suites: bookworm bookworm-backports\1/' \
            /etc/apt/sources.list.d/debian.sources
    fi
    if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
        echo 'deb http://deb.debian.org/debian bookworm-backports main' \
            > /etc/apt/sources.list.d/bookworm-backports.list
    fi
fi

apt-get update

packages=(
    build-essential make gcc libc6-dev bc kmod perl xz-utils cpio
    flex bison libelf-dev libssl-dev dwarves
    python3 python3-venv python3-pip git
    sparse
    linux-image-amd64 linux-headers-amd64 linux-source-6.1 linux-source-6.12
    linux-image-6.12-amd64 linux-headers-6.12-amd64
    busybox-static qemu-system-x86 zstd
    systemtap systemtap-runtime patch
    bubblewrap gdb
)
apt-get install -y --no-install-recommends "${packages[@]}"
