"""A fake OpenAI-compatible vendor on 127.0.0.1, for the providers' and the gateway's tests.

Both suites import it (pytest.ini puts tests/ on the path): providers/tests talk to it
as a vendor, tests/gateway puts the AI gateway in front of it. It serves, under the
prefixes "", /first and /second (so a test can tell base URLs apart):

    GET  <prefix>/v1/models
    POST <prefix>/v1/chat/completions   plain JSON, or SSE with usage when asked
    POST <prefix>/v1/embeddings

Any other path gets a plain-text 404, as a web server in front of an API answers a
wrong base URL. Answers are computed from the request, never canned:

    chat:        "<model>: <last user message reversed>" (`repeat` times, see below),
                 cut at max_tokens / max_completion_tokens words (finish_reason "length")
    embeddings:  one vector per input: its words (lower case, letters and digits) counted
                 into EMBEDDING_SIZE buckets by a stable hash (crc32), scaled to length 1,
                 so texts that share words are near (a real, if crude, retrieval model);
                 a key not in `state.keys` gets a 401, as chat does

Usage counts words: prompt = words of every message (or input), completion = words
of the answer. A stream sends the answer CHUNK characters at a time, then a
finish_reason chunk, then (when asked with stream_options.include_usage) the
usage-only chunk with `choices: []`, then [DONE].

What the vendor does is steered by a dict: `state.steer` for every request (a test
of the providers sets it), updated by a request's own extra body field `"x_test"`
(the gateway passes it on untouched, so concurrent tests steer their own requests):

    error: answer a vendor error, one of ERRORS ("401", "429", "400-model", ...);
           messages quote the key they were sent and key-shaped strings, to test scrubbing
    usage: "last" (default) | "every" (usage in every chunk, some vendors do) | "none"
           (none in a stream, nor in a plain answer)
    delay: seconds between chunks (or before a plain answer)
    repeat: the answer's text this many times (a long answer)
    stall: hold the connection before answering anything
    stall_after: stop sending after this many chunks, hold the connection
    error_event: after one chunk, send an {"error": ...} event quoting the key
    refuse_stream_options: 400 if the body has stream_options (an old server)
    not_json: answer 200 with a body that is not JSON
    cut_short: answer 200 promising more bytes than it sends, then hang up (broken HTTP)
    reasoning: think first, as thinking models do, the reasoning being reasoning_for(...):
           "reasoning_content" (DeepSeek's, Qwen3's field) | "reasoning" (Ollama's and
           OpenRouter's field) | "tags" (`<think>…</think>` before the answer, in its text).
           Streamed, the reasoning comes first, CHUNK characters at a time, tags split
           across chunks. Usage counts its words in completion_tokens and in
           completion_tokens_details.reasoning_tokens.

`state.keys` makes any other key a 401; `state.models_status` makes GET /models fail.
Every request is recorded (method, path, Authorization, body); `max_in_flight` is the
most chat and embeddings requests that ran at once. `closed_port()` gives a port
nothing listens on. Run as a script, it serves on a port of its own (benchmarks).
"""

from __future__ import annotations

import json
import math
import re
import socket
import sys
import threading
import time
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional

CHUNK = 4  # characters per streamed chunk
HOLD_SECONDS = 30  # a stalled answer gives up after this, or when the server stops
PATH = re.compile(r"^(?P<prefix>/first|/second|)/v1/(?P<what>models|chat/completions|embeddings)$")
EMBEDDING_SIZE = 64
QUICK_RETRY = {"retry-after-ms": "10"}  # the clients' one retry after a 429 or 5xx is quick
LEAKS = "sk-live0123456789abcdef and nvapi-ABCDEF0123456789"  # key-shaped strings to scrub

# name -> (status, message ({key} and {model} filled in), code, extra headers)
ERRORS: dict[str, tuple[int, str, str, dict]] = {
    "401": (401, "Incorrect API key provided: {key}. Bearer {key}", "invalid_api_key", {}),
    "403": (403, "Incorrect API key provided: {key}. Bearer {key}", "invalid_api_key", {}),
    "400": (400, "Invalid parameter for key {key} (Bearer {key}, " + LEAKS + ")", "invalid_parameter", {}),
    "400-model": (400, "Model Not Exist", "invalid_request_error", {}),  # DeepSeek's way
    "404": (404, "The model `{model}` does not exist", "model_not_found", {}),
    "429": (429, "Quota exceeded for key {key} (also " + LEAKS + "); upgrade your plan",
            "rate_limit_exceeded", QUICK_RETRY),
    "500": (500, "upstream exploded", "server_error", QUICK_RETRY),
    "502": (502, "upstream exploded", "server_error", QUICK_RETRY),
    # The bundle's AI gateway's own budget answer, as a client behind it sees it.
    "gateway-429": (429, "daily AI budget of 1000 tokens used; resets at 00:00 UTC", "daily_budget_exceeded",
                    {"X-AI-Gateway-Error": "1", "x-should-retry": "false", "Retry-After": "5"}),
}


