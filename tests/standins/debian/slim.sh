#!/usr/bin/env bash
# Turns a fresh `debootstrap --variant=minbase` tree into the equivalent of the official
# debian:bookworm-slim image before it is imported: the same apt sources file (so
# build/prepare-image.sh's mirror rewrite has the layout it expects), the same "slim"
# dpkg and apt settings (no docs, man pages or translations in any image built on it),
# and none of the host's files or the installer's caches.
#   slim.sh ROOTFS MIRROR
set -euo pipefail
rootfs=$1 mirror=${2%/}

# The official image lists updates and security too; mirrors carry debian-security
# beside debian, the same assumption prepare-image.sh makes.
rm -f "$rootfs/etc/apt/sources.list"
cat > "$rootfs/etc/apt/sources.list.d/debian.sources" <<SOURCES
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $mirror-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES

# Copied from the official slim image, so later installs stay small the same way.
cat > "$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<'DPKG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
DPKG
cat > "$rootfs/etc/apt/apt.conf.d/docker-clean" <<'APT'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
APT
echo 'Acquire::Languages "none";' > "$rootfs/etc/apt/apt.conf.d/docker-no-languages"
echo 'APT::AutoRemove::SuggestsImportant "false";' > "$rootfs/etc/apt/apt.conf.d/docker-autoremove-suggests"

# What the settings above would have kept out, had they been there from the start.
cd "$rootfs"
find usr/share/doc -mindepth 1 -not -type d -not -name copyright -delete
find usr/share/doc -mindepth 1 -type d -empty -delete
find usr/share/locale -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
rm -rf usr/share/man/* usr/share/info/* usr/share/groff/* usr/share/lintian/overrides/*
# debootstrap leaves its packages, apt's lists, and the host's name and resolver (Docker
# supplies both at run time); none belong in an image.
rm -rf var/cache/apt/archives/*.deb var/cache/apt/*.bin var/lib/apt/lists/* debootstrap
find var/log -type f -delete
: > etc/hostname
: > etc/resolv.conf
