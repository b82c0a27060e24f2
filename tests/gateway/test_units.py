"""The gateway's pure parts, without servers: stream splitting, metering, bodies, routing."""

import asyncio
import json
import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aihub.gateway.config import config_from_settings, routable_upstreams
from aihub.gateway.errors import GatewayError
from aihub.gateway.ledger import not_text, storable
from aihub.gateway.logs import HideSecrets
from aihub.gateway.metering import Meter, answer_cap, chat_prompt_tokens, text_tokens
from aihub.gateway.payloads import CHAT, EMBEDDINGS, prepare
from aihub.gateway.quotas import Quotas
from aihub.gateway.sse import EventStream
from aihub.settings import load


def chunk(content=None, usage=None, choices=True):
    data = {"id": "c", "choices": [{"index": 0, "delta": {"content": content}}] if choices else []}
    if usage:
        data["usage"] = usage
    return b"data: " + json.dumps(data).encode() + b"\n\n"


USAGE = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
STREAM = chunk("Hel") + b": keep-alive\n\n" + chunk("lo") + chunk(usage=USAGE, choices=False) + b"data: [DONE]\n\n"


def run(pieces, strip=True):
    meter = Meter(prompt_estimate=4)
    events = EventStream(meter, strip_usage_chunk=strip, clean=lambda t: t.replace("sk-secret", "***"))
    out = b"".join(events.feed(p) for p in pieces) + events.close()
    return out, meter, events


