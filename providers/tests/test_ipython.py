"""The IPython extension: `%%ai` answers, and a failure is one line, not a traceback.

Each test runs a fresh IPython shell in a subprocess (IPython keeps global state) that
loads the extensions as the user image does, runs cells against the loopback server
and reports each cell's stdout, stderr, result and exception as JSON.
"""

from __future__ import annotations

import textwrap

import pytest

from fake_openai import answer_for

from .shell import run_report

GOOD_KEY = "k3y-deepseek-good-0a1b2c3d"
WRONG_KEY = "wrong-key-9z8y7x6w"

SHELL = textwrap.dedent(
    """
    import contextlib, io, json, sys
    from IPython.core.interactiveshell import InteractiveShell

    ip = InteractiveShell.instance()
    for name in json.loads(sys.argv[1]):
        ip.extension_manager.load_extension(name)
    report = []
    for cell in json.loads(sys.argv[2]):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            result = ip.run_cell(cell)
        error = result.error_in_exec or result.error_before_exec
        report.append({
            "stdout": out.getvalue(),
            "stderr": err.getvalue(),
            "result": None if result.result is None
                      else getattr(result.result, "data", None) or str(result.result),
            "error": type(error).__name__ if error else None,
            "stored_errors": sorted(ip.user_ns.get("Err", {})),
        })
    print("REPORT " + json.dumps(report))
    """
)


def run_cells(extensions, cells, env, tmp_path):
    return run_report(SHELL, [extensions, cells], env, tmp_path)


@pytest.mark.parametrize(
    "extensions",
    [["jupyter_ai_magics", "aihub_providers"], ["aihub_providers", "jupyter_ai_magics"]],
    ids=["image-order", "reversed"],
)
def test_ai_magic_answers_and_failures_are_one_line(extensions, server, tmp_path):
    server.state.keys = {GOOD_KEY, "ollama"}
    cells = [
        "%%ai deepseek:deepseek-chat -f text\nHello from a notebook",
        "%%ai ollama:test-model\nlocal model please",
        f"%env DEEPSEEK_API_KEY={WRONG_KEY}",
        "%%ai deepseek:deepseek-chat\nHello again",
        "%env DEEPSEEK_API_KEY=",
        "%%ai deepseek:deepseek-chat\nAnyone there?",
        "1/0",
    ]
    env = {
        "DEEPSEEK_API_KEY": GOOD_KEY,
        "DEEPSEEK_BASE_URL": server.url + "/v1",
        "OLLAMA_BASE_URL": server.url,
        "NO_PROXY": "127.0.0.1,localhost",
    }
    answer, local, _, rejected, _, missing, zero = run_cells(extensions, cells, env, tmp_path)

    # the answers are the server's transformation of each prompt
    assert answer["error"] is None and answer["stderr"] == ""
    assert answer["result"] == answer_for(
        "deepseek-chat", [{"role": "user", "content": "Hello from a notebook"}]
    )
    # (the default format, markdown, appends an instruction to the prompt)
    assert local["result"].startswith("test-model: ")
    assert local["result"].endswith("local model please"[::-1])
    auth = [r.authorization for r in server.state.requests]
    assert auth == [f"Bearer {GOOD_KEY}", "Bearer ollama", f"Bearer {WRONG_KEY}"]

    # a rejected key (set in the kernel: read at call time) is one short line
    assert rejected["error"] == "ProviderError" and rejected["stdout"] == ""
    assert rejected["stderr"] == (
        "DeepSeek rejected the API key (HTTP 401): check DEEPSEEK_API_KEY in .env\n"
    )
    # so is a missing key
    assert missing["error"] == "ProviderError" and missing["stdout"] == ""
    assert missing["stderr"] == (
        "DeepSeek is not set up: the admin must set DEEPSEEK_API_KEY in .env "
        "(then restart your server)\n"
    )
    for report in (rejected, missing):
        assert "Traceback" not in report["stderr"] + report["stdout"]
        assert WRONG_KEY not in report["stderr"] and GOOD_KEY not in report["stderr"]

    # any other error keeps its traceback, and jupyter_ai_magics still stores it for
    # `%ai error` (our handler wraps theirs instead of replacing it)
    assert zero["error"] == "ZeroDivisionError"
    assert "ZeroDivisionError" in zero["stdout"] + zero["stderr"]
    assert "Traceback" in zero["stdout"] + zero["stderr"]
    assert zero["stored_errors"] and not missing["stored_errors"]
