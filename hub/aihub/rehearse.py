"""The class rehearsal: will this machine hold a class that arrives at once?

    docker compose exec hub python -m aihub.rehearse --students 30 [--compare-without-ai]

It makes N throwaway accounts (`rehearsal-<run>-NN`: nobody can sign up or log in
with such a name), starts all their servers at the same moment and follows each
start's progress as N browsers on the spawn page would, opens JupyterLab (with its chat
panel) in each as soon as it is ready, runs a `%%ai` cell in every server at once (through the gateway, like a student's), and prints what an admin
needs before a lesson: time to ready, failures and why, memory per student idle and
after the first `%%ai`, `%%ai` times, the hub's worst event-loop lag, and a verdict.
With --compare-without-ai it also times one server alone and the same burst with the
AI layer off, in the same run, and prints the ratios.

Afterwards, and after Ctrl-C, it removes everything it made: accounts, servers, home
volumes and usage-ledger rows. Accounts left by a run that was killed outright are
removed at the start of the next one.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import re
import secrets as random
import signal
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import docker
from dockerspawner import DockerSpawner

from . import secrets, settings as settings_module
from .auth import REHEARSAL_GROUP, RESERVED_PREFIX
from .database import in_transaction, remove_ledger_rows
from .hubapi import CellResult, HubClient, HubError, SpawnResult
from .labels import student_filter
from .spawner import home_volume

MIB = 1024 * 1024
PROMPT = "Explain a Python list comprehension in one sentence."


def percentile(values: list[float], fraction: float) -> float:
    """The value below which `fraction` of `values` lie (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered), max(1, math.ceil(fraction * len(ordered)))) - 1]


def spread(values: list[float], unit: str = "s") -> str:
    if not values:
        return "none"
    return (f"p50 {percentile(values, .5):.1f} {unit}, p90 {percentile(values, .9):.1f} {unit}, "
            f"max {max(values):.1f} {unit}")


def worst_lag_from_metrics(before: str, after: str) -> float | None:
    """An upper bound of the slowest event-loop interval between two readings of the hub's
    /hub/metrics: the smallest bucket of jupyterhub_event_loop_interval_seconds that
    holds every interval measured in between (buckets are cumulative)."""
    def buckets(text: str) -> dict[float, float]:
        pattern = r'^jupyterhub_event_loop_interval_seconds_bucket\{le="([^"]+)"\} (\S+)$'
        return {float(bound): float(count) for bound, count in re.findall(pattern, text, re.M)}
    old, new = buckets(before), buckets(after)
    grown = {bound: count - old.get(bound, 0) for bound, count in new.items()}
    if not grown or not max(grown.values()):
        return None
    return min(bound for bound, count in grown.items() if count == max(grown.values()))


def worst_lag_from_logs(logs: str) -> float | None:
    lags = [float(lag) for lag in re.findall(r"Event loop was unresponsive for at least ([\d.]+)s", logs)]
    return max(lags) if lags else None


@dataclass
class Burst:
    label: str
    spawns: list[SpawnResult] = field(default_factory=list)
    lab_opens: list[float] = field(default_factory=list)
    lab_failures: list[str] = field(default_factory=list)
    gateway_seconds: list[float] = field(default_factory=list)
    idle_mib: dict[str, float] = field(default_factory=dict)
    after_ai_mib: dict[str, float] = field(default_factory=dict)
    cells: list[CellResult] = field(default_factory=list)
    notebook_opens: list[float] = field(default_factory=list)
    stop_seconds: float = 0

    @property
    def ready(self) -> list[float]:
        return [spawn.seconds for spawn in self.spawns if not spawn.error]

    @property
    def failures(self) -> list[SpawnResult]:
        return [spawn for spawn in self.spawns if spawn.error]


