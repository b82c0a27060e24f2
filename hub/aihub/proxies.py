"""Which calls go through the site's proxy: one rule for students' containers and the gateway.

With USE_AI_PROXY=true, calls to AI vendors go through AI_PROXY_URL (which may carry a
login: http://user:p%40ss@proxy:3128, percent-encoded). Internal names never do: the
hub's services on the users network, Ollama, the container itself, and AI_NO_PROXY.
Students' clients get this as HTTP(S)_PROXY/NO_PROXY (aihub.user_env); the gateway's
HTTP client gets it through GatewayConfig (aihub.gateway.upstream), never os.environ.
"""

from __future__ import annotations

import ipaddress
from types import SimpleNamespace
from typing import Iterable, Optional
from urllib.parse import urlsplit

INTERNAL_HOSTS = ("localhost", "127.0.0.1", "::1", "hub", "gateway", "ollama")


def proxy_url(settings: SimpleNamespace) -> Optional[str]:
    """The proxy for vendor calls, or None for direct connections."""
    return settings.ai_proxy_url if settings.use_ai_proxy else None


def no_proxy_hosts(settings: SimpleNamespace) -> tuple[str, ...]:
    """Hosts, domains and networks reached directly, in NO_PROXY's spelling."""
    ollama_host = urlsplit(settings.ollama_base_url).hostname
    return tuple(dict.fromkeys((*INTERNAL_HOSTS, ollama_host, *settings.ai_no_proxy)))


def bypasses_proxy(host: str, no_proxy: Iterable[str]) -> bool:
    """True when `host` matches a NO_PROXY entry, read as curl and Python's clients read
    it: a name matches itself and its subdomains (`example.edu`, `.example.edu` and
    `*.example.edu` alike), an address itself, a network (10.0.0.0/8) its addresses."""
    host = host.strip("[]").lower()
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for entry in no_proxy:
        entry = entry.strip().lower()
        if entry == "*":
            return True
        if "/" in entry:
            try:
                if address is not None and address in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                pass
            continue
        name = entry.strip("[]").lstrip("*").lstrip(".")
        if name and (host == name or host.endswith("." + name)):
            return True
    return False
