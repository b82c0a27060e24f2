"""Our `openai`, `openrouter` and `ollama` replace jupyter-ai-magics' providers.

jupyter-ai-magics registers providers with the same ids; get_lm_providers() keeps
the entry point loaded last, and entry points load in sys.path order. The user image
therefore installs this package with `pip install --target DIR` and adds a .pth file
naming DIR to site-packages: DIR comes after site-packages, so ours load last.

This test builds that layout: the package is pip-installed (offline) into a target
folder; a stand-in site-packages holds links to everything in this venv's
site-packages except this package's own install, plus the .pth file; a fresh
interpreter (python -S, then site.addsitedir, which is what site.py does at start)
lists the providers. A control run puts DIR *before* site-packages and must see
jupyter-ai-magics' classes, which shows the order is what decides.

The image no longer installs langchain-openai, so jupyter-ai-magics' `openai` and
`openrouter` cannot load there at all (jupyter-ai logs and skips them) and ours are
the only ones; the order still matters when an admin adds langchain-openai. So that
these tests show the order, not the missing package, both runs get a stand-in
`langchain_openai` (classes only: enough for jupyter-ai-magics to define its
providers) when it is not installed; test_without_langchain_openai_ours_are_the_only_ones
shows the image's case.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHADOWED = ("openai", "openrouter", "ollama")

PROBE = """
import json, site, sys
for how, entry in json.loads(sys.argv[1]):
    if how == "site":  # a site-packages folder: added, then its .pth files read
        site.addsitedir(entry)
    else:
        sys.path.append(entry)
from jupyter_ai_magics.utils import get_lm_providers
providers = get_lm_providers()
print("PROBE " + json.dumps({pid: providers[pid].__module__ for pid in json.loads(sys.argv[2])}))
"""


STAND_IN = """
from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel, BaseLLM
from pydantic import BaseModel

class ChatOpenAI(BaseChatModel): pass
class AzureChatOpenAI(ChatOpenAI): pass
class OpenAI(BaseLLM): pass
class OpenAIEmbeddings(BaseModel, Embeddings): pass
class AzureOpenAIEmbeddings(OpenAIEmbeddings): pass
"""
HAS_LANGCHAIN_OPENAI = importlib.util.find_spec("langchain_openai") is not None


@pytest.fixture(scope="module")
def langchain_openai(tmp_path_factory) -> list[tuple[str, Path]]:
    """Path entries that make `import langchain_openai` work (none if installed)."""
    if HAS_LANGCHAIN_OPENAI:
        return []
    folder = tmp_path_factory.mktemp("stand_in")
    (folder / "langchain_openai").mkdir()
    (folder / "langchain_openai" / "__init__.py").write_text(STAND_IN)
    return [("path", folder)]


def own_install(name: str) -> bool:
    lowered = name.lower().replace("-", "_")
    return "aihub_providers" in lowered


@pytest.fixture(scope="module")
def target(tmp_path_factory) -> Path:
    """This package installed the way the image does: pip install --target."""
    tmp = tmp_path_factory.mktemp("precedence")
    source = tmp / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "aihub_providers", source / "aihub_providers",
                    ignore=shutil.ignore_patterns("__pycache__"))
    target = tmp / "target"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
         "--no-build-isolation", "--disable-pip-version-check", "--target", str(target),
         str(source)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, (
        "pip install --target failed (the test extra brings setuptools>=70.1: "
        f"pip install -e 'providers[test]'):\n{proc.stderr[-2000:]}"
    )
    assert (target / "aihub_providers" / "providers.py").exists()
    return target


@pytest.fixture(scope="module")
def site_packages(tmp_path_factory) -> Path:
    """This venv's site-packages without this package (links, nothing copied)."""
    real = Path(sysconfig.get_paths()["purelib"])
    fake = tmp_path_factory.mktemp("site") / "site-packages"
    fake.mkdir()
    for entry in real.iterdir():
        if not own_install(entry.name):
            (fake / entry.name).symlink_to(entry)
    return fake


def probe(path_entries: list[tuple[str, Path]], cwd: Path) -> dict[str, str]:
    """Module of each provider class in a fresh interpreter with only these paths.

    -I -S: no site-packages, no PYTHON* variables, no current folder on sys.path
    (a source checkout's aihub_providers.egg-info there would count as installed).
    """
    proc = subprocess.run(
        [sys.executable, "-I", "-S", "-c", PROBE,
         json.dumps([(how, str(path)) for how, path in path_entries]),
         json.dumps([*SHADOWED, "deepseek"])],
        capture_output=True, text=True, timeout=120, cwd=cwd,
    )
    lines = [l for l in proc.stdout.splitlines() if l.startswith("PROBE ")]
    assert lines, proc.stderr[-3000:]
    return json.loads(lines[-1].removeprefix("PROBE "))


def test_pth_after_site_packages_makes_ours_win(target, site_packages, langchain_openai, tmp_path):
    (site_packages / "aihub-providers.pth").write_text(f"{target}\n")
    try:
        modules = probe([("site", site_packages), *langchain_openai], cwd=tmp_path)
    finally:
        (site_packages / "aihub-providers.pth").unlink()
    assert modules == {pid: "aihub_providers.providers" for pid in (*SHADOWED, "deepseek")}


def test_control_target_before_site_packages_loses(target, site_packages, langchain_openai, tmp_path):
    modules = probe([("path", target), ("site", site_packages), *langchain_openai], cwd=tmp_path)
    assert modules["openai"].startswith("jupyter_ai_magics")
    assert modules["openrouter"].startswith("jupyter_ai_magics")
    assert modules["deepseek"] == "aihub_providers.providers"
    if importlib.util.find_spec("langchain_ollama") is None:
        # jupyter-ai-magics' ollama cannot load without langchain-ollama: ours is the
        # only one, whatever the order
        assert modules["ollama"] == "aihub_providers.providers"


@pytest.mark.skipif(HAS_LANGCHAIN_OPENAI, reason="langchain-openai is installed here")
def test_without_langchain_openai_ours_are_the_only_ones(target, site_packages, tmp_path):
    """The image: jupyter-ai-magics' openai-based providers fail to import and are
    skipped, so even the wrong order gives ours."""
    modules = probe([("path", target), ("site", site_packages)], cwd=tmp_path)
    assert modules == {pid: "aihub_providers.providers" for pid in (*SHADOWED, "deepseek")}
