"""The README tells the truth: its tables match the settings and the vendor table."""

import math
import re
from pathlib import Path

import pytest

from aihub_providers.vendors import VENDORS_LIST

from aihub import settings_docs

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def test_configuration_table_is_generated_from_the_settings_tables():
    assert settings_docs.with_table(README, settings_docs.readme_table()) == README, (
        f"the README's configuration table is stale: run `{settings_docs.COMMAND}`")


@pytest.mark.parametrize("readme, start, end", [
    ("README.md", "### Vendors", "### Proxies"),
    ("README.zh-CN.md", "### 厂商", "### 密钥只留在"),
])
def test_every_vendor_is_documented_with_its_variables(readme, start, end):
    text = (ROOT / readme).read_text()
    section = text[text.index(start):text.index(end)]
    for vendor in VENDORS_LIST:
        row = next((line for line in section.splitlines() if line.startswith(f"| `{vendor.id}` |")), None)
        assert row, f"{readme} has no row for provider {vendor.id}"
        assert f"`{vendor.key_env}`" in row and f"`{vendor.base_env}`" in row


def test_readme_commands_name_real_things():
    assert "docker compose exec hub python -m aihub.secrets admin-login" in README
    assert "docker compose exec postgres psql -U jupyterhub jupyterhub -c 'SELECT name, admin, last_activity FROM users'" in README
    assert (ROOT / "ollama" / "compose.gpu.yml").exists() and "ollama/compose.gpu.yml" in README


def test_readme_gives_the_admin_tools_that_exist_and_no_image_to_pull():
    compose = (ROOT / "docker-compose.yml").read_text()
    assert "docker compose exec hub python -m aihub.students list" in README
    assert "docker compose run --rm -T backup create > class.tar" in README
    assert "docker compose run --rm -T backup restore < class.tar" in README
    assert "\n  backup:\n" in compose and 'entrypoint: ["python", "-m", "aihub.backup"]' in compose
    # Student volumes' names are escaped: the README never has admins guess one.
    assert "debian:bookworm-slim" not in README and "docker volume rm aihub-user-" not in README


def test_the_test_section_names_every_package_ci_installs_on_a_bare_machine():
    # .ci/run prepares a bare machine with exactly what the README says a newcomer needs.
    section = README[README.index("## Test it"):README.index("### Adding a setting")]
    ci = (ROOT / ".ci" / "run").read_text()
    installed = {package for line in re.findall(r"apt-get install (.*)", ci)
                 for package in line.split() if not package.startswith(("-", ">"))}
    assert installed, "found no apt-get install in .ci/run"
    for package in installed:
        assert f"`{package}`" in section, f"README's 'Test it' does not say the machine needs {package}"


def test_the_sizing_table_follows_from_the_measured_figures():
    """README's sizing guide: each row's memory and cores come from the Capacity section's
    per-student figures (memory rounded up to a machine's size, a multiple of 8 GiB)."""
    capacity = README[README.index("## Capacity"):README.index("### Sizing")]
    sizing = README[README.index("### Sizing"):README.index("## Kubernetes")]
    cpu_seconds = float(re.search(r"about ([\d.]+) CPU-seconds per student", capacity)[1])
    bundle_gib = float(re.search(r"about ([\d.]+) GiB per student for the bundle", capacity)[1])
    base_gib = float(re.search(r"plus about (\d+) GiB for the hub", capacity)[1])
    student_gib = float(re.search(r"a student costs about ([\d.]+) GiB with light work", sizing)[1])
    assert bundle_gib < student_gib
    assert f"one core per {round(60 / cpu_seconds)} students" in sizing
    rows = re.findall(r"^\| (\d+) \| (\d+) GiB \| (\d+) \|", sizing, re.M)
    assert len(rows) == 3
    for students, memory, cores in ((int(n), int(m), int(c)) for n, m, c in rows):
        needed = base_gib + students * student_gib
        assert needed <= memory < needed + 8, f"{students} students: {memory} GiB"
        assert cores == math.ceil(students * cpu_seconds / 60), f"{students} students: {cores} cores"
