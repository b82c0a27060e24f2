"""Each vendor's provider against the loopback server: settings, model id, streaming."""

from __future__ import annotations

import asyncio

import pytest
from langchain_core.messages import HumanMessage

from aihub_providers.errors import ProviderError
from aihub_providers.providers import PROVIDERS
from aihub_providers.vendors import VENDORS, VENDORS_LIST

from fake_openai import answer_for

from .conftest import key_for

vendor_ids = pytest.mark.parametrize("vendor", VENDORS_LIST, ids=lambda v: v.id)


def make(vendor, model, **kwargs):
    return PROVIDERS[vendor.id](model_id=model, **kwargs)


def expected(model: str, prompt: str) -> str:
    return answer_for(model, [{"role": "user", "content": prompt}])


@vendor_ids
def test_key_and_base_url_are_read_from_the_environment_at_call_time(vendor, point_at, server, monkeypatch):
    cfg = point_at(vendor, "/first")
    first = make(vendor, cfg.model).invoke("hello there world")
    assert first.content == expected(cfg.model, "hello there world")

    monkeypatch.setenv(vendor.key_env, "k3y-rotated-5a5a5a5a")
    point_at_second = cfg.base.replace("/first", "/second")
    monkeypatch.setenv(vendor.base_env, point_at_second)
    second = make(vendor, cfg.model).invoke("second call")
    assert second.content == expected(cfg.model, "second call")

    (r1, r2) = server.state.requests
    assert (r1.path, r1.authorization) == ("/first/v1/chat/completions", f"Bearer {cfg.key}")
    assert (r2.path, r2.authorization) == ("/second/v1/chat/completions", "Bearer k3y-rotated-5a5a5a5a")


@vendor_ids
def test_environment_wins_over_a_stale_key_and_base_url_in_arguments(vendor, point_at, server):
    cfg = point_at(vendor)
    stale = {
        "api_key": "stale-key-1",
        "openai_api_key": "stale-key-2",
        vendor.key_env.lower(): "stale-key-3",  # how jupyter-ai's config passes keys
        "base_url": "http://127.0.0.1:9/v1",
        "openai_api_base": "http://127.0.0.1:9/v1",
    }
    provider = make(vendor, cfg.model, **stale)
    assert provider.invoke("hi").content == expected(cfg.model, "hi")
    assert server.state.requests[0].authorization == f"Bearer {cfg.key}"
    assert "stale" not in repr(provider.model_extra or {})


@vendor_ids
def test_model_id_is_forwarded_and_any_id_works(vendor, point_at, server):
    cfg = point_at(vendor)
    for model in (cfg.model, "zeta-1"):  # zeta-1 is in no table: registry semantics
        assert make(vendor, model).invoke("abc").content == expected(model, "abc")
    assert [r.body["model"] for r in server.state.requests] == [cfg.model, "zeta-1"]


@vendor_ids
def test_streaming_yields_chunks_and_usage(vendor, point_at, server):
    cfg = point_at(vendor)
    prompt = "stream me a reversed sentence"
    chunks = list(make(vendor, cfg.model).stream(prompt))
    text = "".join(c.content for c in chunks)
    assert text == expected(cfg.model, prompt)
    assert len([c for c in chunks if c.content]) > 3  # really streamed, not one block
    body = server.state.requests[0].body
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    usage = [c.usage_metadata for c in chunks if c.usage_metadata]
    assert usage and usage[-1]["input_tokens"] == len(prompt.split())
    assert usage[-1]["output_tokens"] == len(text.split())


@vendor_ids
def test_async_invoke_and_stream(vendor, point_at):
    cfg = point_at(vendor)
    provider = make(vendor, cfg.model)

    async def run():
        whole = await provider.ainvoke([HumanMessage("async one")])
        parts = [c.content async for c in provider.astream("async two")]
        return whole.content, parts

    whole, parts = asyncio.run(run())
    assert whole == expected(cfg.model, "async one")
    assert "".join(parts) == expected(cfg.model, "async two") and len(parts) > 2


