"""What the gateway's logs may say: never a token or a key.

tornado's HTTP server logs a malformed request with the header value it choked on
("Malformed HTTP message from ...: Invalid header value 'Bearer <token>\\r'"), and a
traceback may quote anything. `hide_secrets` puts a filter on tornado's loggers and the
gateway's own that rewrites each record before any handler formats it: a header value
tornado quotes is dropped, and every known secret and anything shaped like a key or a
token (aihub_providers' scrubber: Bearer ..., sk-..., token=...) becomes ***.
"""

from __future__ import annotations

import logging
import re
from typing import Iterable

from aihub_providers.errors import scrub

LOGGERS = ("tornado.access", "tornado.application", "tornado.general", "aihub.gateway", "asyncio")
# tornado's httputil: "Invalid header value %r", "Invalid header name %r", "Invalid Host header: %r"...
_QUOTED_HEADER = re.compile(r"((?:header (?:value|name)|Host header|host headers not allowed|Content-Lengths)"
                            r":? ).*", re.IGNORECASE | re.DOTALL)


class HideSecrets(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def hide(self, text: str) -> str:
        return scrub(_QUOTED_HEADER.sub(r"\1(value hidden)", text), self.secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed log call: the handler reports it, as without us
            return True
        hidden = self.hide(message)
        if hidden != message:
            record.msg, record.args = hidden, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = self.hide(logging.Formatter().formatException(record.exc_info))
        return True


FILTER = HideSecrets()  # one for the process: several gateways (tests) share it


def hide_secrets(secrets: Iterable[str]) -> None:
    """Install the filter (once) and teach it these secret values."""
    FILTER.secrets.update(s for s in secrets if s)
    for name in LOGGERS:
        logging.getLogger(name).addFilter(FILTER)
