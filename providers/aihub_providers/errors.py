"""Turn a failed model call into one line a student can act on.

ProviderError is the only exception our providers raise for a failed call. Its text
is one line that names the vendor and, where an admin must act, the variable in .env:

    DeepSeek is not set up: the admin must set DEEPSEEK_API_KEY in .env (then restart your server)
    DeepSeek rejected the API key (HTTP 401): check DEEPSEEK_API_KEY in .env
    DeepSeek has no model 'x'. Models: deepseek-chat, deepseek-reasoner
    DeepSeek is rate-limiting or out of quota (HTTP 429): <upstream message>, wait and retry
    DeepSeek failed (HTTP 502): try again later
    DeepSeek did not answer within 60 s (https://api.deepseek.com/v1): check the network or AI_PROXY_URL
    Cannot reach DeepSeek at https://api.deepseek.com/v1: connection refused; check the network, HTTPS_PROXY/AI_PROXY_URL

Invariant: no key or token ever reaches a message. Every text that comes from outside
(an upstream error, a URL, an exception's reason) goes through `scrub`, which removes
the key in use and anything shaped like one (sk-..., nvapi-..., Bearer ..., a URL's
user:password@).

`from_exception` maps the exceptions of a call (aihub_providers.chat_model raises
httpx's for timeouts and transport failures, APIStatusError/APIError below for an
answer that says no); httpx is imported only when it runs, so importing this module
stays cheap (the IPython extension does).
"""

from __future__ import annotations

import re
import socket
import ssl
import urllib.request
from typing import Iterable, Optional, Sequence
from urllib.parse import urlsplit

from .vendors import Vendor

ADMIN_FIX = "in .env (then restart your server)"
NETWORK_HINT = "check the network, HTTPS_PROXY/AI_PROXY_URL"
MAX_UPSTREAM = 200  # characters of an upstream message we repeat
MAX_MODELS = 12  # model ids listed in a "no model" message
# Set by the AI gateway (hub/aihub/gateway, which imports it from here: students' images
# have no hub package) on the errors it makes itself.
GATEWAY_ERROR_HEADER = "X-AI-Gateway-Error"


class ProviderError(Exception):
    """A model call failed; str(error) is one line saying what to do about it."""

    def __init__(self, message: str, *, vendor: str = "", status: Optional[int] = None):
        super().__init__(message)
        self.message = message
        self.vendor = vendor
        self.status = status

    def __str__(self) -> str:
        return self.message


class APIError(Exception):
    """The server answered with an error: `body` is its error object (a dict, as the
    openai SDK keeps it: the inside of {"error": {...}}) or its text."""

    def __init__(self, message: str, *, body: object = None):
        super().__init__(message)
        self.message = message
        self.body = body


class APIStatusError(APIError):
    """The server answered with an HTTP error status; `response` is httpx's (read)."""

    def __init__(self, message: str, *, response, body: object, status_code: int):
        super().__init__(message, body=body)
        self.response = response
        self.status_code = status_code


# -- scrubbing --

_SECRET_SHAPES = [
    re.compile(r"\bBearer\s+\S+", re.I),
    re.compile(r"\b(?:sk|nvapi|rk|pk)-[A-Za-z0-9_\-\.]{6,}"),
    re.compile(r"\b(?:api[_-]?key|token|authorization)\s*[=:]\s*['\"]?[^\s'\",;]+", re.I),
]
# A URL's user:password@, up to the URL's last @: a password with a raw @, /, # or space
# (not percent-encoded, so not a valid URL) is hidden too, at the cost of sometimes
# hiding a few words more.
_URL_USERINFO = re.compile(r"(?<=://)[^\s'\"]*(?:\s+[^\s'\"@:/]*){0,3}@")


def _redacted_userinfo(match: re.Match) -> str:
    user, colon, _ = match[0][:-1].partition(":")
    # A user name alone may be a token (https://TOKEN@host): hidden too.
    return f"{user}:***@" if colon else "***@"


def redact_url(text: str) -> str:
    """`text` with the password of every URL in it hidden: http://user:***@proxy:3128.

    The one function every message that shows a URL goes through (settings errors, the
    gateway's and the providers' messages)."""
    return _URL_USERINFO.sub(_redacted_userinfo, text)


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with the given secrets and anything shaped like a key replaced by ***."""
    text = redact_url(text)
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    for shape in _SECRET_SHAPES:
        text = shape.sub("***", text)
    return text


def one_line(text: str, limit: int = MAX_UPSTREAM) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# -- messages, one per kind of failure --


def not_set_up(vendor: Vendor, variable: str) -> ProviderError:
    return ProviderError(
        f"{vendor.name} is not set up: the admin must set {variable} {ADMIN_FIX}",
        vendor=vendor.id,
    )


def _models_text(models: Sequence[str]) -> str:
    models = sorted(set(models))
    if not models:
        return ""
    shown = ", ".join(models[:MAX_MODELS])
    if len(models) > MAX_MODELS:
        shown += f", … ({len(models)} in all)"
    return f". Models: {shown}"


def unknown_model(vendor: Vendor, model: str, models: Sequence[str], status: int) -> ProviderError:
    return ProviderError(
        f"{vendor.name} has no model '{model}'{_models_text(models)}",
        vendor=vendor.id,
        status=status,
    )


_MODEL_MISSING = re.compile(
    r"model\b.{0,80}?\b(?:not found|not exist|does ?n[o']t exist|is not available)"
    r"|(?:unknown|invalid|no such|not a valid) model|not found the model"
    r"|model_not_found|模型不存在",
    re.I | re.S,
)


def says_unknown_model(exc: BaseException) -> bool:
    """True when an HTTP 400/404 answer says in words that the model does not exist."""
    if getattr(exc, "status_code", None) not in (400, 404):
        return False
    return bool(_MODEL_MISSING.search(_response_text(exc)))


def wants_model_list(exc: BaseException) -> bool:
    """True when the message for `exc` depends on the vendor's list of models."""
    return getattr(exc, "status_code", None) == 404 or says_unknown_model(exc)


