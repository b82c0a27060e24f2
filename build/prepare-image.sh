#!/bin/sh
# First step of every image this bundle builds, so networks behind a firewall or a
# TLS-intercepting proxy work: use the admin's Debian mirror (DEBIAN_MIRROR) and Python
# package index (PIP_INDEX_URL), install the Debian packages named as arguments, and
# trust every certs/*.crt (copied to /usr/local/share/ca-certificates/aihub/ first).
# The pip settings go to /etc/pip.conf, so students' own `pip install` uses them too.
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
cat > /etc/pip.conf <<PIP
[global]
index-url = ${PIP_INDEX_URL:-https://pypi.org/simple}
cert = /etc/ssl/certs/ca-certificates.crt
no-cache-dir = true
disable-pip-version-check = true
PIP
