"""How much latency the gateway adds, measured in one run (a benchmark, not a test).

    .venv/bin/python tests/gateway/bench_latency.py [--requests 1000] [--streams 500]

Starts the real parts on loopback, each in its own process: PostgreSQL (a throwaway
database on the server of AIHUB_TEST_DATABASE_URL, or a throwaway server in a container
as in the tests), JupyterHub, the test vendor
(tests/fake_openai.py) and `python -m aihub.gateway`'s main(). Then one client sends the same
requests alternately straight to the vendor and through the gateway (alternating, so
both see the same machine noise), one at a time over kept-alive connections:

  - non-streaming chat completions: the whole request's time;
  - streaming chat completions: the time to the first content token.

It prints p50 and p99 of each, the gateway's added time and the ratios. The gateway's
path includes everything it does in production: the token check (cached by HubAuth),
the budget check and 'started' row, the forwarding, and the ledger update.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, as pytest does

from gateway.conftest import DEEPSEEK_KEY, GatewayProcess, Hub, create_database  # noqa: E402
from throwaway_containers import SetupError  # noqa: E402
from throwaway_postgres import postgres_server  # noqa: E402

BODY = {"model": "echo-1", "messages": [{"role": "user", "content": "how long does the gateway take"}],
        "max_tokens": 64}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def plain(client: httpx.Client, url: str, headers: dict) -> float:
    start = time.perf_counter()
    response = client.post(url, json=BODY, headers=headers)
    response.read()
    assert response.status_code == 200, response.text
    return time.perf_counter() - start


def first_token(client: httpx.Client, url: str, headers: dict) -> float:
    start = time.perf_counter()
    with client.stream("POST", url, json={**BODY, "stream": True}, headers=headers) as response:
        assert response.status_code == 200
        pieces = response.iter_raw()
        for piece in pieces:
            if b'"content"' in piece:
                elapsed = time.perf_counter() - start
                break
        for _ in pieces:  # read to the end, as a client does
            pass
    return elapsed


def measure(label: str, probe, client: httpx.Client, direct: tuple, gateway: tuple, count: int) -> dict:
    for _ in range(min(50, count)):  # warm up: connections, caches, the JIT-less interpreter's paths
        probe(client, *direct)
        probe(client, *gateway)
    times = {"direct": [], "gateway": []}
    for _ in range(count):
        times["direct"].append(probe(client, *direct))
        times["gateway"].append(probe(client, *gateway))
    ms = {k: [1000 * v for v in values] for k, values in times.items()}
    result = {}
    for p in (50, 99):
        d, g = percentile(ms["direct"], p), percentile(ms["gateway"], p)
        result[p] = (d, g)
    mean_added = statistics.mean(g - d for d, g in zip(ms["direct"], ms["gateway"]))
    print(f"\n{label}, {count} requests each way (alternating):")
    for p, (d, g) in result.items():
        print(f"  p{p}: direct {d:7.2f} ms   gateway {g:7.2f} ms   added {g - d:+7.2f} ms   "
              f"ratio {g / d:5.2f}x")
    print(f"  mean added per request: {mean_added:+.2f} ms")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000, help="non-streaming requests each way")
    parser.add_argument("--streams", type=int, default=500, help="streaming requests each way")
    args = parser.parse_args()
    with contextlib.ExitStack() as cleanup:
        try:
            server = cleanup.enter_context(postgres_server())
            database, drop = create_database(server.dsn)
        except SetupError as error:
            print(f"bench_latency: {error}", file=sys.stderr)
            return 2
        cleanup.callback(drop)
        bench(database, args.requests, args.streams)
    return 0


def bench(database, requests: int, streams: int) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="aihub-gw-bench-"))
    vendor = subprocess.Popen([sys.executable, str(Path(__file__).parents[1] / "fake_openai.py")],
                              stdout=subprocess.PIPE, text=True)
    upstream = SimpleNamespace(url=vendor.stdout.readline().strip())
    hub = Hub(workdir)
    gateway = None
    try:
        hub.start()
        gateway = GatewayProcess(database, upstream, hub, workdir)
        hub.create_user("bench")
        token = hub.start_server("bench")
        print(f"vendor {upstream.url}, gateway {gateway.url}, hub {hub.url}; python {sys.version.split()[0]}, "
              f"{os.cpu_count()} CPUs")
        direct_url = f"{upstream.url}/v1/chat/completions"
        gateway_url = f"{gateway.url}/deepseek/v1/chat/completions"
        direct = (direct_url, {"Authorization": f"Bearer {DEEPSEEK_KEY}"})
        through = (gateway_url, {"Authorization": f"Bearer {token}"})
        with httpx.Client(timeout=30) as client:
            measure("non-streaming request, whole request", plain, client, direct, through, requests)
            measure("streaming request, time to first token", first_token, client, direct, through, streams)
        rows = database.query("SELECT count(*), count(*) FILTER (WHERE status = 'ok') FROM ai_usage")
        print(f"\nledger: {rows[0][0]} rows, {rows[0][1]} ok")
    finally:
        if gateway is not None:
            gateway.kill()
        hub.stop()
        vendor.kill()


if __name__ == "__main__":
    sys.exit(main())
