"""Embeddings providers (the chat panel's /learn and /ask) against the fake vendor."""

from __future__ import annotations

import asyncio

import pytest

from aihub_providers.embeddings import BATCH_SIZE, EMBEDDINGS_PROVIDERS
from aihub_providers.errors import ProviderError
from aihub_providers.vendors import VENDORS

from fake_openai import embedding_of

from .conftest import key_for

VENDORS_WITH_EMBEDDINGS = [VENDORS[vendor_id] for vendor_id in EMBEDDINGS_PROVIDERS]


def embedding_model(vendor):
    return vendor.embedding_examples[0] if vendor.embedding_examples else "test-embedder"


@pytest.mark.parametrize("vendor", VENDORS_WITH_EMBEDDINGS, ids=lambda v: v.id)
def test_each_vendor_embeds_through_its_own_base_url_and_key(vendor, point_at, server):
    cfg = point_at(vendor)
    model = embedding_model(vendor)
    # as jupyter-ai makes it: the provider's class with model_id (ConfigManager's params)
    embedder = EMBEDDINGS_PROVIDERS[vendor.id](model_id=model)

    assert embedder.embed_query("the river flows") == pytest.approx(embedding_of("the river flows"))
    assert asyncio.run(embedder.aembed_documents(["a b", "c"])) == [
        pytest.approx(embedding_of("a b")), pytest.approx(embedding_of("c"))]

    first = server.state.requests[0]
    assert first.path == cfg.api_base.removeprefix(server.url) + "/embeddings"
    assert first.authorization == f"Bearer {cfg.key}"
    assert first.body["model"] == model
    assert first.body["input"] == ["the river flows"]
    # NVIDIA's retrieval models need to know a query from a passage; others get no extra field
    if vendor.embedding_input_type:
        assert [r.body["input_type"] for r in server.state.requests] == ["query", "passage"]
    else:
        assert all("input_type" not in r.body for r in server.state.requests)


def test_many_texts_go_in_batches_and_come_back_in_order(point_at, server):
    point_at(VENDORS["qwen"])
    texts = [f"text number {i}" for i in range(BATCH_SIZE * 2 + 3)]
    vectors = EMBEDDINGS_PROVIDERS["qwen"](model_id="text-embedding-v4").embed_documents(texts)
    assert vectors == [pytest.approx(embedding_of(t)) for t in texts]
    assert [len(r.body["input"]) for r in server.state.requests] == [BATCH_SIZE, BATCH_SIZE, 3]


def test_the_environment_wins_over_a_saved_key(point_at, server):
    """The chat panel may pass a key saved in config.json; the admin's .env wins."""
    cfg = point_at(VENDORS["zhipu"])
    embedder = EMBEDDINGS_PROVIDERS["zhipu"](model_id="embedding-3", api_key="stale-saved-key")
    embedder.embed_query("x")
    assert server.state.requests[0].authorization == f"Bearer {cfg.key}"


def test_a_missing_key_names_the_variable(monkeypatch):
    with pytest.raises(ProviderError, match="ZHIPUAI_API_KEY"):
        EMBEDDINGS_PROVIDERS["zhipu"](model_id="embedding-3")


def test_a_rejected_key_is_one_line_naming_the_variable_without_the_key(point_at, server):
    cfg = point_at(VENDORS["siliconflow"])
    server.state.keys = {"another-key"}
    embedder = EMBEDDINGS_PROVIDERS["siliconflow"](model_id="BAAI/bge-m3")
    with pytest.raises(ProviderError) as raised:
        embedder.embed_query("x")
    message = str(raised.value)
    assert "SILICONFLOW_API_KEY" in message and "401" in message
    assert cfg.key not in message and "\n" not in message
    assert key_for(VENDORS["siliconflow"]) not in message
