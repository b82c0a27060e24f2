#!/usr/bin/env bash
# Builds local stand-ins for the official images the bundle names, for machines that
# cannot pull from a registry: a Debian base made by debootstrap from Debian's packages,
# then python and postgres images with the official images' contracts. An image is
# rebuilt only when its folder changes (a hash of the folder is kept as a label).
set -euo pipefail
cd "$(dirname "$0")"
started=$SECONDS
base=aihub-standin/debian:bookworm
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

if docker image inspect "$base" >/dev/null 2>&1; then
    echo "$base: up to date"
else
    rootfs=$(mktemp -d)
    trap 'rm -rf "$rootfs"' EXIT
    debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >/dev/null
    tar -C "$rootfs" -c . | docker import - "$base" >/dev/null
    echo "$base: built"
fi

for folder in python postgres; do
    image="aihub-standin/$folder:$([ "$folder" = python ] && echo 3.11 || echo 15)"
    hash=$( (cd "$folder" && find . -type f -print0 | sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-16)
    current=$(docker image inspect -f '{{ index .Config.Labels "aihub.standin.hash" }}' "$image" 2>/dev/null || true)
    if [ "$current" = "$hash" ]; then
        echo "$image: up to date"
    else
        docker build -q --label "aihub.standin.hash=$hash" --build-arg "BASE_IMAGE=$base" -t "$image" "$folder" >/dev/null
        echo "$image: built"
    fi
done
echo "stand-ins ready in $((SECONDS - started)) s"
