#!/bin/sh
# First step of every image this bundle builds, so networks behind a firewall or a
# TLS-intercepting proxy work: use the admin's Debian mirror (DEBIAN_MIRROR build arg),
# install the Debian packages named as arguments, and trust every certs/*.crt
# (copied to /usr/local/share/ca-certificates/aihub/ before this runs).
set -eu
if [ -n "${DEBIAN_MIRROR:-}" ]; then
    for list in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
        if [ -f "$list" ]; then sed -i "s|http://deb.debian.org/debian|${DEBIAN_MIRROR%/}|g" "$list"; fi
    done
fi
apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates "$@"
rm -rf /var/lib/apt/lists/*
update-ca-certificates