@settings(max_examples=200, database=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_any_split_of_the_stream_gives_the_same_events(cuts):
    bounds = [0, *sorted(cuts), len(STREAM)]
    out, meter, events = run([STREAM[a:b] for a, b in zip(bounds, bounds[1:])])
    assert out == STREAM.replace(chunk(usage=USAGE, choices=False), b"")
    assert meter.tokens() == (3, 2, 5, False) and events.done


def test_the_usage_chunk_stays_when_asked_and_crlf_streams_work():
    assert run([STREAM], strip=False)[0] == STREAM
    crlf = STREAM.replace(b"\n", b"\r\n")
    out, meter, _ = run([crlf[i:i + 7] for i in range(0, len(crlf), 7)])
    assert out == crlf.replace(chunk(usage=USAGE, choices=False).replace(b"\n", b"\r\n"), b"")
    assert meter.tokens()[2] == 5


def test_an_unchanged_piece_is_passed_without_copying():
    events = EventStream(Meter(0), strip_usage_chunk=True, clean=str)
    piece = chunk("a") + chunk("b")
    assert events.feed(piece) is piece


def test_without_usage_the_text_is_estimated():
    out, meter, _ = run([chunk("abcdefgh"), chunk("你好"), b"data: [DONE]\n\n"])
    assert meter.tokens() == (4, 2 + 2, 8, True)
    assert meter.tokens(answered=False) == (4, 0, 4, True)


def test_an_error_event_is_scrubbed_and_remembered():
    bad = b'data: {"error": {"message": "key sk-secret refused", "code": 500}}\n\n'
    out, _, events = run([chunk("a"), bad])
    assert b"sk-secret" not in out and b'"message": "key *** refused"' in out
    assert events.error == "key *** refused"


def test_a_trailing_event_without_its_blank_line_is_sent_at_the_end():
    out, meter, _ = run([chunk("a") + b'data: {"choices": [{"delta": {"content": "bcde"}}]}'])
    assert out.endswith(b'"bcde"}}]}') and meter.tokens()[1] == 2


@pytest.mark.parametrize("usage, expected", [
    ({"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}, (3, 2, 5, False)),
    ({"prompt_tokens": 3, "total_tokens": 5}, (3, 2, 5, False)),
    ({"prompt_tokens": 3, "completion_tokens": 2}, (3, 2, 5, False)),
    ({"prompt_tokens": 4}, (4, 0, 4, False)),  # embeddings
    ({"prompt_tokens": -1, "completion_tokens": 1e12, "total_tokens": "x"}, (0, 2**31 - 1, 2**31 - 1, False)),
    ({"completion_tokens": 3}, (9, 0, 9, True)),  # not usage: ignored
    ("nonsense", (9, 0, 9, True)),
])
def test_usage_figures_are_read_defensively(usage, expected):
    meter = Meter(9)
    meter.saw_usage(usage)
    assert meter.tokens() == expected


def test_estimates():
    assert text_tokens("abcd" * 10) == 10
    assert text_tokens("你好世界") == 4  # one per CJK character: chars/4 would undercount
    assert chat_prompt_tokens([{"role": "user", "content": "abcd"},
                               {"role": "user", "content": [{"type": "text", "text": "abcdefgh"}, {"x": 1}]},
                               "junk", {"content": None}]) == 4 + 1 + 4 + 2 + 4


# -- bodies --

SETTINGS = load({"DEEPSEEK_API_KEY": "sk-x-123456", "OPENAI_COMPATIBLE_BASE_URL": "http://vllm:8000/v1"})
CONFIG = config_from_settings(SETTINGS, {"POSTGRES_PASSWORD": "p" * 8, "GATEWAY_API_TOKEN": "t" * 8})


def ready(body, endpoint=CHAT, provider="deepseek"):
    raw = json.dumps(body).encode()
    return raw, prepare(raw, endpoint, provider, CONFIG.upstreams, CONFIG.unconfigured, 4096)


def test_a_body_needing_no_change_is_the_clients_bytes():
    raw, request = ready({"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": 5})
    assert request.body is raw and not request.stream


def test_a_stream_asks_for_usage_keeping_the_clients_options():
    _, request = ready({"model": "m", "stream": True, "stream_options": {"other": 1}, "max_tokens": 5,
                        "messages": [{"role": "user", "content": "x"}]})
    assert json.loads(request.body)["stream_options"] == {"other": 1, "include_usage": True}
    assert not request.client_wants_usage and request.injected_stream_options
    raw, asked = ready({"model": "m", "stream": True, "stream_options": {"include_usage": True}, "max_tokens": 5,
                        "messages": [{"role": "user", "content": "x"}]})
    assert asked.body is raw and asked.client_wants_usage


def test_provider_model_is_split_at_the_first_colon():
    _, request = ready({"model": "openai-compatible:qwen2.5:0.5b", "messages": [{}]}, provider=None)
    assert (request.upstream.id, request.model, json.loads(request.body)["model"]) == (
        "openai-compatible", "qwen2.5:0.5b", "qwen2.5:0.5b")


def test_embeddings_estimate_their_input():
    _, request = ready({"model": "m", "input": ["abcd", [1, 2, 3]]}, EMBEDDINGS)
    assert request.prompt_estimate == 1 + 3


def test_a_lone_surrogate_is_re_encoded_safely():
    raw = b'{"model": "deepseek:m", "messages": [{"role": "user", "content": "\\ud800"}]}'
    request = prepare(raw, CHAT, None, CONFIG.upstreams, CONFIG.unconfigured, 4096)
    assert b"\\ud800" in request.body


# -- configuration --


def test_routable_vendors_follow_the_chat_panels_rule():
    upstreams, unconfigured = routable_upstreams(SETTINGS)
    assert list(upstreams) == ["deepseek", "openai-compatible", "ollama"]
    assert upstreams["ollama"].api_base == "http://ollama:11434/v1"
    assert (upstreams["ollama"].key, upstreams["openai-compatible"].key) == ("ollama", "EMPTY")
    assert upstreams["deepseek"].url("chat/completions") == "https://api.deepseek.com/v1/chat/completions"
    assert unconfigured["qwen"] == "DASHSCOPE_API_KEY"


def test_the_config_never_shows_its_secrets():
    assert "sk-x-123456" not in repr(CONFIG) and "pppppppp" not in repr(CONFIG)
    assert set(CONFIG.secrets) >= {"sk-x-123456", "pppppppp", "tttttttt"}


def test_errors_are_one_line_of_openai_json():
    error = GatewayError(429, "too\nmany", "x")
    assert json.loads(error.body()) == {"error": {"message": "too many", "type": "rate_limit_error", "code": "x"}}


# -- reservations --


@pytest.mark.parametrize("limits, choices, expected", [
    ([None, None], None, (4096, True)),  # none named: the default, which the gateway then sends
    ([7, None], None, (7, False)),
    ([None, 9], 1, (9, False)),
    ([7, 9], None, (9, False)),  # both: the larger, whichever the vendor reads
    ([7, None], 3, (21, False)),  # n answers
    ([None, None], 2, (8192, True)),
    ([2**40, None], 2**40, (2**31 - 1, False)),  # the ledger's integer column
    ([7, None], True, (7, False)),  # n: true is not a number
])
def test_the_answer_cap(limits, choices, expected):
    assert answer_cap(limits, choices, 4096) == expected


@pytest.mark.parametrize("limit", [0, -1, 1.5, True, "10", [1]])
def test_an_answer_cap_that_is_not_a_count_is_refused(limit):
    with pytest.raises(ValueError):
        answer_cap([limit, None], None, 4096)


def test_the_reservation_and_what_goes_beyond_it():
    meter = Meter(prompt_estimate=10, completion_cap=100)
    assert (meter.reservation, meter.tokens_beyond_reservation) == (110, 0)
    meter.saw_usage({"prompt_tokens": 30, "completion_tokens": 100, "total_tokens": 130})
    assert meter.tokens_beyond_reservation == 20  # a prompt larger than its estimate


def test_a_request_naming_no_cap_gets_the_default_in_the_vendors_own_field():
    settings = load({"OPENAI_API_KEY": "sk-x-123456", "DEEPSEEK_API_KEY": "sk-y-123456"})
    config = config_from_settings(settings, {"POSTGRES_PASSWORD": "p" * 8, "GATEWAY_API_TOKEN": "t" * 8})
    raw = json.dumps({"model": "m", "messages": [{"role": "user", "content": "x"}]}).encode()
    for provider, field in (("openai", "max_completion_tokens"), ("deepseek", "max_tokens")):
        request = prepare(raw, CHAT, provider, config.upstreams, config.unconfigured, 300)
        assert json.loads(request.body)[field] == 300 and request.completion_cap == 300
    embedding = prepare(b'{"model": "m", "input": "abcd"}', EMBEDDINGS, "deepseek", config.upstreams,
                        config.unconfigured, 300)
    assert (embedding.completion_cap, b"max_tokens" in embedding.body) == (0, False)


def test_a_model_id_that_is_not_text_is_refused_naming_it():
    raw = b'{"model": "m\\ud800", "messages": [{"role": "user", "content": "x"}]}'
    with pytest.raises(GatewayError) as refused:
        prepare(raw, CHAT, "deepseek", CONFIG.upstreams, CONFIG.unconfigured, 300)
    assert refused.value.status == 400 and '"m\\ud800"' in refused.value.message


def test_tool_calls_of_any_shape_are_estimated_without_failing():
    for calls in (5, 1.5, True, "abc", {"a": 1}, [1, {"function": {"arguments": "abcd"}}]):
        assert chat_prompt_tokens([{"role": "assistant", "tool_calls": calls}]) >= 4


def test_text_the_ledger_stores():
    assert not_text("echo-1 你好") is None
    assert "NUL" in not_text("a\x00b") and "surrogate" in not_text("a\ud800")
    assert storable("a\x00b\udfffc") == "a\ufffdb\ufffdc" and storable(None) is None


def test_error_bodies_survive_a_vendors_lone_surrogate():
    body = GatewayError(400, "bad \ud800 thing", "x").body()
    assert json.loads(body)["error"]["message"] == "bad \ud800 thing"


def test_log_records_lose_quoted_header_values_and_secrets():
    hiding = HideSecrets()
    hiding.secrets.add("s3cret-value")
    record = logging.LogRecord("tornado.general", logging.INFO, __file__, 1, "Malformed HTTP message from %s: %s",
                               ("1.2.3.4", "Invalid header value 'plainhex0123\\x00'"), None)
    assert hiding.filter(record) and record.getMessage() == (
        "Malformed HTTP message from 1.2.3.4: Invalid header value (value hidden)")
    record = logging.LogRecord("aihub.gateway", logging.INFO, __file__, 1, "key s3cret-value, Bearer abc", (), None)
    hiding.filter(record)
    assert record.getMessage() == "key ***, ***"


def test_admission_refuses_a_user_name_the_ledger_cannot_store_before_touching_it():
    _, request = ready({"model": "m", "messages": [{"role": "user", "content": "x"}]})
    quotas = Quotas(ledger=None, daily_budget=0, max_concurrent=0)  # never reached
    with pytest.raises(GatewayError) as refused:
        asyncio.run(quotas.admit("li\ud800", request, Meter(1, 1)))
    assert (refused.value.status, refused.value.code) == (400, "invalid_user")
    assert '"li\\ud800"' in refused.value.message
