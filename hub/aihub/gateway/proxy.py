"""One request's way to the vendor and back, and the ledger outcome it leaves.

`Exchange.run` forwards an admitted request and returns its Outcome; it never raises
for a vendor's failure (the student gets an OpenAI-format error, the ledger a status).
The client side is a small interface (`Client`) the HTTP handler implements, so this
module knows nothing of tornado.

Streaming: each piece the vendor sends is passed on and flushed at once (sse.py);
usage is read on the way. Nothing touches the database until the end.

Tokens recorded when things go wrong:
    vendor unreachable, or answered an error      0 (nothing was billed)
    vendor answered something that is not JSON    the prompt's estimate
    no answer within the timeout                  the prompt's estimate
    cut short (vendor failed, client hung up)     what was used so far
"""

from __future__ import annotations

import json
import time
from typing import Optional, Protocol

import httpx

from .config import Upstream
from .errors import GatewayError, clean
from .ledger import Outcome
from .metering import Meter
from .payloads import CHAT, ProxyRequest, without_stream_options
from .sse import EventStream
from .upstream import (ERROR_BODY_LIMIT, headers, not_json, refuses_stream_options, transport_error,
                       vendor_error)

SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",  # any proxy in between: do not hold events back
}
CLIENT_CLOSED = 499  # http_status of a request whose client left before any answer


class ClientGone(Exception):
    """The student's client closed the connection."""


class Client(Protocol):
    def start(self, status: int, headers: dict[str, str]) -> None: ...
    async def send(self, data: bytes) -> None: ...  # raises ClientGone
    def end(self, data: bytes = b"") -> None: ...
    def fail(self, error: GatewayError) -> None: ...  # an error answer, before start()


def _ms(since: float) -> int:
    return int((time.perf_counter() - since) * 1000)


async def _read_limited(response: httpx.Response) -> bytes:
    body = b""
    async for piece in response.aiter_bytes():
        body += piece
        if len(body) >= ERROR_BODY_LIMIT:
            break
    return body


