"""The one HTTP client to vendors, and what a vendor's failure becomes for the student.

One pooled httpx.AsyncClient serves every request: connections to a vendor stay open
between calls (no TLS handshake per token stream). The proxy comes from GatewayConfig
(USE_AI_PROXY, AI_PROXY_URL with its login, and the hosts that bypass it), not from
the process's environment; the environment still gives the CA bundle (SSL_CERT_FILE,
which trusts certs/). AI_REQUEST_TIMEOUT bounds every wait on a vendor (connecting, and each read: a stream
may run longer as long as tokens keep coming).

Vendor failures, as the student sees them:

    vendor says 401/403 (the admin's key)   -> 502, "the admin must check <KEY_ENV>"
    the site's proxy says 407 (its login)   -> 502, "check AI_PROXY_URL"
    vendor says 429                         -> 429 with the vendor's words
    vendor says 5xx                         -> same status, "try again later"
    vendor says another 4xx                 -> same status, the vendor's words
    vendor answers 2xx that is not JSON     -> 502 bad_upstream_response
    vendor breaks off or garbles the answer -> 502 bad_upstream_response
    no answer within the timeout            -> 504
    cannot connect                          -> 502, naming the base URL variable

Every vendor text is scrubbed of keys and tokens first (errors.clean).
"""

from __future__ import annotations

import json
from typing import Iterable

import httpx

from ..proxies import bypasses_proxy
from .config import GatewayConfig, Upstream
from .errors import GatewayError, clean

USER_AGENT = "aihub-ai-gateway/0.1"
ERROR_BODY_LIMIT = 64 * 1024  # bytes of a vendor's error body worth reading
LIMITS = httpx.Limits(max_connections=1000, max_keepalive_connections=100, keepalive_expiry=60)


class ProxyRouter(httpx.AsyncBaseTransport):
    """Each request through the proxy, or directly when its host bypasses it."""

    def __init__(self, proxy_url: str, no_proxy: tuple[str, ...]):
        # httpx.Proxy sends the URL's percent-decoded login as Proxy-Authorization.
        self.proxied = httpx.AsyncHTTPTransport(proxy=httpx.Proxy(proxy_url), limits=LIMITS, trust_env=True)
        self.direct = httpx.AsyncHTTPTransport(limits=LIMITS, trust_env=True)
        self.no_proxy = no_proxy

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        bypass = bypasses_proxy(request.url.host, self.no_proxy)
        return await (self.direct if bypass else self.proxied).handle_async_request(request)

    async def aclose(self) -> None:
        await self.proxied.aclose()
        await self.direct.aclose()


def make_client(config: GatewayConfig) -> httpx.AsyncClient:
    timeout = config.request_timeout
    # An explicit transport: httpx then reads no proxy variable from the environment.
    transport = (ProxyRouter(config.proxy_url, config.no_proxy) if config.proxy_url
                 else httpx.AsyncHTTPTransport(limits=LIMITS, trust_env=True))
    return httpx.AsyncClient(
        transport=transport,
        timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0), pool=timeout),
        follow_redirects=False,
        headers={"User-Agent": USER_AGENT},
    )


def headers(upstream: Upstream, *, stream: bool) -> dict[str, str]:
    result = {"Authorization": f"Bearer {upstream.key}", "Content-Type": "application/json"}
    if stream:
        # Events are passed on as they come: no compression to undo.
        result.update({"Accept": "text/event-stream", "Accept-Encoding": "identity"})
    else:
        result["Accept"] = "application/json"
    return result


def _vendor_words(body: bytes) -> tuple[str, object, object]:
    """(message, type, code) from a vendor's error body, in whichever shape it came."""
    try:
        data = json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace"), None, None
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict):
            return str(error.get("message") or error.get("msg") or error), error.get("type"), error.get("code")
        message = data.get("message") or data.get("msg") or data.get("detail") or error or data
        return str(message), data.get("type"), data.get("code")
    return str(data), None, None


def vendor_error(upstream: Upstream, status: int, body: bytes, vendor_headers: httpx.Headers,
                 secrets: Iterable[str]) -> GatewayError:
    name = upstream.name
    words, kind, code = _vendor_words(body[:ERROR_BODY_LIMIT])
    said = clean(words, secrets, 240).rstrip(" .。") if words.strip() else ""
    kind = clean(kind, secrets, 60) if isinstance(kind, str) else None
    code = clean(code, secrets, 60) if isinstance(code, (str, int)) and not isinstance(code, bool) else None
    if status in (401, 403):
        return GatewayError(
            502, f"{name} refused the hub's API key (HTTP {status}): the admin must check "
                 f"{upstream.vendor.key_env} in .env", "upstream_key_rejected")
    if status == 407:  # the site's proxy, not the vendor, said no (plain-HTTP vendors)
        return GatewayError(
            502, f"the proxy refused the AI gateway's login (HTTP 407) on the way to {name}: "
                 "the admin should check AI_PROXY_URL", "proxy_login_refused")
    if status == 429:
        retry = {k: vendor_headers[k] for k in ("retry-after", "retry-after-ms") if k in vendor_headers}
        return GatewayError(
            429, f"{name} is rate-limiting the hub (HTTP 429)" + (f": {said}" if said else "")
                 + "; wait and retry", code or "upstream_rate_limited", type=kind, headers=retry)
    if status >= 500:
        return GatewayError(
            status if status in (500, 502, 503, 504) else 502,
            f"{name} failed (HTTP {status})" + (f": {said}" if said else "") + "; try again later",
            code or "upstream_error", type="upstream_error")
    # The vendor judged the request itself (unknown model, bad parameter): its words.
    return GatewayError(status, said or f"{name} refused the request (HTTP {status})",
                        code, type=kind or "invalid_request_error", own=False)


def bad_answer(what: str) -> GatewayError:
    """The vendor was reached, but its answer is not one a client can read."""
    return GatewayError(502, f"{what}; try again later, and tell the admin if it repeats", "bad_upstream_response")


def not_json(upstream: Upstream, status: int, content_type: str) -> GatewayError:
    return bad_answer(f"{upstream.name} answered something that is not valid JSON (HTTP {status}, "
                      f"{clean(content_type, limit=60) or 'no Content-Type'})")


def transport_error(upstream: Upstream, error: httpx.HTTPError, timeout: float,
                    secrets: Iterable[str]) -> GatewayError:
    name = upstream.name
    if isinstance(error, httpx.TimeoutException):
        return GatewayError(504, f"{name} did not answer within {timeout:g} s; try again later",
                            "upstream_timeout")
    reason = clean(str(error) or type(error).__name__, secrets, 120)
    # Connected, then the answer broke: not an unreachable vendor.
    if isinstance(error, httpx.RemoteProtocolError):
        return bad_answer(f"{name} broke off the connection before a whole answer came ({reason})")
    if isinstance(error, httpx.DecodingError):
        return bad_answer(f"{name} sent an answer that cannot be decoded ({reason})")
    if "refused" in reason.lower():
        reason = "connection refused"
    base = clean(upstream.api_base, secrets)
    return GatewayError(
        502, f"the AI gateway cannot reach {name} at {base}: {reason}; the admin should check "
             f"{upstream.vendor.base_env} and the network (AI_PROXY_URL)", "upstream_unreachable")


def refuses_stream_options(status: int, body: bytes) -> bool:
    """A vendor that rejects the stream_options the gateway added (old servers)."""
    return status in (400, 422) and b"stream_options" in body
