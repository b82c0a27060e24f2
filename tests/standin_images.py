"""The official images the stack names, or where those cannot be pulled (no registry,
as on the test machine) the local stand-ins with the same contract (tests/standins)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

STANDINS = Path(__file__).parent / "standins"


def image_available(image: str) -> bool:
    """True when `image` is present or can be pulled."""
    for command in (["docker", "image", "inspect", image], ["docker", "pull", image]):
        if subprocess.run(command, capture_output=True, timeout=300).returncode == 0:
            return True
    return False


def standin_of(service: str) -> str:
    """The image tests/standins/compose.standins.yml runs for `service` of the stack."""
    overrides = yaml.safe_load((STANDINS / "compose.standins.yml").read_text())
    return overrides["services"][service]["image"]


def official_or_standin(service: str, official: str) -> str:
    """`official` where it can be had, else `service`'s stand-in, built when missing or stale."""
    if image_available(official):
        return official
    standin = standin_of(service)
    built = subprocess.run(["bash", str(STANDINS / "build.sh"), standin], capture_output=True, text=True)
    if built.returncode != 0:
        raise RuntimeError(f"{official} cannot be pulled and tests/standins/build.sh {standin} failed:\n"
                           f"{built.stderr[-3000:]}")
    return standin
