"""An OpenAI-compatible vendor on 127.0.0.1 for the gateway's tests.

Serves, under the prefixes "" and "/first" (two vendors, one server):

    GET  <prefix>/v1/models
    POST <prefix>/v1/chat/completions   plain JSON, or SSE with usage when asked
    POST <prefix>/v1/embeddings

Answers are computed from the request, never canned:

    chat:        "<model>: <last user message reversed>"
    embeddings:  one vector per input, [length, words, first character's code]

Usage counts words: prompt = words of every message (or input), completion = words
of the answer. A stream sends the answer CHUNK characters at a time, then a
finish_reason chunk, then (when asked with stream_options.include_usage) the
usage-only chunk with `choices: []`, then [DONE].

A request steers the vendor through an extra body field the gateway passes on
untouched, `"x_test": {...}`:

    usage: "last" (default) | "every" (usage in every chunk, some vendors do) | "none"
    delay: seconds between chunks (or before a plain answer)
    stall_after: stop sending after this many chunks, hold the connection
    stall: hold the connection before answering anything
    status: answer this HTTP error (its message quotes the key it was sent, a Bearer
            token and key-shaped strings, to test scrubbing)
    refuse_stream_options: 400 if the body has stream_options (an old server)
    error_event: after one chunk, send an {"error": ...} event quoting the key

Every request is recorded (path, Authorization, body); `max_in_flight` is the most
chat requests that ran at once.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional

CHUNK = 4
HOLD_SECONDS = 30  # a stalled answer gives up after this, or when the server stops
PATH = re.compile(r"^(?P<prefix>/first|)/v1/(?P<what>models|chat/completions|embeddings)$")


@dataclass
class Recorded:
    path: str
    authorization: Optional[str]
    body: Optional[dict]


@dataclass
class State:
    models: list = field(default_factory=lambda: ["echo-1", "echo-2"])
    requests: list = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def answer_for(model: str, messages: list) -> str:
    last_user = next((m for m in reversed(messages) if isinstance(m, dict) and m.get("role") == "user"), {})
    content = last_user.get("content", "")
    if isinstance(content, list):
        content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return f"{model}: {str(content)[::-1]}"


def words(messages: list) -> int:
    return sum(len(str(m.get("content", "")).split()) for m in messages if isinstance(m, dict))


class Handler(BaseHTTPRequestHandler):
    server: "Upstream"
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes: without this, Nagle's algorithm and the
        # client's delayed ACK add 40 ms to every answer (and would flatter the gateway).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, *args) -> None:
        pass

    def _json(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _hold(self) -> None:
        self.server.stopping.wait(HOLD_SECONDS)
        self.close_connection = True

    def do_GET(self) -> None:
        match = PATH.match(self.path)
        self.server.state.requests.append(Recorded(self.path, self.headers.get("Authorization"), None))
        if not match or match["what"] != "models":
            return self._json(404, {"error": {"message": "no route", "code": "not_found"}})
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "test"} for m in self.server.state.models]
        self._json(200, {"object": "list", "data": data})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        state = self.server.state
        state.requests.append(Recorded(self.path, self.headers.get("Authorization"), body))
        match = PATH.match(self.path)
        if not match or not isinstance(body, dict):
            return self._json(404 if not match else 400, {"error": {"message": "bad request"}})
        with state.lock:
            state.in_flight += 1
            state.max_in_flight = max(state.max_in_flight, state.in_flight)
        try:
            if match["what"] == "embeddings":
                return self._embeddings(body)
            return self._chat(body)
        finally:
            with state.lock:
                state.in_flight -= 1

    def _embeddings(self, body: dict) -> None:
        inputs = body.get("input")
        inputs = [inputs] if isinstance(inputs, str) else list(inputs or [])
        data = [{"object": "embedding", "index": i,
                 "embedding": [float(len(str(t))), float(len(str(t).split())), float(ord(str(t)[:1] or " "))]}
                for i, t in enumerate(inputs)]
        tokens = sum(len(str(t).split()) for t in inputs)
        self._json(200, {"object": "list", "data": data, "model": body.get("model"),
                         "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

    def _chat(self, body: dict) -> None:
        test = body.get("x_test") or {}
        key = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
        model = body.get("model", "")
        if test.get("stall"):
            return self._hold()
        if test.get("status"):
            status = int(test["status"])
            return self._json(status, {"error": {
                "message": f"Incorrect API key provided: {key}. Bearer {key} sk-live0123456789abcdef "
                           f"nvapi-ABCDEF0123456789 failed with {status}",
                "type": "test_error", "code": f"test_{status}"}})
        if test.get("refuse_stream_options") and "stream_options" in body:
            return self._json(400, {"error": {"message": "Unrecognized request argument: stream_options"}})
        if model not in self.server.state.models:
            return self._json(404, {"error": {"message": f"The model `{model}` does not exist",
                                              "type": "invalid_request_error", "code": "model_not_found"}})
        messages = body.get("messages") or []
        answer = answer_for(model, messages)
        prompt, completion = words(messages), len(answer.split())
        usage = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
        if test.get("delay") and not body.get("stream"):
            time.sleep(float(test["delay"]))
        if not body.get("stream"):
            return self._json(200, {
                "id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()), "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}],
                "usage": usage,
            })
        asked = bool((body.get("stream_options") or {}).get("include_usage"))
        self._stream(model, answer, usage, asked, test, key)

    def _stream(self, model: str, answer: str, usage: dict, asked: bool, test: dict, key: str) -> None:
        mode = test.get("usage", "last")
        delay = float(test.get("delay") or 0)
        stall_after = test.get("stall_after")
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

        def event(choices: list, extra: Optional[dict] = None) -> None:
            chunk = {"id": "chatcmpl-test", "object": "chat.completion.chunk", "created": 0, "model": model,
                     "choices": choices, **(extra or {})}
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()

        pieces = [answer[i:i + CHUNK] for i in range(0, len(answer), CHUNK)]
        sent = ""
        try:
            for n, piece in enumerate(pieces):
                if stall_after is not None and n >= int(stall_after):
                    return self._hold()
                if delay:
                    time.sleep(delay)
                sent += piece
                delta = {"content": piece, **({"role": "assistant"} if n == 0 else {})}
                extra = None
                if mode == "every" and asked:
                    done = len(sent.split())
                    extra = {"usage": {"prompt_tokens": usage["prompt_tokens"], "completion_tokens": done,
                                       "total_tokens": usage["prompt_tokens"] + done}}
                event([{"index": 0, "delta": delta, "finish_reason": None}], extra)
                if test.get("error_event") and n == 0:
                    self.wfile.write(("data: " + json.dumps({"error": {
                        "message": f"overloaded; key {key} Bearer {key}", "type": "server_error"}}) + "\n\n").encode())
                    self.wfile.flush()
                    return
            event([{"index": 0, "delta": {}, "finish_reason": "stop"}],
                  {"usage": usage} if mode == "every" and asked else None)
            if asked and mode == "last":
                event([], {"usage": usage})
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the gateway hung up (its client left): nothing more to send


class Upstream(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, port: int = 0):
        super().__init__(("127.0.0.1", port), Handler)
        self.state = State()
        self.stopping = threading.Event()
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def start(self) -> "Upstream":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.shutdown()
        self.server_close()

    def handle_error(self, request, client_address) -> None:
        import sys
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)

    def reset(self) -> None:
        self.state = State()


if __name__ == "__main__":  # a separate process for the latency benchmark
    import sys
    server = Upstream(int(sys.argv[1]) if len(sys.argv) > 1 else 0).start()
    print(server.url, flush=True)
    threading.Event().wait()
