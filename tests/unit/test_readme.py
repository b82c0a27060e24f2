"""The README tells the truth: its tables match .env.example and the vendor table."""

import re
from pathlib import Path

from aihub_providers.vendors import VENDORS_LIST

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def env_example_names() -> list[str]:
    return re.findall(r"^([A-Z][A-Z0-9_]*)=", (ROOT / ".env.example").read_text(), re.M)


def test_configuration_table_matches_env_example_line_for_line():
    table = README[README.index("| variable | default | meaning |"):]
    names = re.findall(r"^\| `([A-Z][A-Z0-9_]*)` \|", table.split("\n\n")[0], re.M)
    assert names == env_example_names()


def test_configuration_table_shows_each_default():
    text = (ROOT / ".env.example").read_text()
    for name, default in re.findall(r"^([A-Z][A-Z0-9_]*)=(.+)$", text, re.M):
        assert f"| `{name}` | `{default}` |" in README, name


def test_every_vendor_is_documented_with_its_variables():
    section = README[README.index("### Vendors"):README.index("### Proxies")]
    for vendor in VENDORS_LIST:
        row = next((line for line in section.splitlines() if line.startswith(f"| `{vendor.id}` |")), None)
        assert row, f"README has no row for provider {vendor.id}"
        assert f"`{vendor.key_env}`" in row and f"`{vendor.base_env}`" in row


def test_readme_commands_name_real_things():
    assert "docker compose exec hub python -m aihub.secrets admin-login" in README
    assert "docker compose exec postgres psql -U jupyterhub jupyterhub -c 'SELECT name, admin, last_activity FROM users'" in README
    assert (ROOT / "ollama" / "compose.gpu.yml").exists() and "ollama/compose.gpu.yml" in README