def _response_text(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    try:
        return response.text if response is not None else str(exc)
    except Exception:  # a streamed body that was never read
        return str(getattr(exc, "body", "") or exc)


def upstream_message(exc: BaseException) -> str:
    """The vendor's own words from an error body ({"error": {"message": ...}} etc.)."""
    body = getattr(exc, "body", None)
    message = None
    if isinstance(body, dict):
        message = body.get("message") or body.get("msg") or body.get("detail")
        error = body.get("error")
        if not message and isinstance(error, dict):
            message = error.get("message")
        elif not message and error:
            message = error
    elif isinstance(body, str):
        message = body
    if not message:
        message = getattr(exc, "message", None) or _response_text(exc)
    return str(message)


def _reason(exc: BaseException) -> str:
    """Why a connection failed, from the innermost cause: 'connection refused' etc."""
    chain, seen = [], set()
    current: Optional[BaseException] = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append(current)
        current = current.__cause__ or current.__context__
    for error in chain:
        if isinstance(error, ConnectionRefusedError) or "connection refused" in str(error).lower():
            return "connection refused"
    for error in chain:
        if isinstance(error, socket.gaierror) or "name or service not known" in str(error).lower():
            return "unknown host name"
        if isinstance(error, ssl.SSLCertVerificationError) or "certificate verify failed" in str(error).lower():
            return "its TLS certificate is not trusted (a proxy's CA missing from certs/?)"
        if type(error).__name__ == "ProxyError":
            return f"the proxy refused ({one_line(str(error), 80)})"
    innermost = chain[-1]
    return one_line(str(innermost), 120) or type(innermost).__name__


def _proxy_for(url: str) -> str:
    """The proxy the environment sets for `url`, or "" (same variables httpx reads)."""
    try:
        parts = urlsplit(url)
        if urllib.request.proxy_bypass_environment(parts.hostname or ""):
            return ""
        proxies = urllib.request.getproxies_environment()
        return proxies.get(parts.scheme) or proxies.get("all") or ""
    except Exception:
        return ""


def _seconds(timeout: object) -> str:
    value = getattr(timeout, "read", timeout)
    if isinstance(value, tuple):
        value = value[-1]
    if isinstance(value, (int, float)):
        return f"{value:g} s"
    return "the time limit"


def from_exception(
    exc: BaseException,
    *,
    vendor: Vendor,
    base_url: str,
    model: str,
    timeout: object,
    secrets: Sequence[str] = (),
    served: Optional[Sequence[str]] = None,
) -> Optional[ProviderError]:
    """The ProviderError for an httpx exception or an APIError, or None for anything else.

    `served` is the vendor's own list of model ids (GET {base}/models) when the caller
    could fetch it, else None. It tells an unknown model (the list works and lacks it:
    name the models) from a wrong base URL (no list either: name the variable). When
    the vendor says in words that the model does not exist, the table's examples stand
    in for a list that could not be fetched.
    """
    import httpx

    name = vendor.name
    base = scrub(base_url, secrets)

    def clean(text: str) -> str:
        return one_line(scrub(text, secrets))

    if isinstance(exc, httpx.TimeoutException):
        return ProviderError(
            f"{name} did not answer within {_seconds(timeout)} ({base}): "
            "check the network or AI_PROXY_URL",
            vendor=vendor.id,
        )
    if isinstance(exc, httpx.TransportError):
        proxy = _proxy_for(base_url)
        via = f" through the proxy {scrub(proxy, secrets)}" if proxy else ""
        return ProviderError(
            f"Cannot reach {name} at {base}{via}: {clean(_reason(exc))}; {NETWORK_HINT}",
            vendor=vendor.id,
        )
    if isinstance(exc, APIStatusError):
        status = exc.status_code
        if exc.response.headers.get(GATEWAY_ERROR_HEADER) == "1":
            # The bundle's AI gateway wrote this for the student (budget, token, the
            # admin's key): its words already say what to do.
            return ProviderError(f"{name}: {clean(upstream_message(exc))}", vendor=vendor.id, status=status)
        if status in (401, 403):
            return ProviderError(
                f"{name} rejected the API key (HTTP {status}): check {vendor.key_env} in .env",
                vendor=vendor.id,
                status=status,
            )
        if says_unknown_model(exc) or (
            status == 404 and served is not None and model not in served
        ):
            return unknown_model(vendor, clean(model), served or vendor.examples, status)
        if status == 404 and served is None:
            return ProviderError(
                f"{name} answered HTTP 404 at {base}: check {vendor.base_env} in .env",
                vendor=vendor.id,
                status=status,
            )
        if status == 429:
            said = clean(upstream_message(exc)).rstrip(" .。!")
            return ProviderError(
                f"{name} is rate-limiting or out of quota (HTTP 429): "
                + (f"{said}, " if said else "")
                + "wait and retry",
                vendor=vendor.id,
                status=status,
            )
        if status >= 500:
            return ProviderError(
                f"{name} failed (HTTP {status}): try again later",
                vendor=vendor.id,
                status=status,
            )
        return ProviderError(
            f"{name} refused the request (HTTP {status}): {clean(upstream_message(exc))}",
            vendor=vendor.id,
            status=status,
        )
    if isinstance(exc, (APIError, httpx.HTTPError)):
        return ProviderError(
            f"{name} sent an error: {clean(upstream_message(exc))}", vendor=vendor.id
        )
    return None
