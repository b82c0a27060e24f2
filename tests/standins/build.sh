#!/usr/bin/env bash
# Builds local stand-ins for the official images the bundle names, for machines that
# cannot pull from a registry: a Debian base made by debootstrap from Debian's packages
# (debian/), then python and postgres images with the official images' contracts.
# Each image carries a hash of its recipe folder (and of what it is built on) as a label
# and is rebuilt only when that changes, so a second run takes about a second.
#   tests/standins/build.sh              DEBIAN_MIRROR=http://host/debian for a mirror
#   tests/standins/build.sh IMAGE...     only these (and the base), e.g. aihub-standin/postgres:15
set -euo pipefail
cd "$(dirname "$0")"
images=(aihub-standin/python:3.11 aihub-standin/postgres:15)
[ $# -eq 0 ] || images=("$@")
for image in "${images[@]}"; do
    folder=${image#aihub-standin/}; folder=${folder%:*}
    [ -f "$folder/Dockerfile" ] || { echo "build.sh: no stand-in $image (no tests/standins/$folder/Dockerfile)" >&2; exit 2; }
done
started=$SECONDS
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
mirror=${mirror%/}
base=aihub-standin/debian:bookworm
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
stale=()

# Names, executable bits and contents of a folder's files, plus any extra words.
recipe_hash() {
    local folder=$1; shift
    ( cd "$folder"
      find . -type f | LC_ALL=C sort | while read -r f; do
          printf '%s %s\n' "$([ -x "$f" ] && echo x || echo -)" "$(sha256sum < "$f")"; echo "$f"
      done
      echo "$@" ) | sha256sum | cut -c1-16
}
label() { docker image inspect -f '{{ index .Config.Labels "aihub.standin.recipe" }}' "$1" 2>/dev/null || true; }
image_id() { docker image inspect -f '{{ .Id }}' "$1" 2>/dev/null || true; }
# Quiet on success; on failure, the whole log, since that is what one needs to see.
quietly() { "$@" > "$tmp/log" 2>&1 || { cat "$tmp/log" >&2; echo "failed: $*" >&2; exit 1; }; }

hash=$(recipe_hash debian "$mirror")
if [ "$(label "$base")" = "$hash" ]; then
    echo "$base: up to date"
else
    step=$SECONDS old=$(image_id "$base")
    quietly debootstrap --variant=minbase bookworm "$tmp/rootfs" "$mirror"
    bash debian/slim.sh "$tmp/rootfs" "$mirror"
    tar -C "$tmp/rootfs" -c . | docker import --change 'CMD ["bash"]' \
        --change "LABEL aihub.standin.recipe=$hash" - "$base" > /dev/null
    rm -rf "$tmp/rootfs"
    [ -z "$old" ] || stale+=("$old")
    echo "$base: built in $((SECONDS - step)) s"
fi

base_id=$(image_id "$base")
for image in "${images[@]}"; do
    folder=${image#aihub-standin/}; folder=${folder%:*}
    hash=$(recipe_hash "$folder" "$base_id")
    if [ "$(label "$image")" = "$hash" ]; then
        echo "$image: up to date"
        continue
    fi
    step=$SECONDS old=$(image_id "$image")
    quietly docker build --label "aihub.standin.recipe=$hash" --build-arg "BASE_IMAGE=$base" -t "$image" "$folder"
    [ -z "$old" ] || stale=("$old" "${stale[@]}")
    echo "$image: built in $((SECONDS - step)) s"
done

# Replaced images, newest first so a base goes after the images built on it; any still
# used by a container stays.
for id in "${stale[@]}"; do docker rmi "$id" > /dev/null 2>&1 || true; done
echo "stand-ins ready in $((SECONDS - started)) s"
