"""Streams pass through event for event, as they come, and are metered on the way."""

import json
import math
import socket
import time

import httpx
import pytest

from .conftest import DEEPSEEK_KEY

TEXT = "the quick brown fox jumps over the lazy dog"
ANSWER = "echo-1: " + TEXT[::-1]


def body(**extra):
    return {"model": "echo-1", "stream": True, "messages": [{"role": "user", "content": TEXT}], **extra}


def direct(upstream, payload) -> bytes:
    """The same request sent straight to the vendor."""
    response = httpx.post(f"{upstream.url}/v1/chat/completions", json=payload,
                          headers={"Authorization": f"Bearer {DEEPSEEK_KEY}"})
    return response.content


def events(raw: bytes) -> list[dict]:
    return [json.loads(e[6:]) for e in raw.decode().split("\n\n") if e.startswith("data: {")]


def test_events_pass_unchanged_and_the_usage_chunk_is_stripped(gateway, upstream, student, database):
    alice = student()
    response = httpx.post(f"{gateway.url}/deepseek/v1/chat/completions", headers=alice.headers, json=body())
    assert response.headers["content-type"].startswith("text/event-stream")
    # Byte for byte what the vendor sends a client that did not ask for usage...
    assert response.content == direct(upstream, body())
    assert all(e["choices"] for e in events(response.content))
    # ...although the gateway asked for it, to meter the stream.
    sent = [r for r in upstream.state.requests if r.body and r.body.get("stream")][-2]
    assert sent.body["stream_options"] == {"include_usage": True}
    [row] = database.settled_rows(alice.name)
    assert (row["status"], row["prompt_tokens"], row["completion_tokens"], row["total_tokens"],
            row["estimated"], row["stream"]) == ("ok", 9, 10, 19, False, True)
    assert 0 <= row["ttft_ms"] <= row["latency_ms"]


def test_the_usage_chunk_is_kept_when_the_client_asked(gateway, upstream, student, database):
    alice = student()
    asked = body(stream_options={"include_usage": True})
    response = httpx.post(f"{gateway.url}/v1/chat/completions", headers=alice.headers,
                          json={**asked, "model": "deepseek:echo-1"})
    assert response.content == direct(upstream, asked)
    last = events(response.content)[-1]
    assert last["choices"] == [] and last["usage"]["total_tokens"] == 19
    assert database.settled_rows(alice.name)[0]["total_tokens"] == 19


def test_each_event_is_sent_on_as_soon_as_it_arrives(gateway, student):
    """With 0.1 s between the vendor's chunks, the student sees them 0.1 s apart too."""
    arrivals = []
    start = time.perf_counter()
    with httpx.stream("POST", f"{gateway.url}/deepseek/v1/chat/completions", headers=student().headers,
                      json=body(x_test={"delay": 0.1}), timeout=30) as response:
        for piece in response.iter_raw():
            arrivals += [time.perf_counter() - start] * piece.count(b"data: {")
    chunks = math.ceil(len(ANSWER) / 4)
    assert len(arrivals) == chunks + 1  # the content chunks and the finish chunk
    assert arrivals[0] < 0.1 * chunks / 2  # the first long before the last
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:chunks])]
    assert min(gaps) > 0.05, gaps  # not batched up


def test_usage_in_every_chunk_keeps_the_last(gateway, student, database):
    alice = student()
    response = httpx.post(f"{gateway.url}/deepseek/v1/chat/completions", headers=alice.headers,
                          json=body(x_test={"usage": "every"}))
    assert response.status_code == 200
    [row] = database.settled_rows(alice.name)
    assert (row["prompt_tokens"], row["completion_tokens"], row["estimated"]) == (9, 10, False)


