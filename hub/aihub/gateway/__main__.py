"""`python -m aihub.gateway`: run the AI gateway until SIGTERM (docker compose stop).

A wrong setting stops it at once with one line naming the variable (aihub.settings);
a database that stays unreachable stops it after a minute, with one line.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import Optional

from .. import secrets as secrets_module
from .. import settings as settings_module
from .app import Gateway
from .config import PORT, config_from_settings
from .db import DatabaseUnavailable


async def serve(gateway: Gateway, address: str, port: int) -> None:
    await gateway.start(address, port)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    await stopping.wait()
    logging.getLogger("aihub.gateway").info("stopping: letting running requests end")
    await gateway.stop()


def main(argv: Optional[list[str]] = None, secrets_dir: Optional[Path] = None,
         address: str = "0.0.0.0", port: int = PORT) -> int:
    if argv:
        print("usage: python -m aihub.gateway  (settings come from the environment, see .env.example)",
              file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="[%(levelname).1s %(asctime)s %(name)s] %(message)s")
    # httpx logs every request's URL at INFO: noise on every call, and a base URL may hold credentials.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    settings = settings_module.load_or_exit()
    secret = secrets_module.read_or_exit(secrets_dir)
    gateway = Gateway(config_from_settings(settings, secret))
    try:
        asyncio.run(serve(gateway, address, port))
    except DatabaseUnavailable as error:
        print(f"aihub: AI gateway: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
