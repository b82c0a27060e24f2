"""The test swarm (tests/swarm/cluster.py), made once for the session and removed after."""

import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from e2e.browser import Browser
from e2e.stack import SMALL_CLASSROOM

from .cluster import REGISTRY, SwarmCluster

@pytest.fixture(scope="session")
def cluster(figures):
    if not shutil.which("docker"):
        pytest.fail("the Swarm test needs Docker (see README, Test it)")
    workdir = Path(tempfile.mkdtemp(prefix="aihub-swarm-"))
    cluster = SwarmCluster(workdir, SMALL_CLASSROOM)
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
            **SMALL_CLASSROOM, "IMAGE_REGISTRY": f"{REGISTRY}:5000",
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
    return Browser.logged_in_admin(cluster.hub_url, cluster.admin_login())
