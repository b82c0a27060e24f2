"""One fresh IPython shell in a subprocess (IPython keeps global state), for the tests
of the magics: it runs a script that prints one `REPORT <json>` line, in an environment
without any vendor variable but those a test gives."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from aihub_providers.vendors import VENDORS_LIST


def run_report(script: str, args: list, env: dict[str, str], tmp_path) -> dict | list:
    vendor_variables = {name for vendor in VENDORS_LIST for name in (vendor.key_env, vendor.base_env)}
    clean = {name: value for name, value in os.environ.items() if name not in vendor_variables}
    tmp_path.mkdir(exist_ok=True)
    proc = subprocess.run(
        [sys.executable, "-c", script, *map(json.dumps, args)],
        env=clean | {"IPYTHONDIR": str(tmp_path / "ipython"), "HOME": str(tmp_path)} | env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("REPORT ")]
    assert lines, f"shell failed: {proc.stderr[-3000:]}"
    return json.loads(lines[-1].removeprefix("REPORT "))
