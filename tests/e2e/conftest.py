"""The stack, brought up once per run from a clean state, and the people who use it."""

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from .browser import Browser
from .stack import SMALL_CLASSROOM, Stack

TEST_PROJECT = "aihub-test"
TEST_PORT = int(os.environ.get("AIHUB_TEST_PORT", "18000"))
# What an admin might put in .env: the small classroom, a culler, a vendor.
TEST_SETTINGS = {
    **SMALL_CLASSROOM, "CULL_IDLE_TIMEOUT": "1h",
    # A vendor key, and the vendor's base URL at the test upstream (compose.e2e.yml).
    "DEEPSEEK_API_KEY": "sk-e2e-test-key-not-a-real-one",
    "DEEPSEEK_BASE_URL": "http://vendor-upstream:11434/v1",
}


@pytest.fixture(scope="session")
def stack(figures):
    if not shutil.which("docker"):
        pytest.fail("the end-to-end tests need Docker with Compose v2 (see README, Tests)")
    workdir = Path(tempfile.mkdtemp(prefix="aihub-e2e-"))
    stack = Stack(workdir, TEST_PROJECT, TEST_PORT, TEST_SETTINGS)
    stack.prepare()
    stack.purge()  # a clean state: no containers or volumes from an earlier run
    figures["compose up -d (build) to healthy hub"] = f"{stack.up():.1f} s"
    yield stack
    if os.environ.get("AIHUB_TEST_KEEP") != "1":
        stack.purge()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def admin(stack):
    return Browser.logged_in_admin(stack.url, stack.admin_login())


@pytest.fixture(scope="session")
def student_credentials():
    return "alice", "correct-horse-battery"


@pytest.fixture(scope="session")
def student(stack, admin, student_credentials):
    """A student who signed up on the hub's page and was approved by the admin."""
    username, password = student_credentials
    browser = Browser(stack.url)
    message = browser.sign_up(username, password)
    assert "sent to the admin" in message
    browser.log_in(username, password)
    assert not browser.is_logged_in(), "an unapproved student could log in"
    admin.approve(username)
    browser.log_in(username, password)
    assert browser.is_logged_in(), "the approved student could not log in"
    return browser


@pytest.fixture
def server(student):
    """The student with JupyterLab open on a running server (earlier tests may stop it)."""
    if not student.server_running():
        student.start_server()
    student.wait_until_ready()  # logging in starts a student's server: it may still be starting
    student.open_lab()
    return student
