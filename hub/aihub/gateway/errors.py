"""The errors a student sees, in the OpenAI format every client already understands.

    {"error": {"message": "...", "type": "...", "code": "..."}}

The message is one line that says what to do (the `%%ai` magic prints it as is). It
never holds a key or a token: anything that came from outside (a vendor's error body)
goes through `clean`, which removes every secret the gateway knows and anything shaped
like a key (sk-..., nvapi-..., Bearer ...), using the providers package's scrubber.
"""

from __future__ import annotations

import json
from typing import Iterable, Optional

from aihub_providers.errors import GATEWAY_ERROR_HEADER as GATEWAY_HEADER
from aihub_providers.errors import one_line, scrub

# Responses made by the gateway itself (not a vendor's) carry GATEWAY_HEADER, so a client
# can show the message as it is rather than wrap it in a vendor's name. Its home is the
# providers package, the reader, which students' images install without the hub's.

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}


class GatewayError(Exception):
    """A request the gateway answers itself, with an HTTP status and one line."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str,
        *,
        type: Optional[str] = None,
        headers: Optional[dict[str, str]] = None,
        own: bool = True,
    ):
        super().__init__(message)
        self.status = status
        self.message = one_line(message, 500)
        self.code = code
        self.type = type or _TYPES.get(status) or ("upstream_error" if status in (502, 504) else "server_error")
        self.headers = headers or {}
        self.own = own  # the gateway's own words (False: a vendor's, passed on)

    def body(self) -> bytes:
        return error_body(self.message, self.type, self.code)


def error_body(message: str, type: str, code: Optional[str]) -> bytes:
    """The JSON error as one line of bytes."""
    payload = {"error": {"message": message, "type": type, "code": code}}
    # backslashreplace: a lone surrogate a vendor sent becomes its JSON escape (\ud800).
    return json.dumps(payload, ensure_ascii=False).encode("utf-8", "backslashreplace")


def clean(text: object, secrets: Iterable[str] = (), limit: int = 300) -> str:
    """Outside text made safe to repeat: secrets removed, one line, bounded length."""
    return one_line(scrub(str(text), secrets), limit)
