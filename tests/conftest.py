"""Shared by all tests: figures measured along the way, printed at the end of the run."""

import pytest

FIGURES: dict[str, str] = {}
DOCKER_SUITES = ("e2e", "swarm")  # the folders whose tests drive the real stack in Docker


def pytest_collection_modifyitems(items):
    for item in items:
        if any(f"/{suite}/" in str(item.fspath) for suite in DOCKER_SUITES):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def figures() -> dict[str, str]:
    return FIGURES


def pytest_terminal_summary(terminalreporter):
    if FIGURES:
        terminalreporter.section("figures measured")
        for name, value in FIGURES.items():
            terminalreporter.write_line(f"{name}: {value}")