class Rehearsal:
    def __init__(self, students: int, model: str, compare: bool, settings, secret: dict[str, str]):
        self.settings = settings
        self.secret = secret
        self.model = model
        self.compare = compare
        self.hub = HubClient(secret["CLASS_TOOLS_API_TOKEN"])
        self.docker = docker.from_env()
        self.threads = ThreadPoolExecutor(16)
        self.run_id = random.token_hex(3)
        self.names = [f"{RESERVED_PREFIX}{self.run_id}-{i:02d}" for i in range(1, students + 1)]
        self.project = settings.compose_project_name

    # -- helpers --------------------------------------------------------------------

    async def in_thread(self, function, *args):
        return await asyncio.get_running_loop().run_in_executor(self.threads, function, *args)

    def memory_mib(self, names: list[str]) -> dict[str, float]:
        """Memory each student's container uses now, as `docker stats` shows it."""
        wanted = {f"{self.project}-{DockerSpawner._escape(name)}": name for name in names}
        containers = [c for c in self.docker.containers.list(filters=student_filter(self.project))
                      if c.name in wanted]

        def used(container) -> tuple[str, float]:
            memory = container.stats(stream=False)["memory_stats"]
            detail = memory.get("stats", {})
            cache = detail.get("inactive_file", detail.get("total_inactive_file", 0))
            return wanted[container.name], (memory.get("usage", 0) - cache) / MIB
        return dict(self.threads.map(used, containers))

    async def burst(self, label: str, names: list[str], ai: bool) -> Burst:
        """Every student presses Start at once; each lands in JupyterLab once theirs is ready."""
        burst = Burst(label)

        async def land_in_lab(name: str) -> None:
            try:
                burst.lab_opens.append(await self.hub.open_lab(name, ai))
            except Exception as error:
                burst.lab_failures.append(f"{name}: {error}")
        burst.spawns = await self.hub.start_many(names, None if ai else {"ai": False},
                                                 what=f"starting {len(names)} servers ({label})",
                                                 when_ready=land_in_lab)
        return burst

    async def measure_idle(self, burst: Burst, names: list[str]) -> None:
        await asyncio.sleep(10)  # let the new servers settle, as a student reads the page
        burst.idle_mib = await self.in_thread(self.memory_mib, names)

    async def first_ai_cells(self, burst: Burst, names: list[str]) -> None:
        """Every student opens a notebook and runs a first plain cell; then, as the
        teacher says "now try %%ai", all send their first %%ai cell at the same moment."""
        print(f"  a notebook in each of {len(names)} servers, then one %%ai cell in each, all at once")

        async def open_notebook(name: str) -> tuple[str, str | None, float]:
            started = time.monotonic()
            try:
                kernel_id = await self.hub.start_kernel(name)
                first = await self.hub.run_cell(name, kernel_id, "1 + 1")
                if first.error:
                    raise RuntimeError(first.error)
                return name, kernel_id, time.monotonic() - started
            except Exception as error:
                burst.cells.append(CellResult(name, 0, "", f"the notebook's kernel did not answer: {error}"))
                return name, None, 0
        kernels = [k for k in await asyncio.gather(*(open_notebook(name) for name in names)) if k[1]]
        burst.notebook_opens = [seconds for _, _, seconds in kernels]
        cell = f"%%ai {self.model}\n{PROMPT}"
        burst.cells += await asyncio.gather(*(self.hub.run_cell(name, kernel_id, cell)
                                              for name, kernel_id, _ in kernels))
        burst.after_ai_mib = await self.in_thread(self.memory_mib, names)
        burst.gateway_seconds = await self.in_thread(self.gateway_seconds, names)

    async def stop_all(self, burst: Burst, names: list[str]) -> None:
        started = time.monotonic()
        await self.hub.stop_many(names)
        burst.stop_seconds = time.monotonic() - started

    async def single_spawn(self, name: str, ai: bool) -> float:
        spawn = await self.hub.start_and_watch(name, None if ai else {"ai": False})
        await self.hub.stop_server(name)
        if spawn.error:
            raise RuntimeError(f"a single server did not start: {spawn.error}")
        return spawn.seconds

    # -- the run --------------------------------------------------------------------

    async def run(self) -> None:
        await self.remove_leftovers()
        print(f"rehearsal {self.run_id}: {len(self.names)} throwaway students, model {self.model}")
        await self.hub.create_users(self.names)
        await self.hub.api("POST", f"/groups/{REHEARSAL_GROUP}/users", {"users": self.names})
        metrics_before = await self.hub.metrics()
        logs_since = int(time.time())

        single: dict[bool, list[float]] = {True: [], False: []}
        if self.compare:
            print("  one server alone, with AI and without, twice each")
            for _ in range(2):
                for ai in (True, False):
                    single[ai].append(await self.single_spawn(self.names[0], ai))

        with_ai = await self.burst("with AI", self.names, ai=True)
        ready = [s.name for s in with_ai.spawns if not s.error]
        await self.measure_idle(with_ai, ready)
        await self.first_ai_cells(with_ai, ready)
        print(f"  stopping {len(self.names)} servers at once")
        await self.stop_all(with_ai, self.names)

        without_ai = None
        if self.compare:
            without_ai = await self.burst("AI off", self.names, ai=False)
            await self.measure_idle(without_ai, [s.name for s in without_ai.spawns if not s.error])
            await self.stop_all(without_ai, self.names)

        lag = worst_lag_from_logs(await self.in_thread(self.hub_logs, logs_since))
        lag_bucket = worst_lag_from_metrics(metrics_before, await self.hub.metrics())
        self.report(with_ai, without_ai, single, lag, lag_bucket)

    def hub_logs(self, since: int) -> str:
        try:
            container = self.docker.containers.get(os.environ.get("HOSTNAME", ""))
            return container.logs(since=since).decode(errors="replace")
        except docker.errors.DockerException:
            return ""

    # -- what it prints -------------------------------------------------------------

    def report(self, with_ai: Burst, without_ai: Burst | None, single, lag, lag_bucket) -> None:
        n = len(self.names)
        print(f"\n== Class rehearsal: {n} students at once ({os.cpu_count()} CPUs, "
              f"SPAWN_CONCURRENCY={self.settings.spawn_concurrency}) ==")
        for burst in filter(None, (with_ai, without_ai)):
            print(f"{burst.label}:")
            print(f"  time to ready:  {spread(burst.ready)}  ({len(burst.ready)} of {n} ready)")
            for failure in burst.failures:
                print(f"  FAILED {failure.name} after {failure.seconds:.0f} s: {failure.error}")
            print(f"  JupyterLab open: {spread(burst.lab_opens)} after ready (page and chat panel)")
            for failure in burst.lab_failures:
                print(f"  JupyterLab FAILED to open for {failure}")
            idle = list(burst.idle_mib.values())
            if idle:
                print(f"  idle memory:    {statistics.mean(idle):.0f} MiB per student (max {max(idle):.0f}), "
                      f"{sum(idle) / 1024:.2f} GiB in total")
            if burst.cells:
                done = [cell.seconds for cell in burst.cells if not cell.error]
                after = list(burst.after_ai_mib.values())
                print(f"  notebook open:  kernel ready {spread(burst.notebook_opens)}")
                print(f"  first %%ai:     {spread(done)}  ({len(done)} of {len(burst.cells)} answered)")
                if burst.gateway_seconds:
                    print(f"    of which the gateway and model: {spread(burst.gateway_seconds)}")
                for cell in burst.cells:
                    if cell.error:
                        print(f"  %%ai FAILED in {cell.name}: {cell.error}")
                if after:
                    print(f"  after %%ai:     {statistics.mean(after):.0f} MiB per student (max {max(after):.0f}), "
                          f"{sum(after) / 1024:.2f} GiB in total")
            print(f"  stopping all:   {burst.stop_seconds:.1f} s")
        if lag is not None:
            print(f"hub event loop:   worst lag {lag:.2f} s")
        elif lag_bucket is not None:
            print(f"hub event loop:   worst lag under {lag_bucket:g} s")
        if without_ai:
            if with_ai.ready and without_ai.ready:
                print(f"AI on / off:      burst p50 {percentile(with_ai.ready, .5):.1f} / "
                      f"{percentile(without_ai.ready, .5):.1f} s "
                      f"(ratio {percentile(with_ai.ready, .5) / percentile(without_ai.ready, .5):.2f})")
            if single[True] and single[False]:
                print(f"                  one server alone {min(single[True]):.1f} / {min(single[False]):.1f} s "
                      f"(ratio {min(single[True]) / min(single[False]):.2f}, best of 2 each)")
            if with_ai.idle_mib and without_ai.idle_mib:
                on, off = statistics.mean(with_ai.idle_mib.values()), statistics.mean(without_ai.idle_mib.values())
                print(f"                  idle memory {on:.0f} / {off:.0f} MiB per student (ratio {on / off:.2f})")
        print(self.verdict(with_ai))

    def verdict(self, burst: Burst) -> str:
        n = len(self.names)
        if burst.failures:
            return f"Verdict: {len(burst.failures)} of {n} servers did not start; see the reasons above."
        per_student = max(burst.after_ai_mib.values() or burst.idle_mib.values() or [0])
        memory_total = self.docker.info().get("MemTotal", 0) / MIB
        # Keep a quarter of the memory for the hub, database, Ollama and the system.
        by_memory = int(memory_total * 0.75 / per_student) if per_student else 0
        # Students whose servers start within a minute, at the burst's pace.
        by_cpu = int(n * 60 / percentile(burst.ready, .9)) if burst.ready else 0
        limit = "memory" if by_memory <= by_cpu else "CPU (start-up)"
        return (f"Verdict: this machine holds about {min(by_memory, by_cpu)} students with AI; {limit} is the limit "
                f"(memory: {by_memory} at {per_student:.0f} MiB each; CPU: {by_cpu} ready within 60 s at this pace).")

    # -- cleaning up ----------------------------------------------------------------

    async def remove_leftovers(self) -> None:
        """Accounts of an earlier rehearsal that was killed outright: members of the
        rehearsal's group (so never an account an admin made with such a name)."""
        group = await self.hub.group(REHEARSAL_GROUP)
        leftovers = [name for name in (group or {}).get("users", []) if name.startswith(RESERVED_PREFIX)]
        if leftovers:
            print(f"  removing {len(leftovers)} accounts left by an earlier rehearsal")
            await self.remove(leftovers)
        if group is None:
            await self.hub.api("POST", f"/groups/{REHEARSAL_GROUP}", {})

    async def remove(self, names: list[str]) -> None:
        async def remove_account(name: str) -> None:
            # A start still in progress is cancelled by stopping the server; only then
            # can the account go.
            for attempt in range(3):
                try:
                    await self.hub.stop_server(name)
                    await self.hub.delete_user(name)
                    return
                except HubError as error:
                    if attempt == 2:
                        print(f"  could not remove {name}: {error}")
                    await asyncio.sleep(2)
        await asyncio.gather(*(remove_account(name) for name in names))
        await self.in_thread(self.remove_volumes, names)
        await self.in_thread(self.remove_ledger_rows, names)

    def remove_volumes(self, names: list[str]) -> None:
        for name in names:
            try:
                self.docker.volumes.get(home_volume(self.project, name)).remove(force=True)
            except docker.errors.NotFound:
                pass

    def database(self, work):
        return in_transaction(self.settings, self.secret["POSTGRES_PASSWORD"], work)

    def remove_ledger_rows(self, names: list[str]) -> None:
        self.database(lambda cursor: remove_ledger_rows(cursor, names))

    def gateway_seconds(self, names: list[str]) -> list[float]:
        """How long the gateway took for each call (the model's share of a cell's time);
        none without the gateway."""
        def latencies(cursor) -> list[float]:
            cursor.execute("SELECT to_regclass('ai_usage') IS NOT NULL")
            if not cursor.fetchone()[0]:
                return []
            cursor.execute("SELECT latency_ms FROM ai_usage WHERE username = ANY(%s) AND latency_ms IS NOT NULL",
                           (names,))
            return [latency / 1000 for (latency,) in cursor.fetchall()]
        return self.database(latencies)

    async def clean_up(self) -> None:
        print(f"  removing the rehearsal's {len(self.names)} accounts, servers, volumes and ledger rows")
        await self.remove(self.names)
        group = await self.hub.group(REHEARSAL_GROUP)
        if group is not None and not group["users"]:
            await self.hub.api("DELETE", f"/groups/{REHEARSAL_GROUP}")


async def rehearse(args: argparse.Namespace) -> int:
    settings = settings_module.load_or_exit()
    rehearsal = Rehearsal(args.students, args.model or settings.ai_default_model, args.compare_without_ai,
                          settings, secrets.read_or_exit())
    task = asyncio.current_task()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        await rehearsal.run()
        return 0
    except asyncio.CancelledError:
        print("\n  interrupted")
        return 130
    finally:
        # Shielded, so a second Ctrl-C does not leave half the accounts behind.
        await asyncio.shield(rehearsal.clean_up())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aihub.rehearse", description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=30, help="how many students arrive at once (default 30)")
    parser.add_argument("--model", help="the model of the %%%%ai cell (default: AI_DEFAULT_MODEL)")
    parser.add_argument("--compare-without-ai", action="store_true",
                        help="also time one server alone and the same burst with the AI layer off")
    args = parser.parse_args(argv)
    if args.students < 1:
        parser.error("--students must be 1 or more")
    try:
        return asyncio.run(rehearse(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