@dataclass
class Recorded:
    method: str
    path: str
    authorization: Optional[str]
    body: Optional[dict]


@dataclass
class State:
    models: list
    steer: dict = field(default_factory=dict)
    keys: Optional[set] = None  # when set, any other key gets a 401
    models_status: int = 200
    requests: list = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def answer_for(model: str, messages: list, repeat: int = 1) -> str:
    last_user = next((m for m in reversed(messages) if isinstance(m, dict) and m.get("role") == "user"), {})
    content = last_user.get("content", "")
    if isinstance(content, list):  # content parts
        content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return f"{model}: " + " ".join([str(content)[::-1]] * repeat)


def reasoning_for(messages: list) -> str:
    """A thinking model's reasoning about the request (two lines)."""
    words = len(answer_for("", messages).split())
    return f"The question has {words} words.\nReversing it answers it."


def with_reasoning(mode: str, reasoning: str, answer: str) -> tuple[str, dict, dict]:
    """(the answer's text, the message's extra fields, extra usage) for a reasoning mode."""
    usage = {"completion_tokens_details": {"reasoning_tokens": len(reasoning.split())}}
    if mode == "tags":
        return f"<think>\n{reasoning}\n</think>\n\n{answer}", {}, usage
    if mode in ("reasoning_content", "reasoning"):
        return answer, {mode: reasoning}, usage
    raise ValueError(f"unknown reasoning mode {mode!r}")


def embedding_of(text: str) -> list[float]:
    """The fake vendor's embedding of a text (see the module's docstring)."""
    vector = [0.0] * EMBEDDING_SIZE
    for word in re.findall(r"\w+", text.lower()):
        vector[zlib.crc32(word.encode()) % EMBEDDING_SIZE] += 1.0
    length = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [x / length for x in vector]


def count_words(messages: list) -> int:
    return sum(len(str(m.get("content", "")).split()) for m in messages if isinstance(m, dict))


def answer_limit(body: dict) -> Optional[int]:
    """The answer's length limit the request asks for (either field's name), in words."""
    limits = [body.get(name) for name in ("max_tokens", "max_completion_tokens")]
    limits = [n for n in limits if isinstance(n, int) and not isinstance(n, bool) and n > 0]
    return min(limits) if limits else None


