"""aihub_providers.lazy_magics: a kernel starts without jupyter-ai, and `%ai`/`%%ai`
then behave exactly as with jupyter_ai_magics loaded at start.

Each run is a fresh IPython shell in a subprocess, configured by the user image's own
singleuser/ipython_config.py, that runs cells against the loopback server and reports
what each cell showed. Cells are stored in the history, as in a kernel, so `%ai error`
finds the error of an earlier cell.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from .shell import run_report

IPYTHON_CONFIG = Path(__file__).resolve().parents[2] / "singleuser" / "ipython_config.py"
EAGER = ["jupyter_ai_magics", "aihub_providers"]  # what the image loaded before
AI_LIBRARIES = ["jupyter_ai_magics.magics", "langchain_core", "aihub_providers.chat_model"]
# Never imported, not even by a %%ai cell: our providers speak the API over httpx, and
# without langchain-openai jupyter-ai-magics' own OpenAI providers are skipped.
NOT_NEEDED = ["openai", "langchain_openai"]

SHELL = textwrap.dedent(
    """
    import contextlib, io, json, re, sys
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config.loader import PyFileConfigLoader

    config_file, extensions, cells, libraries = (json.loads(a) for a in sys.argv[1:])
    config = PyFileConfigLoader(config_file).load_config()
    ip = InteractiveShell.instance(config=config)
    for name in extensions or config.InteractiveShellApp.get("extensions", []):
        ip.extension_manager.load_extension(name)
    at_start = {
        "imported": [m for m in libraries if m in sys.modules],
        "magics": sorted(k for k, m in ip.magics_manager.magics.items() if "ai" in m),
    }
    ansi = re.compile(r"\\x1b\\[[0-9;]*m")
    report = []
    for cell in cells:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            result = ip.run_cell(cell, store_history=True)
        error = result.error_in_exec or result.error_before_exec
        shown = None if result.result is None else ip.display_formatter.format(result.result)[0]
        report.append({
            "cell": cell,
            "stdout": ansi.sub("", out.getvalue()),
            "stderr": ansi.sub("", err.getvalue()),
            "shown": shown,
            "error": type(error).__name__ if error else None,
            "stored_errors": sorted(ip.user_ns.get("Err", {})),
        })
    at_end = [m for m in libraries if m in sys.modules]
    print("REPORT " + json.dumps({"at_start": at_start, "cells": report, "at_end": at_end}))
    """
)


def run_shell(tmp_path, cells, env, extensions=None):
    return run_report(SHELL, [str(IPYTHON_CONFIG), extensions, cells, AI_LIBRARIES + NOT_NEEDED], env, tmp_path)


def image_env(server, **extra):
    return {
        "AI_ENABLED": "true",
        "AI_DEFAULT_MODEL": "openai-compatible:test-model",
        "OPENAI_COMPATIBLE_BASE_URL": server.url + "/v1",
        "NO_PROXY": "127.0.0.1,localhost",
        **extra,
    }


def test_image_config_loads_no_ai_library_at_kernel_start(server, tmp_path):
    started = run_shell(tmp_path, [], image_env(server))["at_start"]
    assert started == {"imported": [], "magics": ["cell", "line"]}
    assert not server.state.requests


def test_ai_disabled_means_no_magics(server, tmp_path):
    started = run_shell(tmp_path, [], image_env(server, AI_ENABLED="false"))["at_start"]
    assert started["magics"] == []


CELLS = [
    "1/0",  # before any %ai: still stored for `%ai error`
    "%load_ext jupyter_ai_magics",  # as the tutorials say: already loaded
    "%ai error",
    "%%ai\nthe default model, please",
    "%%ai openai-compatible:test-model -f code\nwrite hello world",
    "%ai list openai-compatible",
    "%env OPENAI_COMPATIBLE_BASE_URL=",
    "%%ai openai-compatible:test-model\nnot set up now",
    "undefined_name",
]


def test_lazy_magics_behave_like_eager_ones(server, tmp_path):
    lazy = run_shell(tmp_path / "lazy", CELLS, image_env(server))
    lazy_requests = [r.body for r in server.state.requests]
    server.state.requests.clear()
    eager = run_shell(tmp_path / "eager", CELLS, image_env(server), extensions=EAGER)
    eager_requests = [r.body for r in server.state.requests]

    assert lazy["cells"] == eager["cells"]
    assert lazy_requests == eager_requests
    assert eager["at_start"]["imported"] == AI_LIBRARIES  # the check can see a library
    assert lazy["at_end"] == eager["at_end"] == AI_LIBRARIES  # no openai, langchain_openai

    zero, load_ext, explained, default, code, listed, _, not_set_up, name_error = lazy["cells"]
    assert zero["error"] == "ZeroDivisionError" and len(zero["stored_errors"]) == 1
    assert "already loaded" in load_ext["stdout"]
    # `%ai error` sent the stored traceback to the default model
    assert explained["error"] is None
    assert "ZeroDivisionError" in lazy_requests[0]["messages"][-1]["content"]
    assert [r["model"] for r in lazy_requests] == ["test-model"] * 3
    assert default["error"] is None and "text/markdown" in default["shown"]
    assert code["error"] is None
    assert "Needs `OPENAI_COMPATIBLE_BASE_URL`" in listed["shown"]["text/plain"]
    # our one line, not a traceback, and not stored as an error
    assert not_set_up["error"] == "ProviderError" and not_set_up["stdout"] == ""
    assert not_set_up["stderr"] == (
        "OpenAI-compatible server is not set up: the admin must set "
        "OPENAI_COMPATIBLE_BASE_URL in .env (then restart your server)\n"
    )
    assert not_set_up["stored_errors"] == zero["stored_errors"]
    assert name_error["error"] == "NameError" and "Traceback" in name_error["stdout"]
    assert len(name_error["stored_errors"]) == 2
