"""What the AI layer costs a student's kernel and server, side by side. Prints figures,
asserts nothing (pytest does not collect bench_* files).

    providers/.venv/bin/python -m providers.tests.bench_ai_startup [--runs 3]

Kernels: an ipykernel with the image's ipython_config.py (lazy magics) vs the same
with jupyter_ai_magics and aihub_providers loaded at start (the image before); CPU
seconds and RSS of the kernel process when it is ready, then after its first
`%%ai` cell (answered by the loopback server in tests/fake_openai.py).
Servers: `jupyter server` with the image's jupyter_server_config.py and AI enabled
(jupyter_ai loaded on the first /api/ai request) vs jupyter_ai enabled at start vs
AI disabled; CPU and RSS when /api/status first answers, then after the chat
panel's first requests. Medians of --runs runs.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from jupyter_client.manager import KernelManager

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))  # as pytest.ini does
from fake_openai import FakeOpenAI  # noqa: E402

SINGLEUSER = Path(__file__).resolve().parents[2] / "singleuser"
EAGER_EXTENSIONS = '["jupyter_ai_magics", "aihub_providers"]'
FIRST_CELL = "%%ai openai-compatible:test-model\nExplain a list comprehension."
PANEL_REQUESTS = ["/api/ai/config", "/api/ai/providers", "/api/ai/providers/embeddings",
                  "/api/ai/chats/slash_commands", "/api/ai/chats/history"]
TOKEN = "bench"


def cpu_and_rss(pid: int) -> tuple[float, float]:
    """CPU seconds (user + system) and resident MiB of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return cpu, int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def ai_env(model_server: FakeOpenAI, home: Path) -> dict:
    return os.environ | {
        "HOME": str(home),
        "AI_ENABLED": "true",
        "AI_DEFAULT_MODEL": "openai-compatible:test-model",
        "OPENAI_COMPATIBLE_BASE_URL": model_server.url + "/v1",
        "OLLAMA_BASE_URL": model_server.url,
        "NO_PROXY": "127.0.0.1,localhost",
    }


def kernel_run(model_server: FakeOpenAI, eager: bool) -> dict:
    """One kernel: ready, then after its first %%ai cell."""
    with tempfile.TemporaryDirectory() as tmp:
        profile = Path(tmp, "ipython", "profile_default")
        profile.mkdir(parents=True)
        config = (SINGLEUSER / "ipython_config.py").read_text()
        if eager:
            config += f"\nc.InteractiveShellApp.extensions = {EAGER_EXTENSIONS}\n"
        (profile / "ipython_config.py").write_text(config)
        env = ai_env(model_server, Path(tmp)) | {"IPYTHONDIR": str(Path(tmp, "ipython"))}
        manager = KernelManager(kernel_name="python3")
        manager.kernel_spec.argv[0] = sys.executable
        manager.start_kernel(env=env, stderr=subprocess.DEVNULL)
        client = manager.client()
        client.start_channels()
        try:
            client.wait_for_ready(timeout=120)
            pid = manager.provisioner.process.pid
            ready = cpu_and_rss(pid)
            reply = client.execute_interactive(FIRST_CELL, timeout=120, output_hook=lambda m: None)
            assert reply["content"]["status"] == "ok", reply["content"]
            after = cpu_and_rss(pid)
        finally:
            client.stop_channels()
            manager.shutdown_kernel(now=True)
    return {"start_cpu": ready[0], "start_rss": ready[1],
            "ai_cpu": after[0] - ready[0], "ai_rss": after[1]}


def server_run(model_server: FakeOpenAI, mode: str) -> dict:
    """One server: ready, then after the chat panel's first requests (if AI is on)."""
    with tempfile.TemporaryDirectory() as tmp:
        etc = Path(tmp, "etc")
        etc.mkdir()
        config = (SINGLEUSER / "jupyter_server_config.py").read_text()
        if mode == "eager":
            config += '\nc.ServerApp.jpserver_extensions = {"jupyter_ai": True}\n'
        (etc / "jupyter_server_config.py").write_text(config)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = ai_env(model_server, Path(tmp)) | {
            "AI_ENABLED": "false" if mode == "off" else "true",
            "JUPYTER_CONFIG_DIR": str(Path(tmp, "config")),
            "JUPYTER_CONFIG_PATH": str(etc),
            "JUPYTER_DATA_DIR": str(Path(tmp, "data")),
            "JUPYTER_RUNTIME_DIR": str(Path(tmp, "runtime")),
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "jupyter_server", "--allow-root", "--no-browser",
             f"--port={port}", "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={TOKEN}",
             f"--ServerApp.root_dir={tmp}"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )

        def get(path: str) -> None:
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"token {TOKEN}"}
            )
            urllib.request.urlopen(request, timeout=120).read()

        try:
            started = time.monotonic()
            while True:
                if process.poll() is not None:
                    raise RuntimeError("jupyter server exited")
                try:
                    get("/api/status")
                    break
                except (OSError, urllib.error.URLError):
                    time.sleep(0.05)
            wall = time.monotonic() - started
            ready = cpu_and_rss(process.pid)
            if mode != "off":
                for path in PANEL_REQUESTS:
                    get(path)
            panel = cpu_and_rss(process.pid)
        finally:
            process.terminate()
            process.wait(timeout=30)
    return {"wall": wall, "start_cpu": ready[0], "start_rss": ready[1],
            "panel_cpu": panel[0], "panel_rss": panel[1]}


def median_of(runs: list[dict]) -> dict:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    model_server = FakeOpenAI(["test-model"]).start()
    try:
        print(f"kernels (median of {args.runs}):   start CPU s  start RSS MiB | "
              "first %%ai CPU s  RSS after MiB")
        for label, eager in (("lazy magics (image)", False), ("eager jupyter_ai_magics", True)):
            k = median_of([kernel_run(model_server, eager) for _ in range(args.runs)])
            print(f"  {label:26} {k['start_cpu']:11.2f}  {k['start_rss']:13.0f} | "
                  f"{k['ai_cpu']:16.2f}  {k['ai_rss']:13.0f}")
        print(f"servers (median of {args.runs}):   ready wall s  ready CPU s  ready RSS MiB | "
              "after panel CPU s  RSS MiB")
        for label, mode in (("AI, lazy jupyter_ai (image)", "lazy"),
                            ("AI, jupyter_ai at start", "eager"), ("AI disabled", "off")):
            s = median_of([server_run(model_server, mode) for _ in range(args.runs)])
            print(f"  {label:27} {s['wall']:12.2f} {s['start_cpu']:12.2f} {s['start_rss']:14.0f} | "
                  f"{s['panel_cpu']:17.2f} {s['panel_rss']:8.0f}")
    finally:
        model_server.stop()


if __name__ == "__main__":
    main()
