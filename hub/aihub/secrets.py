"""The bundle's secrets: made on first start, kept in the `secrets` volume.

There is no well-known default password anywhere. The one-shot `secrets` service runs
`python -m aihub.secrets init` before PostgreSQL, the hub and the gateway start. It
checks every setting first: a wrong one stops it with one line naming the variable, and
so stops `docker compose up` before anything starts with it. Then, for each secret, a
value set in .env wins; otherwise the value already in the volume is kept; otherwise a
new random one is made. Whatever wins is written to the volume, so PostgreSQL (through
POSTGRES_PASSWORD_FILE) and the hub always read the same value, across restarts and
`docker compose down`/`up`. Only `down -v` forgets them.

`python -m aihub.secrets admin-login` prints the admin's user name and initial password.
"""

from __future__ import annotations

import os
import secrets as random
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

from . import https, settings as settings_module

SECRETS_DIR = Path("/srv/secrets")

GENERATORS: dict[str, Callable[[], str]] = {
    "ADMIN_PASSWORD": lambda: random.token_urlsafe(12),
    "POSTGRES_PASSWORD": lambda: random.token_urlsafe(24),
    "HUB_COOKIE_SECRET": lambda: random.token_hex(32),
    "PROXY_AUTH_TOKEN": lambda: random.token_urlsafe(32),
    "GATEWAY_API_TOKEN": lambda: random.token_urlsafe(32),
    "CLASS_TOOLS_API_TOKEN": lambda: random.token_urlsafe(32),
}


def _path(directory: Path, name: str) -> Path:
    return directory / name.lower()


def ensure(settings: SimpleNamespace, directory: Path | None = None) -> dict[str, str]:
    """Write every secret to `directory` (env value, else kept, else new); return them."""
    directory = directory or SECRETS_DIR
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)  # also when the volume already existed with a wider mode
    values = {}
    for name, generate in GENERATORS.items():
        path = _path(directory, name)
        value = getattr(settings, name.lower()) or (path.read_text().strip() if path.exists() else "") or generate()
        if not path.exists() or path.read_text().strip() != value:
            # Write a private file then rename it, so a crash never leaves a
            # half-written or readable secret behind.
            partial = path.with_suffix(".partial")
            partial.unlink(missing_ok=True)
            with os.fdopen(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as file:
                file.write(value + "\n")
            partial.replace(path)
        values[name] = value
    return values


def read(directory: Path | None = None) -> dict[str, str]:
    """Read the secrets `ensure` wrote; a missing one is a one-line ConfigError."""
    directory = directory or SECRETS_DIR
    missing = [name for name in GENERATORS if not _path(directory, name).exists()]
    if missing:
        raise settings_module.ConfigError(
            [f"{', '.join(missing)} missing from {directory}; run `docker compose up secrets` first"]
        )
    return {name: _path(directory, name).read_text().strip() for name in GENERATORS}


def read_or_exit(directory: Path | None = None) -> dict[str, str]:
    try:
        return read(directory)
    except settings_module.ConfigError as error:
        settings_module.exit_on_error(error)


def main(argv: list[str], directory: Path | None = None) -> int:
    command = argv[0] if argv else ""
    if command == "init":
        settings = settings_module.load_or_exit()
        if problems := https.start_problems(settings):
            settings_module.exit_on_error(settings_module.ConfigError(problems))
        ensure(settings, directory)
        print(f"aihub: secrets ready in {directory or SECRETS_DIR}")
        return 0
    if command == "admin-login":
        settings = settings_module.load_or_exit()
        values = read_or_exit(directory)
        print(f"user:     {settings.admin_user}\npassword: {values['ADMIN_PASSWORD']}")
        return 0
    print("usage: python -m aihub.secrets init | admin-login", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
