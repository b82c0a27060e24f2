"""Every failure becomes one ProviderError line that says what to do, and no key."""

from __future__ import annotations

import asyncio
import re

import pytest

from aihub_providers.errors import ProviderError, redact_url, scrub
from aihub_providers.providers import PROVIDERS
from aihub_providers.vendors import VENDORS, VENDORS_LIST

from fake_openai import closed_port

from .conftest import SERVED_MODELS, key_for

vendor_ids = pytest.mark.parametrize("vendor", VENDORS_LIST, ids=lambda v: v.id)
SECRET_SHAPES = re.compile(r"sk-|nvapi-|Bearer", re.I)


def sync_invoke(provider, prompt):
    return provider.invoke(prompt).content


def sync_stream(provider, prompt):
    return "".join(c.content for c in provider.stream(prompt))


def async_invoke(provider, prompt):
    return asyncio.run(provider.ainvoke(prompt)).content


def async_stream(provider, prompt):
    async def run():
        return "".join([c.content async for c in provider.astream(prompt)])

    return asyncio.run(run())


CALLS = [sync_invoke, sync_stream, async_invoke, async_stream]
call_ids = pytest.mark.parametrize("call", CALLS, ids=lambda f: f.__name__)


def failure(vendor, call=sync_invoke, model=None, **kwargs) -> str:
    """The message of the ProviderError a call raises; checks it is one clean line."""
    provider = PROVIDERS[vendor.id](model_id=model or "test-model", **kwargs)
    with pytest.raises(ProviderError) as caught:
        call(provider, "hello")
    error = caught.value
    message = str(error)
    assert error.__cause__ is None and error.__suppress_context__  # raised `from None`
    assert "\n" not in message and len(message) < 400
    assert key_for(vendor) not in message
    assert not SECRET_SHAPES.search(message), message
    return message


# -- settings missing --


@pytest.mark.parametrize(
    "vendor", [v for v in VENDORS_LIST if v.missing_setting({})], ids=lambda v: v.id
)
def test_missing_setting_names_the_variable(vendor):
    variable = vendor.missing_setting({})
    with pytest.raises(ProviderError) as caught:
        PROVIDERS[vendor.id](model_id="m")
    assert str(caught.value) == (
        f"{vendor.name} is not set up: the admin must set {variable} in .env "
        "(then restart your server)"
    )


def test_missing_key_message_for_deepseek_reads_as_the_brief_says():
    with pytest.raises(ProviderError) as caught:
        PROVIDERS["deepseek"](model_id="deepseek-chat")
    assert str(caught.value) == (
        "DeepSeek is not set up: the admin must set DEEPSEEK_API_KEY in .env "
        "(then restart your server)"
    )


# -- answers from the server --


@vendor_ids
@pytest.mark.parametrize("status", ["401", "403"])
def test_rejected_key(vendor, status, point_at, server):
    point_at(vendor)
    server.state.steer = {"error": status}
    assert failure(vendor) == (
        f"{vendor.name} rejected the API key (HTTP {status}): check {vendor.key_env} in .env"
    )


@vendor_ids
@call_ids
def test_unknown_model_lists_the_models_the_server_has(vendor, call, point_at, server):
    point_at(vendor)
    message = failure(vendor, call, model="no-such-model")
    models = sorted(SERVED_MODELS)
    assert message == (
        f"{vendor.name} has no model 'no-such-model'. Models: "
        + ", ".join(models[:12])
        + f", … ({len(models)} in all)"
    )
    assert server.state.requests[-1].path.endswith("/v1/models")


@vendor_ids
@pytest.mark.parametrize("mode", ["404", "400-model"])
def test_unknown_model_without_a_model_list_falls_back_to_the_examples(vendor, mode, point_at, server):
    point_at(vendor)
    server.state.steer = {"error": mode}
    server.state.models_status = 500
    listed = f". Models: {', '.join(sorted(vendor.examples))}" if vendor.examples else ""
    assert failure(vendor, model="no-such-model") == (
        f"{vendor.name} has no model 'no-such-model'{listed}"
    )


@vendor_ids
def test_wrong_base_url_names_the_base_url_variable(vendor, point_at, server, monkeypatch):
    cfg = point_at(vendor)
    wrong = cfg.base.replace(server.url, server.url + "/wrong")
    monkeypatch.setenv(vendor.base_env, wrong)
    assert failure(vendor) == (
        f"{vendor.name} answered HTTP 404 at {vendor.api_base(wrong)}: "
        f"check {vendor.base_env} in .env"
    )


@vendor_ids
def test_rate_limit_repeats_the_vendor_message_scrubbed(vendor, point_at, server):
    point_at(vendor)
    server.state.steer = {"error": "429"}
    message = failure(vendor)
    assert message.startswith(f"{vendor.name} is rate-limiting or out of quota (HTTP 429): Quota")
    assert message.endswith("upgrade your plan, wait and retry")
    assert message.count("***") == 3  # the key, an sk-... and an nvapi-... token
    assert len(server.state.requests) == 2  # one retry, then the error


@vendor_ids
@pytest.mark.parametrize("status", ["500", "502"])
def test_server_failure(vendor, status, point_at, server):
    point_at(vendor)
    server.state.steer = {"error": status}
    assert failure(vendor) == f"{vendor.name} failed (HTTP {status}): try again later"
    assert len(server.state.requests) == 2  # max_retries=1


