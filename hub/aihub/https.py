"""HTTPS in front of the hub: Caddy's configuration, made from the HTTPS_* settings.

docker-compose.https.yml runs Caddy (image built from https/) on the stack's front
network, before the hub. The `secrets` job checks first (start_problems): a wrong HTTPS
setting or a missing certificate file stops `docker compose up` there with one line
naming the variable, like any wrong setting. Caddy's container then starts with
`python -m aihub.https serve`: that checks the same again, writes the Caddyfile and
becomes Caddy. `python -m aihub.https validate` writes the same Caddyfile and runs
`caddy validate` on it (the README's check for every mode; the only check of `acme`
that runs without a public domain).

The hub itself learns only its public address (`public_url`): JupyterHub then marks its
cookies Secure and sends browsers to https:// addresses.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path
from types import SimpleNamespace

from . import settings as settings_module

# The bundle's https/certs/ folder, mounted read-only (HTTPS_MODE=files).
CERTS_DIR = Path("/etc/aihub-https/certs")
CADDYFILE = Path("/etc/caddy/Caddyfile")
# Caddy reaches the hub's proxy (aihub.services.PROXY_PORT) by its compose service name
# on the front network. Not imported: aihub.services needs the database driver, which
# Caddy's image lacks; tests/unit/test_https.py keeps the two equal.
HUB_ADDRESS = "hub:8000"
# Internal mode's root certificate, which students' browsers trust, in the caddy-data
# volume (XDG_DATA_HOME=/data in https/Dockerfile); the README's command copies it out.
INTERNAL_ROOT = "/data/caddy/pki/authorities/local/root.crt"


def public_url(settings: SimpleNamespace) -> str:
    """The address students open, as JupyterHub.public_url; empty without HTTPS."""
    if settings.https_mode == "off":
        return ""
    port = "" if settings.https_port == 443 else f":{settings.https_port}"
    return f"https://{settings.https_domain}{port}/"


def cookie_options(settings: SimpleNamespace) -> dict:
    """Options of every cookie the hub sets, passed on to students' servers too."""
    return {"secure": True} if settings.https_mode != "off" else {}


def certificate_problems(settings: SimpleNamespace, certs_dir: Path | None = None) -> list[str]:
    """HTTPS_MODE=files: both files must be in https/certs/ (mounted at certs_dir)."""
    if settings.https_mode != "files":
        return []
    certs_dir = certs_dir or CERTS_DIR
    problems = []
    for name, value, what in (("HTTPS_CERT_FILE", settings.https_cert_file, "certificate"),
                              ("HTTPS_KEY_FILE", settings.https_key_file, "private key")):
        path = certs_dir / value
        if not path.is_file():
            problems.append(f"{name}={value!r}: no such file in https/certs/; copy your {what} there"
                            f" or name it in {name}; {settings_module.ENV_FILE_HINT}")
        elif b"-----BEGIN " not in path.read_bytes()[:4096]:
            problems.append(f"{name}={value!r}: https/certs/{value} is not a PEM file (-----BEGIN ...);"
                            f" convert it with openssl; {settings_module.ENV_FILE_HINT}")
    return problems


def caddyfile(settings: SimpleNamespace) -> str:
    """Caddy's configuration for the chosen mode: HTTPS on HTTPS_DOMAIN to the hub (with
    websockets), and any plain HTTP request redirected to it. Caddy listens on 443 and 80
    in its container; compose publishes them as HTTPS_PORT and HTTP_PORT."""
    options = [
        # Browsers that send no server name (an address typed as an IP) get this site.
        f"default_sni {settings.https_domain}",
        # Nothing reconfigures Caddy at run time: no admin endpoint.
        "admin off",
        # The one redirect is ours (below): Caddy's own assumes port 443 outside.
        "auto_https disable_redirects",
        # HTTP/3 would need UDP published too; browsers use HTTP/2 over TCP.
        "servers {\n\t\tprotocols h1 h2\n\t}",
    ]
    if settings.https_mode == "acme" and settings.https_email:
        options.append(f"email {settings.https_email}")
    if settings.https_mode == "internal":
        # No trust store to install the CA into inside the container; browsers get its
        # root from the caddy-data volume (README, HTTPS).
        options.append("skip_install_trust")
    site = []
    if settings.https_mode == "files":
        site.append(f"tls {CERTS_DIR / settings.https_cert_file} {CERTS_DIR / settings.https_key_file}")
    elif settings.https_mode == "internal":
        site.append("tls internal")
    site.append(f"reverse_proxy {HUB_ADDRESS}")
    # Names HTTPS_PORT, and sends every host name or address people type to the one the
    # certificate is for.
    redirect = f"redir {public_url(settings).rstrip('/')}{{uri}} 308"
    return ("{\n" + "".join(f"\t{line}\n" for line in options) + "}\n\n"
            + f"{settings.https_domain} {{\n" + "".join(f"\t{line}\n" for line in site) + "}\n\n"
            + f"http:// {{\n\t{redirect}\n}}\n")


def start_problems(settings: SimpleNamespace, environ=None, certs_dir: Path | None = None) -> list[str]:
    """What stops the stack's start (the `secrets` job, then Caddy's own start): a mode
    that disagrees with the compose files in use, or certificate files that are not there."""
    return settings_module.https_front_problems(settings, environ) or certificate_problems(settings, certs_dir)


def load_or_exit(environ=None, certs_dir: Path | None = None) -> SimpleNamespace:
    """Caddy's start: the HTTPS settings, checked; one line per problem, exit 2."""
    settings = settings_module.load_or_exit(environ, settings_module.HTTPS_SETTINGS)
    if problems := start_problems(settings, environ, certs_dir):
        settings_module.exit_on_error(settings_module.ConfigError(problems))
    return settings


def write_caddyfile(settings: SimpleNamespace, path: Path = CADDYFILE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(caddyfile(settings))
    return path


def listening() -> bool:
    """Caddy's health: it accepts connections on both ports (so its config loaded)."""
    try:
        for port in (443, 80):
            socket.create_connection(("127.0.0.1", port), timeout=3).close()
    except OSError:
        return False
    return True


def main(argv: list[str]) -> int:
    command = argv[0] if argv else ""
    if command not in ("serve", "validate", "health"):
        print("usage: python -m aihub.https serve | validate | health", file=sys.stderr)
        return 2
    if command == "health":
        return 0 if listening() else 1
    settings = load_or_exit()
    path = write_caddyfile(settings)
    caddy = ["caddy", "run" if command == "serve" else "validate", "--config", str(path), "--adapter", "caddyfile"]
    if command == "serve":
        print(f"aihub: HTTPS_MODE={settings.https_mode}: serving {public_url(settings)} (Caddy, {path})", flush=True)
    os.execvp(caddy[0], caddy)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
