"""The test swarm (tests/swarm/cluster.py), made once for the session and removed after."""

import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from e2e.browser import Browser

from .cluster import REGISTRY, SwarmCluster

# What an admin puts in .env on the manager: the registry, and (here) the stand-ins'
# names for the official images. Small limits keep the test machine comfortable.
SETTINGS = {
    "USER_MEM_LIMIT": "1G",
    "USER_CPU_LIMIT": "1",
    # The Ollama stand-in's random models never stop on their own (see tests/e2e).
    "AI_DEFAULT_MAX_TOKENS": "32",
}


@pytest.fixture(scope="session")
def cluster(figures):
    if not shutil.which("docker"):
        pytest.fail("the Swarm test needs Docker (see README, Test it)")
    workdir = Path(tempfile.mkdtemp(prefix="aihub-swarm-"))
    cluster = SwarmCluster(workdir, SETTINGS)
    cluster.remove()  # leftovers of a run that was killed
    started = time.monotonic()
    try:
        images = cluster.build_images()
        figures["swarm: images built"] = f"{time.monotonic() - started:.1f} s"
        step = time.monotonic()
        cluster.start()
        figures["swarm: three Docker-in-Docker nodes up, swarm formed"] = f"{time.monotonic() - step:.1f} s"
        step = time.monotonic()
        cluster.push(images)
        figures["swarm: images pushed to the registry"] = f"{time.monotonic() - step:.1f} s"
        step = time.monotonic()
        cluster.deploy(["docker-stack.yml"], {
            **SETTINGS, "IMAGE_REGISTRY": f"{REGISTRY}:5000",
            "POSTGRES_IMAGE": images["postgres"][1], "OLLAMA_IMAGE": images["ollama"][1]})
        cluster.wait_hub()
        figures["swarm: stack deploy to healthy hub"] = f"{time.monotonic() - step:.1f} s"
        yield cluster
    finally:
        if os.environ.get("AIHUB_TEST_KEEP") != "1":
            cluster.remove()
            shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def swarm_admin(cluster):
    user, password = cluster.admin_login()
    browser = Browser(cluster.hub_url)
    browser.log_in(user, password)
    assert browser.is_logged_in(), "the admin could not log in with the generated password"
    return browser
