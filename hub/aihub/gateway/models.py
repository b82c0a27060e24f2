"""GET /v1/models: every model the gateway can route to, as `provider:model`.

Each configured vendor is asked for its list (GET <base>/models) with a short timeout;
an answer is kept for CACHE_SECONDS, a failure for FAILURE_SECONDS, and while a vendor
cannot answer its example ids from the vendor table stand in (an empty list would tell
a student there is nothing to use). Concurrent askers share one request per vendor.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Mapping

import httpx

from .config import Upstream
from .upstream import headers

log = logging.getLogger("aihub.gateway")

LIST_TIMEOUT = 5.0  # seconds: a listing must stay quick, the chat panel waits on it
CACHE_SECONDS = 300.0
FAILURE_SECONDS = 30.0


def _entries(data: Any, owner: str) -> list[dict]:
    """A vendor's model list as OpenAI entries, whatever shape it came in."""
    if isinstance(data, dict):
        data = data.get("data", data.get("models"))
    entries = []
    for item in data if isinstance(data, list) else ():
        if isinstance(item, str):
            item = {"id": item}
        if isinstance(item, dict) and isinstance(item.get("id") or item.get("name"), str):
            entry = dict(item)
            entry["id"] = item.get("id") or item["name"]
            entry.setdefault("object", "model")
            entry.setdefault("owned_by", owner)
            entries.append(entry)
    return entries


def _examples(upstream: Upstream) -> list[dict]:
    return [{"id": m, "object": "model", "created": 0, "owned_by": upstream.id}
            for m in upstream.vendor.examples]


class ModelCatalog:
    def __init__(self, http: httpx.AsyncClient, upstreams: Mapping[str, Upstream]):
        self.http = http
        self.upstreams = upstreams
        self._cache: dict[str, tuple[float, list[dict]]] = {}
        self._pending: dict[str, asyncio.Future] = {}

    async def of(self, upstream: Upstream) -> list[dict]:
        """The vendor's own entries (its model ids), cached."""
        cached = self._cache.get(upstream.id)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        pending = self._pending.get(upstream.id)
        if pending is None:
            pending = self._pending[upstream.id] = asyncio.ensure_future(self._fetch(upstream))
            pending.add_done_callback(lambda _: self._pending.pop(upstream.id, None))
        return await asyncio.shield(pending)

    async def _fetch(self, upstream: Upstream) -> list[dict]:
        try:
            response = await self.http.get(upstream.url("models"), headers=headers(upstream, stream=False),
                                           timeout=LIST_TIMEOUT)
            response.raise_for_status()
            entries = _entries(response.json(), upstream.id)
            if not entries:
                raise ValueError("an empty list")
            ttl = CACHE_SECONDS
        except Exception as error:  # any failure: examples stand in, for a short while
            log.info("model list of %s unavailable (%s); using its examples", upstream.id, type(error).__name__)
            entries, ttl = _examples(upstream), FAILURE_SECONDS
        self._cache[upstream.id] = (time.monotonic() + ttl, entries)
        return entries

    async def everything(self) -> list[dict]:
        """Every routable model, ids prefixed with their provider, in the table's order."""
        lists = await asyncio.gather(*(self.of(u) for u in self.upstreams.values()))
        result = []
        for upstream, entries in zip(self.upstreams.values(), lists):
            for entry in entries:
                result.append({**entry, "id": f"{upstream.id}:{entry['id']}", "owned_by": upstream.id})
        return result
