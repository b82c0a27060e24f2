"""Fixtures: a clean environment, the loopback OpenAI server, a vendor pointed at it."""

from __future__ import annotations

import faulthandler
import os
import sys
from dataclasses import dataclass

import pytest

from aihub_providers.vendors import VENDORS_LIST, Vendor

from fake_openai import FakeOpenAI

TEST_TIMEOUT = 120  # seconds; a test that runs longer dumps its stacks and ends the run
SERVED_MODELS = ["test-model", "zeta-1"] + sorted({m for v in VENDORS_LIST for m in v.examples})
PROXY_VARS = ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"]


def model_for(vendor: Vendor) -> str:
    return vendor.examples[0] if vendor.examples else "test-model"


def key_for(vendor: Vendor) -> str:
    # Not shaped like sk-..., so only scrubbing the key's own value can hide it.
    return f"k3y-{vendor.id}-7f3a9c21e4"


@pytest.fixture(autouse=True)
def never_hang():
    faulthandler.dump_traceback_later(TEST_TIMEOUT, exit=True, file=sys.stderr)
    yield
    faulthandler.cancel_dump_traceback_later()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    """No vendor setting, proxy or OpenAI variable from the machine leaks into a test."""
    for vendor in VENDORS_LIST:
        monkeypatch.delenv(vendor.key_env, raising=False)
        monkeypatch.delenv(vendor.base_env, raising=False)
    for name in list(os.environ):
        if name.startswith("OPENAI_") or name in PROXY_VARS:
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    # The client's one retry waits 0.5-1 s; a few ms keep the tests fast (the retry
    # itself still happens: test_errors counts it).
    from aihub_providers import chat_model

    monkeypatch.setattr(chat_model, "INITIAL_RETRY_DELAY", 0.005)


@pytest.fixture(scope="session")
def server_process():
    server = FakeOpenAI(SERVED_MODELS).start()
    yield server
    server.stop()


@pytest.fixture
def server(server_process):
    server_process.reset(SERVED_MODELS)
    return server_process


@dataclass
class Configured:
    vendor: Vendor
    key: str
    base: str  # what the admin set in <vendor>_BASE_URL
    api_base: str  # where requests go
    model: str


@pytest.fixture
def point_at(server, monkeypatch):
    """point_at(vendor): set the vendor's key and base URL to the test server."""

    def configure(vendor: Vendor, prefix: str = "") -> Configured:
        key = key_for(vendor)
        base = server.url + prefix + ("" if vendor.api_path else "/v1")
        monkeypatch.setenv(vendor.key_env, key)
        monkeypatch.setenv(vendor.base_env, base)
        return Configured(vendor, key, base, vendor.api_base(base), model_for(vendor))

    return configure