@vendor_ids
@pytest.mark.parametrize("call, steer", [(sync_invoke, {"stall": True}), (sync_stream, {"stall_after": 1})],
                         ids=["no-answer", "stalls-mid-stream"])
def test_timeout_names_the_limit_and_the_url(vendor, call, steer, point_at, server):
    cfg = point_at(vendor)
    server.state.steer = steer
    assert failure(vendor, call, model=cfg.model, timeout=0.3) == (
        f"{vendor.name} did not answer within 0.3 s ({cfg.api_base}): "
        "check the network or AI_PROXY_URL"
    )


@vendor_ids
@call_ids
def test_connection_refused(vendor, call, point_at, monkeypatch):
    cfg = point_at(vendor)
    port = closed_port()
    base = cfg.base.replace(cfg.base.split("/")[2], f"127.0.0.1:{port}")
    monkeypatch.setenv(vendor.base_env, base)
    assert failure(vendor, call) == (
        f"Cannot reach {vendor.name} at {vendor.api_base(base)}: connection refused; "
        "check the network, HTTPS_PROXY/AI_PROXY_URL"
    )


def test_unreachable_proxy_is_named_without_its_password(point_at, monkeypatch):
    vendor = VENDORS["deepseek"]
    cfg = point_at(vendor)
    proxy_port = closed_port()
    monkeypatch.delenv("NO_PROXY")
    monkeypatch.setenv("HTTP_PROXY", f"http://student:pr0xy-pass@127.0.0.1:{proxy_port}")
    # a timeout no other test uses: LangChain caches one HTTP client per (URL, timeout)
    message = failure(vendor, model=cfg.model, timeout=7.25)
    assert message == (
        f"Cannot reach DeepSeek at {cfg.api_base} through the proxy "
        f"http://student:***@127.0.0.1:{proxy_port}: connection refused; "
        "check the network, HTTPS_PROXY/AI_PROXY_URL"
    )
    assert "pr0xy-pass" not in message


@call_ids
def test_errors_while_streaming_and_async_map_too(call, point_at, server):
    vendor = VENDORS["qwen"]
    point_at(vendor)
    server.state.steer = {"error": "401"}
    assert failure(vendor, call) == (
        "Qwen (Alibaba DashScope) rejected the API key (HTTP 401): check DASHSCOPE_API_KEY in .env"
    )


@call_ids
def test_the_gateways_own_answer_is_shown_as_it_is_and_not_retried(call, point_at, server):
    """hub/aihub/gateway: X-AI-Gateway-Error: 1 and x-should-retry: false (a spent budget)."""
    vendor = VENDORS["deepseek"]
    point_at(vendor)
    server.state.steer = {"error": "gateway-429"}
    assert failure(vendor, call) == (
        "DeepSeek: daily AI budget of 1000 tokens used; resets at 00:00 UTC"
    )
    assert len(server.state.requests) == 1  # x-should-retry: false


@pytest.mark.parametrize("call", [sync_stream, async_stream], ids=lambda f: f.__name__)
def test_an_error_event_in_a_stream_is_one_line(call, point_at, server):
    vendor = VENDORS["qwen"]
    cfg = point_at(vendor)
    server.state.steer = {"error_event": True}
    assert failure(vendor, call, model=cfg.model) == (
        "Qwen (Alibaba DashScope) sent an error: upstream overloaded; key *** ***"
    )


def test_a_working_call_after_a_failure_is_unaffected(point_at, server):
    vendor = VENDORS["deepseek"]
    cfg = point_at(vendor)
    server.state.steer = {"error": "500"}
    failure(vendor, model=cfg.model)
    server.state.steer = {}
    assert PROVIDERS["deepseek"](model_id=cfg.model).invoke("ok").content == f"{cfg.model}: ko"


# -- scrubbing on its own --


@pytest.mark.parametrize(
    "text, secrets, hidden",
    [
        ("key sk-proj-AbC123xyz789 is over quota", (), "sk-proj-AbC123xyz789"),
        ("bad nvapi-QWERTY123456_abc key", (), "nvapi-QWERTY123456_abc"),
        ("header Authorization: Bearer abc.def.ghi", (), "abc.def.ghi"),
        ("via http://bob:hunter22@proxy:3128", (), "hunter22"),
        ("quota for plainkey123456 used up", ("plainkey123456",), "plainkey123456"),
        ("api_key=zzzz9999 rejected", (), "zzzz9999"),
    ],
)
def test_scrub_hides_keys(text, secrets, hidden):
    cleaned = scrub(text, secrets)
    assert hidden not in cleaned and "***" in cleaned


@pytest.mark.parametrize(
    "text, shown",
    [
        ("http://user:p%40ss@proxy:3128", "http://user:***@proxy:3128"),
        ("http://user:pass@proxy:3128/", "http://user:***@proxy:3128/"),
        # a raw @ in the password: hidden up to the last @ of the address
        ("AI_PROXY_URL='http://user:p@ss@proxy:3128' is wrong", "AI_PROXY_URL='http://user:***@proxy:3128' is wrong"),
        ("https://ghp_token123@git.example/x and http://a:b/c#d@e/f", "https://***@git.example/x and http://a:***@e/f"),
        ("http://user:p ss@proxy:3128", "http://user:***@proxy:3128"),
        ("http://proxy:3128/v1 and no login", "http://proxy:3128/v1 and no login"),
    ],
)
def test_redact_url_keeps_the_user_and_hides_the_password(text, shown):
    assert redact_url(text) == shown
    assert scrub(text) == shown