class Handler(BaseHTTPRequestHandler):
    server: "FakeOpenAI"
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes: without this, Nagle's algorithm and the
        # client's delayed ACK add 40 ms to every answer (and would flatter the gateway).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def _send(self, status: int, data: bytes, content_type: str, headers: Optional[dict] = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _json(self, status: int, payload: dict, headers: Optional[dict] = None) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json", headers)

    def _error(self, status: int, message: str, code: str, headers: Optional[dict] = None) -> None:
        self._json(status, {"error": {"message": message, "type": "invalid_request_error", "code": code}}, headers)

    def _hold(self) -> None:
        self.server.stopping.wait(HOLD_SECONDS)
        self.close_connection = True

    def _record(self, body: Optional[dict]) -> None:
        self.server.state.requests.append(
            Recorded(self.command, self.path, self.headers.get("Authorization"), body))

    def do_GET(self) -> None:
        match = PATH.match(self.path)
        self._record(None)
        state = self.server.state
        if not match or match["what"] != "models":
            return self._error(404, f"no route {self.path}", "not_found")
        if state.models_status != 200:
            return self._error(state.models_status, "model list unavailable", "unavailable")
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "test"} for m in state.models]
        self._json(200, {"object": "list", "data": data})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            body = None
        self._record(body)
        state = self.server.state
        match = PATH.match(self.path)
        if not match or match["what"] == "models":
            # like a web server in front of the API: plain text, no mention of models
            return self._send(404, b"404 page not found", "text/plain")
        if not isinstance(body, dict):
            return self._error(400, "the body is not a JSON object", "invalid_json")
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
        state = self.server.state
        key = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
        if state.keys is not None and key not in state.keys:
            status, message, code, headers = ERRORS["401"]
            return self._error(status, message.format(key=key, model=body.get("model", "")), code, headers)
        inputs = body.get("input")
        inputs = [inputs] if isinstance(inputs, str) else list(inputs or [])
        data = [{"object": "embedding", "index": i, "embedding": embedding_of(str(t))}
                for i, t in enumerate(inputs)]
        tokens = sum(len(str(t).split()) for t in inputs)
        self._json(200, {"object": "list", "data": data, "model": body.get("model"),
                         "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

    def _chat(self, body: dict) -> None:
        state = self.server.state
        steer = {**state.steer, **(body.get("x_test") or {})}
        key = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
        model = body.get("model", "")
        if steer.get("stall"):
            return self._hold()
        error = steer.get("error")
        if state.keys is not None and key not in state.keys:
            error = "401"
        if error is None and model not in state.models:
            error = "404"
        if error is not None:
            status, message, code, headers = ERRORS[str(error)]
            return self._error(status, message.format(key=key, model=model), code, headers)
        if steer.get("refuse_stream_options") and "stream_options" in body:
            return self._error(400, "Unrecognized request argument: stream_options", "invalid_request_error")
        if steer.get("not_json"):
            return self._send(200, b'{"id": "chatcmpl-test", "choices": [{"message": ', "application/json")
        if steer.get("cut_short"):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b'{"id": "chatcmpl-test", "choices": [')
            self.close_connection = True
            return
        messages = body.get("messages") or []
        answer = answer_for(model, messages, int(steer.get("repeat") or 1))
        finish = "stop"
        limit = answer_limit(body)
        if limit is not None and len(answer.split()) > limit:
            answer, finish = " ".join(answer.split()[:limit]), "length"
        prompt, completion = count_words(messages), len(answer.split())
        fields, reasoning_usage = {}, {}
        if steer.get("reasoning"):
            reasoning = reasoning_for(messages)
            completion += len(reasoning.split())
            answer, fields, reasoning_usage = with_reasoning(steer["reasoning"], reasoning, answer)
        usage = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
                 **reasoning_usage}
        if not body.get("stream"):
            if steer.get("delay"):
                time.sleep(float(steer["delay"]))
            message = {"role": "assistant", "content": answer, **fields}
            return self._json(200, {
                "id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()), "model": model,
                "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                **({"usage": usage} if steer.get("usage") != "none" else {}),
            })
        asked = bool((body.get("stream_options") or {}).get("include_usage"))
        self._stream(model, answer, finish, usage, asked, steer, key, fields)

    def _stream(self, model: str, answer: str, finish: str, usage: dict, asked: bool, steer: dict,
                key: str, fields: dict) -> None:
        mode = steer.get("usage", "last")
        delay = float(steer.get("delay") or 0)
        stall_after = steer.get("stall_after")
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

        # (field, text) pieces: a reasoning field's first, then the answer's text
        pieces = [(name, text[i:i + CHUNK]) for name, text in fields.items() for i in range(0, len(text), CHUNK)]
        pieces += [("content", answer[i:i + CHUNK]) for i in range(0, len(answer), CHUNK)]
        sent: dict = {}  # field -> text sent so far
        try:
            for n, piece in enumerate(pieces):
                if stall_after is not None and n >= int(stall_after):
                    return self._hold()
                if delay:
                    time.sleep(delay)
                name, piece = piece
                sent[name] = sent.get(name, "") + piece
                delta = {name: piece, **({"role": "assistant"} if n == 0 else {})}
                extra = None
                if mode == "every" and asked:
                    done = sum(len(text.split()) for text in sent.values())
                    extra = {"usage": {"prompt_tokens": usage["prompt_tokens"], "completion_tokens": done,
                                       "total_tokens": usage["prompt_tokens"] + done}}
                event([{"index": 0, "delta": delta, "finish_reason": None}], extra)
                if steer.get("error_event"):
                    self.wfile.write(("data: " + json.dumps({"error": {
                        "message": f"upstream overloaded; key {key} Bearer {key}", "code": 503}}) + "\n\n").encode())
                    self.wfile.flush()
                    return
            event([{"index": 0, "delta": {}, "finish_reason": finish}],
                  {"usage": usage} if mode == "every" and asked else None)
            if asked and mode == "last":
                event([], {"usage": usage})
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client hung up (the gateway's client left): nothing more to send


class FakeOpenAI(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, models: list, port: int = 0):
        super().__init__(("127.0.0.1", port), Handler)
        self.state = State(models=list(models))
        self.stopping = threading.Event()
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def start(self) -> "FakeOpenAI":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.shutdown()
        self.server_close()

    def handle_error(self, request, client_address) -> None:
        # A client that gave up (a timeout test) resets its connection: not news.
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)

    def reset(self, models: list) -> None:
        self.state = State(models=list(models))


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


if __name__ == "__main__":  # a separate process, for the gateway's latency benchmark
    server = FakeOpenAI(["echo-1", "echo-2"], int(sys.argv[1]) if len(sys.argv) > 1 else 0).start()
    print(server.url, flush=True)
    threading.Event().wait()