@vendor_ids
def test_defaults_timeout_retries_and_base_url(vendor, monkeypatch):
    monkeypatch.setenv(vendor.key_env, key_for(vendor))
    if vendor.default_base is None:
        with pytest.raises(ProviderError, match=vendor.base_env):
            make(vendor, "m")
        return
    provider = make(vendor, "m")
    assert provider.openai_api_base == vendor.api_base(vendor.default_base)
    assert provider.request_timeout == 60 and provider.max_retries == 1
    assert provider.openai_api_key.get_secret_value() == key_for(vendor)


def test_an_argument_is_used_when_the_environment_has_no_value(point_at, server, monkeypatch):
    vendor = VENDORS["moonshot"]
    cfg = point_at(vendor)
    monkeypatch.setenv(vendor.key_env, "")  # empty counts as unset
    make(vendor, cfg.model, api_key="k3y-from-argument-11").invoke("x")
    assert server.state.requests[0].authorization == "Bearer k3y-from-argument-11"


@pytest.mark.parametrize("vendor_id, sent", [("ollama", "ollama"), ("openai-compatible", "EMPTY")])
def test_keyless_vendors_send_a_placeholder_key(vendor_id, sent, point_at, server, monkeypatch):
    vendor = VENDORS[vendor_id]
    cfg = point_at(vendor)
    monkeypatch.delenv(vendor.key_env)
    assert make(vendor, cfg.model).invoke("ok").content == expected(cfg.model, "ok")
    assert server.state.requests[0].authorization == f"Bearer {sent}"


def test_ollama_base_url_is_the_server_and_v1_is_added(point_at, server):
    cfg = point_at(VENDORS["ollama"])
    assert not cfg.base.endswith("/v1")
    make(VENDORS["ollama"], cfg.model).invoke("q")
    assert server.state.requests[0].path == "/v1/chat/completions"


@vendor_ids
def test_options_from_the_magic_reach_the_request(vendor, point_at, server):
    """`%%ai deepseek:deepseek-chat -m {"temperature":0.2,"max_tokens":7}`"""
    cfg = point_at(vendor)
    make(vendor, cfg.model, temperature=0.2, max_tokens=7).invoke("q")
    list(make(vendor, cfg.model, max_tokens=9).stream("q"))
    plain, streamed = (r.body for r in server.state.requests)
    assert plain["temperature"] == 0.2
    # each vendor gets the length limit under the name it reads
    other = {"max_tokens", "max_completion_tokens"} - {vendor.max_tokens_field}
    assert (plain[vendor.max_tokens_field], streamed[vendor.max_tokens_field]) == (7, 9)
    assert not other & (set(plain) | set(streamed))


def test_a_plain_answer_carries_usage(point_at, server):
    cfg = point_at(VENDORS["deepseek"])
    answer = make(VENDORS["deepseek"], cfg.model).invoke("count these four words")
    assert answer.usage_metadata["input_tokens"] == 4
    assert answer.usage_metadata["output_tokens"] == len(answer.content.split())
    assert answer.response_metadata["finish_reason"] == "stop"


def test_usage_sent_in_every_chunk_is_counted_once(point_at, server):
    """Some vendors send running usage in every chunk: the last one is the total."""
    cfg = point_at(VENDORS["zhipu"])
    server.state.steer = {"usage": "every"}
    chunks = list(make(VENDORS["zhipu"], cfg.model).stream("a b c"))
    whole = chunks[0]
    for chunk in chunks[1:]:
        whole += chunk
    assert whole.content == expected(cfg.model, "a b c")
    assert whole.usage_metadata["input_tokens"] == 3
    assert whole.usage_metadata["output_tokens"] == len(whole.content.split())


def test_other_model_options_reach_the_request(point_at, server):
    """`-m {"top_p":0.5,"seed":7}`: known or not, they go into the body, as ChatOpenAI's
    model_kwargs did; none stays behind as an extra field."""
    cfg = point_at(VENDORS["moonshot"])
    provider = make(VENDORS["moonshot"], cfg.model, top_p=0.5, seed=7, stop=["END"])
    provider.invoke("q")
    body = server.state.requests[0].body
    assert (body["top_p"], body["seed"], body["stop"]) == (0.5, 7, ["END"])
    assert not provider.model_extra