class Exchange:
    def __init__(self, request: ProxyRequest, meter: Meter, client: Client, *, started: float,
                 secrets: tuple[str, ...], timeout: float):
        self.request = request
        self.meter = meter
        self.client = client
        self.started = started  # perf_counter() when the request arrived
        self.secrets = secrets
        self.timeout = timeout
        self.answering = False  # the client got a status line
        self.ttft_ms: Optional[int] = None

    @property
    def upstream(self) -> Upstream:
        return self.request.upstream

    def outcome(self, status: str, http_status: Optional[int], tokens: str,
                error: Optional[str] = None) -> Outcome:
        """tokens: "none" (not billed), "prompt" (sent, never answered), "used" (so far)."""
        if tokens == "none":
            counted = (0, 0, 0, False)
        else:
            counted = self.meter.tokens(answered=tokens == "used")
        prompt, completion, total, estimated = counted
        return Outcome(status, http_status, prompt, completion, total, estimated,
                       _ms(self.started), self.ttft_ms if self.request.stream else None, error)

    def disconnected(self) -> Outcome:
        return self.outcome("client_disconnected", 200 if self.answering else CLIENT_CLOSED, "used",
                            "the client closed the connection")

    def _failed(self, error: GatewayError, status: str, tokens: str) -> Outcome:
        self.client.fail(error)
        return self.outcome(status, error.status, tokens, error.message)

    def _transport_failed(self, error: httpx.HTTPError) -> Outcome:
        timed_out = isinstance(error, httpx.TimeoutException)
        failure = transport_error(self.upstream, error, self.timeout, self.secrets)
        return self._failed(failure, "timeout" if timed_out else "error", "prompt" if timed_out else "none")

    async def run(self, http: httpx.AsyncClient) -> Outcome:
        try:
            if self.request.stream:
                return await self._stream(http, retry=True)
            return await self._plain(http)
        except ClientGone:
            return self.disconnected()

    # -- one JSON answer --

    async def _plain(self, http: httpx.AsyncClient) -> Outcome:
        request = self.request
        try:
            response = await http.post(self.upstream.url(request.endpoint), content=request.body,
                                       headers=headers(self.upstream, stream=False))
        except httpx.HTTPError as error:
            return self._transport_failed(error)
        return self._answer(response.status_code, response.headers, response.content)

    def _answer(self, status: int, vendor_headers: httpx.Headers, data: bytes) -> Outcome:
        """A whole answer: passed on byte for byte, its usage read."""
        if status >= 400:
            return self._failed(vendor_error(self.upstream, status, data, vendor_headers, self.secrets),
                                "error", "none")
        try:
            answer = json.loads(data)
        except ValueError:  # a vendor that is not what its base URL promised, or a broken one
            return self._failed(not_json(self.upstream, status, vendor_headers.get("content-type", "")),
                                "error", "prompt")
        self.meter_answer(answer)
        self.answering = True
        self.client.start(status, {"Content-Type": vendor_headers.get("content-type", "application/json")})
        self.client.end(data)
        return self.outcome("ok", status, "used")

    def meter_answer(self, answer: object) -> None:
        """A whole answer's usage (or text to estimate), as the vendor's API reports it."""
        if self.request.endpoint == CHAT:
            self.meter.saw_chat_answer(answer)
        elif isinstance(answer, dict):
            self.meter.saw_usage(answer.get("usage"))

    # -- a stream of events --

    # What a streamed answer is sent as, how it is read, and how a break is told: the
    # OpenAI API's server-sent events (ollama_api.NativeExchange: Ollama's NDJSON).
    STREAM_TYPE = "text/event-stream"
    STREAM_HEADERS = SSE_HEADERS

    def stream_reader(self) -> EventStream:
        return EventStream(self.meter, strip_usage_chunk=not self.request.client_wants_usage,
                           clean=lambda text: clean(text, self.secrets))

    def error_event(self, error: dict) -> bytes:
        return b"data: " + json.dumps({"error": error}).encode() + b"\n\n"

    async def _stream(self, http: httpx.AsyncClient, *, retry: bool) -> Outcome:
        request = self.request
        try:
            async with http.stream("POST", self.upstream.url(request.endpoint), content=request.body,
                                   headers=headers(self.upstream, stream=True)) as response:
                if response.status_code >= 400:
                    body = await _read_limited(response)
                    if retry and request.injected_stream_options and refuses_stream_options(
                            response.status_code, body):
                        without_stream_options(request)  # an old server: meter by estimate
                    else:
                        return self._answer(response.status_code, response.headers, body)
                elif self.STREAM_TYPE not in response.headers.get("content-type", ""):
                    # A vendor that answered a stream request in one piece.
                    return self._answer(response.status_code, response.headers, await response.aread())
                else:
                    return await self._pass_events(response)
        except httpx.HTTPError as error:
            return self._transport_failed(error)
        return await self._stream(http, retry=False)

    async def _pass_events(self, response: httpx.Response) -> Outcome:
        events = self.stream_reader()
        self.answering = True
        self.client.start(200, self.STREAM_HEADERS)
        try:
            async for piece in response.aiter_bytes():
                out = events.feed(piece)
                if out:
                    if self.ttft_ms is None:
                        self.ttft_ms = _ms(self.started)
                    await self.client.send(out)
            rest = events.close()
            if rest:
                await self.client.send(rest)
        except httpx.HTTPError as error:
            # The vendor broke off mid-answer: say so in the stream, keep what was used.
            timed_out = isinstance(error, httpx.TimeoutException)
            if timed_out:
                message = f"{self.upstream.name} stopped answering for {self.timeout:g} s: the answer is cut short"
            else:
                reason = clean(str(error) or type(error).__name__, self.secrets, 120)
                message = f"{self.upstream.name} broke off the answer ({reason}); try again"
            await self.client.send(self.error_event({
                "message": message, "type": "upstream_error",
                "code": "upstream_timeout" if timed_out else "upstream_error"}))
            self.client.end()
            return self.outcome("timeout" if timed_out else "error", 200, "used", message)
        self.client.end()
        if events.error:
            return self.outcome("error", 200, "used", events.error)
        return self.outcome("ok", 200, "used")
