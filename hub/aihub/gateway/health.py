"""`python -m aihub.gateway.health`: exit 0 when the gateway in this container answers.

docker-compose.yml's healthcheck runs this, so the port is written only in
aihub.gateway.config.
"""

from __future__ import annotations

import sys
import urllib.request

from .config import PORT


def main() -> int:
    # Straight to the port: a proxy from the site's Docker settings must not be asked.
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        direct.open(f"http://127.0.0.1:{PORT}/health", timeout=4)
    except OSError as error:
        print(f"aihub: AI gateway not healthy: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
