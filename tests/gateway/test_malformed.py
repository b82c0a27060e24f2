"""Whatever a client sends, the answer is JSON and never a 500 (property-based)."""

import json
import socket

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import Student

PATHS = ["/deepseek/v1/chat/completions", "/v1/chat/completions", "/deepseek/v1/embeddings", "/v1/embeddings"]
# database=None: no example database (conftest keeps hypothesis's caches out of the repository).
FUZZ = settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
models = st.sampled_from(["echo-1", "deepseek:echo-1", "ollama:echo-2", "nosuch:x", ":", "deepseek:", "", " ",
                          "a\u0000b", "x" * 300]) | st.text(max_size=20) | json_values
messages = (st.lists(st.fixed_dictionaries({"role": st.sampled_from(["user", "system", "assistant"]) | json_values,
                                            "content": st.text(max_size=50) | json_values}), max_size=3)
            | json_values)
bodies = st.fixed_dictionaries({}, optional={
    "model": models, "messages": messages, "input": st.text(max_size=30) | json_values,
    "stream": st.booleans() | json_values, "stream_options": json_values | st.just({"include_usage": False}),
    "temperature": json_values,
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
    assert len(database.rows(alice.name)) == 1  # the refused one cost nothing


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
