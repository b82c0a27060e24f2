"""Whatever a client sends, the answer is JSON and never a 500 (property-based), and the
gateway's log holds neither a traceback nor a token."""

import json
import logging
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from .conftest import DEEPSEEK_KEY, GATEWAY_TOKEN, MOONSHOT_KEY, Student

PATHS = ["/deepseek/v1/chat/completions", "/v1/chat/completions", "/deepseek/v1/embeddings", "/v1/embeddings"]
# database=None: no example database (conftest keeps hypothesis's caches out of the repository);
# derandomize: the same examples on every run, so CI never meets a new one by chance.
FUZZ = settings(max_examples=150, deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
models = st.sampled_from(["echo-1", "deepseek:echo-1", "ollama:echo-2", "nosuch:x", ":", "deepseek:", "", " ",
                          "a\u0000b", "x" * 300]) | st.text(max_size=20) | json_values
messages = (st.lists(st.fixed_dictionaries({"role": st.sampled_from(["user", "system", "assistant"]) | json_values,
                                            "content": st.text(max_size=50) | json_values},
                                           optional={"tool_calls": json_values}), max_size=3)
            | json_values)
bodies = st.fixed_dictionaries({}, optional={
    "model": models, "messages": messages, "input": st.text(max_size=30) | json_values,
    "stream": st.booleans() | json_values, "stream_options": json_values | st.just({"include_usage": False}),
    "temperature": json_values, "max_tokens": st.integers(-2, 50) | json_values, "n": json_values,
})


@pytest.fixture(scope="module")
def fuzzer(hub, gateway):
    hub.create_user("fuzzer")
    who = Student("fuzzer", hub.start_server("fuzzer"))
    with httpx.Client(base_url=gateway.url, headers=who.headers, timeout=30) as client:
        yield client


def check(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    assert response.headers["content-type"].startswith(("application/json", "text/event-stream"))
    if response.status_code >= 400:
        error = response.json()["error"]
        assert isinstance(error["message"], str) and error["message"] and "\n" not in error["message"]
        assert "Traceback" not in response.text


@FUZZ
@given(path=st.sampled_from(PATHS), raw=st.binary(max_size=600))
def test_random_bytes(fuzzer, path, raw):
    check(fuzzer.post(path, content=raw))


@FUZZ
@given(path=st.sampled_from(PATHS), value=json_values)
def test_random_json_values(fuzzer, path, value):
    check(fuzzer.post(path, content=json.dumps(value)))


@FUZZ
@given(path=st.sampled_from(PATHS), body=bodies)
def test_almost_right_requests(fuzzer, path, body):
    check(fuzzer.post(path, content=json.dumps(body)))


@pytest.mark.parametrize("raw, code", [
    (b"", "invalid_json"),
    (b"{", "invalid_json"),
    (b"[1, 2]", "invalid_json"),
    (b'{"model": "echo-1", "messages": [], "x": NaN}', "invalid_json"),
    (b"\xff\xfe\x00", "invalid_json"),
    (b"[" * 100000 + b"]" * 100000, "invalid_json"),
    (b'{"messages": [{"role": "user", "content": "hi"}]}', "invalid_model"),
    (b'{"model": 7, "messages": [{"role": "user", "content": "hi"}]}', "invalid_model"),
    (b'{"model": "echo-1"}', "invalid_messages"),
    (b'{"model": "echo-1", "messages": "hi"}', "invalid_messages"),
    (b'{"model": "echo-1", "messages": ["hi"]}', "invalid_messages"),
    (b'{"model": "echo-1", "messages": [{"role": "user", "content": "hi"}], "stream": "yes"}', "invalid_stream"),
    (b'{"model": "echo-1", "messages": [{"role": "user", "content": "hi"}], "stream": true,'
     b' "stream_options": 1}', "invalid_stream"),
])
def test_named_mistakes_are_400_with_a_reason(fuzzer, raw, code):
    response = fuzzer.post("/deepseek/v1/chat/completions", content=raw)
    assert (response.status_code, response.json()["error"]["code"]) == (400, code)


def test_embeddings_need_input(fuzzer):
    response = fuzzer.post("/deepseek/v1/embeddings", json={"model": "echo-1"})
    assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_input")
    response = fuzzer.post("/deepseek/v1/embeddings", json={"model": "echo-1", "input": "x", "stream": True})
    assert response.status_code == 400


# -- size --


@pytest.fixture(scope="module")
def small(hub, make_config):
    from .conftest import GatewayThread
    running = GatewayThread(make_config(AI_MAX_REQUEST_SIZE="1K"))
    yield running
    running.stop()


def padded(size: int) -> bytes:
    """A valid chat request of exactly `size` bytes."""
    head, tail = b'{"model":"echo-1","messages":[{"role":"user","content":"', b'"}]}'
    return head + b"a" * (size - len(head) - len(tail)) + tail


def test_a_body_at_the_limit_is_fine_one_byte_more_is_413(small, student, database):
    alice = student()
    at_limit = httpx.post(f"{small.url}/deepseek/v1/chat/completions", headers=alice.headers, content=padded(1024))
    assert at_limit.status_code == 200, at_limit.text
    over = httpx.post(f"{small.url}/deepseek/v1/chat/completions", headers=alice.headers, content=padded(1025))
    assert over.status_code == 413
    assert over.json()["error"]["code"] == "request_too_large" and "AI_MAX_REQUEST_SIZE" in over.text
    assert len(database.settled_rows(alice.name)) == 1  # the refused one cost nothing


def test_a_chunked_body_over_the_limit_is_413(small, student):
    def pieces():
        for _ in range(20):
            yield b"x" * 100

    response = httpx.post(f"{small.url}/v1/chat/completions", headers=student().headers, content=pieces())
    assert response.status_code == 413


def test_an_absurd_content_length_is_refused_before_reading(small, student):
    with socket.create_connection(("127.0.0.1", int(small.url.rsplit(":", 1)[1])), timeout=10) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n"
                     + f"Authorization: Bearer {student().token}\r\n\r\n".encode())
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 413")
    assert b"request_too_large" in answer


def test_auth_comes_before_size(small):
    response = httpx.post(f"{small.url}/v1/chat/completions", content=padded(5000))
    assert response.status_code == 401


# -- what fuzzing found: each a client's mistake, each once a 5xx or a traceback --


@pytest.mark.parametrize("tool_calls", [5, 1.5, True, "x", {"a": 1}])
def test_tool_calls_that_are_not_a_list_are_left_to_the_vendor(fuzzer, tool_calls):
    body = {"model": "echo-1", "messages": [{"role": "assistant", "content": "hi", "tool_calls": tool_calls},
                                            {"role": "user", "content": "one two"}]}
    response = fuzzer.post("/deepseek/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text  # the fake vendor does not mind them


@pytest.mark.parametrize("path, model", [
    ("/deepseek/v1/chat/completions", "echo-\\ud800"),
    ("/deepseek/v1/embeddings", "echo-\\ud800"),
    ("/v1/chat/completions", "deepseek:echo-\\ud800"),
    ("/v1/embeddings", "deepseek:echo-\\ud800"),
    ("/v1/chat/completions", "nosuch\\udfff:echo-1"),
])
def test_a_model_id_with_a_lone_surrogate_is_400_naming_it(fuzzer, database, path, model):
    raw = ('{"model": "%s", "input": "x", "messages": [{"role": "user", "content": "hi"}]}' % model).encode()
    response = fuzzer.post(path, content=raw)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_model" and model.split(":")[-1] in error["message"]  # as JSON escapes it
    assert "lone surrogate" in error["message"]
    assert not [r for r in database.rows("fuzzer") if "\ufffd" in r["model"] or "\\u" in r["model"]]


# -- the raw HTTP a fuzzer sends, and the log it leaves --


@pytest.fixture(scope="module")
def log_lines():
    """Every log record of the process (the gateway runs in a thread of it), formatted."""
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Keep(logging.DEBUG)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield lines
    root.removeHandler(handler)
    root.setLevel(level)


def secrets_of(who: Student) -> list[str]:
    return [who.token, GATEWAY_TOKEN, DEEPSEEK_KEY, MOONSHOT_KEY]


def assert_clean_log(lines: list[str], secrets: list[str]) -> None:
    for line in lines:
        assert "Traceback" not in line and "Uncaught exception" not in line, line
        for secret in secrets:
            assert secret not in line, line


@dataclass
class RawAnswer:
    status: int
    headers: dict
    body: bytes


def send_raw(url: str, data: bytes) -> RawAnswer:
    """One request as bytes, answered on a connection of its own (read to its end)."""
    parts = urlsplit(url)
    received = b""
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        try:
            sock.sendall(data)
            while piece := sock.recv(65536):
                received += piece
        except (ConnectionResetError, BrokenPipeError):
            pass  # the server answered before reading all of it, then closed
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
    if headers.get("transfer-encoding") == "chunked":
        decoded = b""
        while body:
            size, _, rest = body.partition(b"\r\n")
            length = int(size, 16)
            decoded, body = decoded + rest[:length], rest[length + 2:]
            if not length:
                break
        body = decoded
    return RawAnswer(int(lines[0].split(" ")[1]), headers, body)


def request_bytes(method: bytes, path: bytes, headers: list[bytes], body: bytes) -> bytes:
    lines = [method + b" " + path + b" HTTP/1.1", b"Host: 127.0.0.1", b"Connection: close",
             b"Content-Length: " + str(len(body)).encode(), *headers]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def assert_openai_error(answer: RawAnswer) -> None:
    assert answer.status < 500, answer
    if answer.status >= 400:
        error = json.loads(answer.body)["error"]
        assert isinstance(error["message"], str) and error["message"] and isinstance(error["type"], str)
        assert "code" in error


@pytest.mark.parametrize("method", [b"TRACE", b"CONNECT", b"FOO", b"post", b"PUT"])
def test_a_method_a_route_does_not_serve_is_405_without_a_traceback(gateway, fuzzer, log_lines, method):
    who = fuzzer.headers["Authorization"].encode()
    before = len(log_lines)
    answer = send_raw(gateway.url, request_bytes(method, b"/deepseek/v1/chat/completions",
                                                 [b"Authorization: " + who], b'{"model": "echo-1"}'))
    assert answer.status == 405
    assert_openai_error(answer)
    time.sleep(0.2)  # the connection's close is handled after the answer
    assert_clean_log(log_lines[before:], [who.decode().split()[-1]])


@pytest.mark.parametrize("bad", [b"\r", b"\x00", b"\x7f\x00"])
@pytest.mark.parametrize("form", [b"Bearer %s", b"token %s", b"%s"])
def test_a_token_in_a_malformed_header_never_reaches_the_log(gateway, fuzzer, log_lines, bad, form):
    token = fuzzer.headers["Authorization"].split()[-1].encode()
    before = len(log_lines)
    answer = send_raw(gateway.url, request_bytes(b"POST", b"/v1/chat/completions",
                                                 [b"Authorization: " + form % (token + bad)], b"{}"))
    assert answer.status == 400  # tornado's own answer to a malformed message
    time.sleep(0.1)
    assert any("Malformed HTTP message" in line for line in log_lines[before:])  # it was logged...
    assert_clean_log(log_lines[before:], [token.decode()])  # ...without the token


# -- fuzzing methods, paths, headers and bodies as raw bytes --

METHODS = [b"GET", b"POST", b"PUT", b"DELETE", b"PATCH", b"OPTIONS", b"TRACE", b"CONNECT", b"FOO", b"post", b"get"]
RAW_PATHS = [p.encode() for p in PATHS] + [
    b"/v1/models", b"/deepseek/v1/models", b"/v1/models/deepseek:echo-1", b"/nosuch/v1/chat/completions",
    b"/services/ai-gateway/v1/chat/completions", b"/health", b"/", b"//v1//chat", b"/v1/models/%ff%fe",
    b"/v1/chat/completions?x=%ff&y", b"/deepseek/v1/models/\xc3\xa9", b"*", b"/%00"]
AUTHORIZATIONS = [b"Bearer %s", b"token %s", b"%s", b"Bearer %s\r", b"Bearer %s\x00", b"bearer  %s ",
                  b"Bearer", b"", b"Basic %s", b"Bearer %s, Bearer %s", b"Bearer \xff%s"]
# Each strategy draws the usual thing half the time, so that examples get past the HTTP
# parser and the token check to the routes, and a mistake the rest of the time.
methods = st.just(b"POST") | st.sampled_from(METHODS)
raw_paths = (st.sampled_from([p.encode() for p in PATHS]) | st.sampled_from(RAW_PATHS)
             | st.binary(min_size=1, max_size=30).filter(lambda p: not set(p) & set(b" \r\n")).map(lambda p: b"/" + p))
authorizations = st.just(b"Bearer %s") | st.sampled_from(AUTHORIZATIONS)
header_names = (st.sampled_from([b"X-Forwarded-For", b"Content-Type", b"Accept", b"Transfer-Encoding", b"X-Real-Ip",
                                 b"Expect", b"Host", b"Content-Encoding", b"Bad Name", b""])
                | st.binary(min_size=1, max_size=12))
header_values = (st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=30).map(str.encode)
                 | st.binary(max_size=40).filter(lambda v: b"\n" not in v))
raw_bodies = bodies.map(lambda b: json.dumps(b).encode()) | st.binary(max_size=200)


@settings(FUZZ, max_examples=400)
@given(method=methods, path=raw_paths, authorization=authorizations,
       extra=st.just([]) | st.lists(st.tuples(header_names, header_values), max_size=2), body=raw_bodies)
def test_raw_requests_get_json_errors_and_leave_a_clean_log(gateway, fuzzer, log_lines, method, path,
                                                            authorization, extra, body):
    who = Student("fuzzer", fuzzer.headers["Authorization"].split()[-1])
    headers = [b"Authorization: " + authorization.replace(b"%s", who.token.encode())]
    headers += [name + b": " + value for name, value in extra if name.lower() not in (b"content-length",)]
    answer = send_raw(gateway.url, request_bytes(method, path, headers, body))
    if not answer.body and answer.status == 400 and "content-type" not in answer.headers:
        event("400 from the HTTP parser")  # bytes that are not HTTP: no handler ever saw them
    elif method != b"HEAD":
        assert_openai_error(answer)
        # --hypothesis-show-statistics shows what the examples reached
        event(f"{answer.status} {json.loads(answer.body)['error']['code'] if answer.status >= 400 else ''}")
    assert_clean_log(log_lines, secrets_of(who))