def test_no_usage_from_the_vendor_means_an_estimate(gateway, student, database):
    alice = student()
    httpx.post(f"{gateway.url}/deepseek/v1/chat/completions", headers=alice.headers,
               json=body(x_test={"usage": "none"}))
    [row] = database.settled_rows(alice.name)
    prompt = 4 + math.ceil(len(TEXT) / 4)  # message overhead + ~4 characters per token
    assert (row["prompt_tokens"], row["completion_tokens"], row["estimated"]) == (
        prompt, math.ceil(len(ANSWER) / 4), True)


def test_a_vendors_error_event_is_scrubbed(gateway, student, database):
    alice = student()
    response = httpx.post(f"{gateway.url}/deepseek/v1/chat/completions", headers=alice.headers,
                          json=body(x_test={"error_event": True}))
    assert DEEPSEEK_KEY not in response.text
    error = [e for e in events(response.content) if "error" in e][0]["error"]
    assert error["message"].startswith("upstream overloaded; key ***")
    [row] = database.settled_rows(alice.name)
    assert row["status"] == "error" and row["completion_tokens"] == 1  # "echo" so far


def test_a_client_that_hangs_up_mid_stream_leaves_a_row(gateway, student, database):
    alice = student()
    with httpx.stream("POST", f"{gateway.url}/deepseek/v1/chat/completions", headers=alice.headers,
                      json=body(x_test={"stall_after": 3}), timeout=30) as response:
        received = b""
        for piece in response.iter_raw():
            received += piece
            if received.count(b"data: {") == 3:
                break  # leave while the vendor is still "thinking"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and database.rows(alice.name)[0]["status"] == "started":
        time.sleep(0.05)
    [row] = database.rows(alice.name)
    assert (row["status"], row["http_status"], row["estimated"]) == ("client_disconnected", 200, True)
    assert row["completion_tokens"] == 3  # three chunks of 4 characters
    assert row["prompt_tokens"] == 4 + math.ceil(len(TEXT) / 4)
    assert row["latency_ms"] < 5000  # noticed at once, not when the vendor gave up


def test_a_client_that_hangs_up_before_any_answer_leaves_a_row(gateway, student, database):
    alice = student()
    payload = json.dumps({**body(stream=False), "x_test": {"stall": True}}).encode()
    with socket.create_connection(("127.0.0.1", int(gateway.url.rsplit(":", 1)[1]))) as sock:
        sock.sendall(b"POST /deepseek/v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     + f"Authorization: Bearer {alice.token}\r\nContent-Length: {len(payload)}\r\n\r\n".encode()
                     + payload)
        time.sleep(0.5)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and database.rows(alice.name)[0]["status"] == "started":
        time.sleep(0.05)
    [row] = database.rows(alice.name)
    assert (row["status"], row["http_status"]) == ("client_disconnected", 499)
    assert row["total_tokens"] == row["prompt_tokens"] > 0


def test_a_vendor_that_stalls_mid_stream_is_cut_off(start_gateway, student, database):
    gateway = start_gateway(AI_REQUEST_TIMEOUT="1s")
    alice = student()
    response = httpx.post(f"{gateway.url}/deepseek/v1/chat/completions", headers=alice.headers,
                          json=body(x_test={"stall_after": 2}), timeout=30)
    assert response.status_code == 200
    error = [e for e in events(response.content) if "error" in e][0]["error"]
    assert error["code"] == "upstream_timeout" and "cut short" in error["message"]
    [row] = database.settled_rows(alice.name)
    assert (row["status"], row["completion_tokens"], row["estimated"]) == ("timeout", 2, True)


@pytest.mark.parametrize("stream", [False, True])
def test_the_openai_sdk_shape(gateway, student, stream):
    """What the OpenAI SDK parses: a chat.completion, or chunks ending in [DONE]."""
    response = httpx.post(f"{gateway.url}/v1/chat/completions", headers=student().headers,
                          json={**body(stream=stream), "model": "ollama:echo-1"})
    if stream:
        assert response.text.rstrip().endswith("data: [DONE]")
        text = "".join(e["choices"][0]["delta"].get("content") or "" for e in events(response.content))
    else:
        text = response.json()["choices"][0]["message"]["content"]
    assert text == ANSWER
