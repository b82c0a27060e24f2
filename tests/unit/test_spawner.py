"""aihub.spawner: a class's servers start in turns, first come first served, and a
server may start without AI but never gain it against the admin's setting."""

import asyncio
from types import SimpleNamespace

import pytest
from dockerspawner import DockerSpawner
from tornado.web import HTTPError
from traitlets.config import Config

from aihub.labels import PROJECT_LABEL, ROLE_LABEL, STUDENT_SERVER, student_container_labels, student_filter
from aihub.server_token import STATE_KEY, token_digest
from aihub.spawner import ClassroomSpawner, StartQueue


def run(coroutine):
    return asyncio.run(coroutine)


def test_the_first_come_start_at_once_up_to_the_slots():
    async def scenario():
        queue = StartQueue(2)
        await queue.wait_turn("a")
        await queue.wait_turn("b")
        assert queue.holders == 2 and queue.waiting == 0
        third = asyncio.create_task(queue.wait_turn("c"))
        await asyncio.sleep(0)
        assert not third.done() and queue.ahead_of("c") == 0
        queue.done()
        await asyncio.wait_for(third, 1)
        assert queue.holders == 2 and queue.waiting == 0
    run(scenario())


def test_turns_go_in_order_of_arrival_and_places_are_shown():
    async def scenario():
        queue = StartQueue(1)
        await queue.wait_turn("first")
        order = []

        async def student(name):
            await queue.wait_turn(name)
            order.append(name)
        tasks = [asyncio.create_task(student(name)) for name in ("s1", "s2", "s3")]
        await asyncio.sleep(0)
        assert [queue.ahead_of(name) for name in ("s1", "s2", "s3")] == [0, 1, 2]
        assert queue.ahead_of("first") is None
        for _ in tasks:
            queue.done()
            await asyncio.sleep(0)
        await asyncio.gather(*tasks)
        assert order == ["s1", "s2", "s3"]
        queue.done()
        assert queue.holders == 0
    run(scenario())


def test_a_student_who_gives_up_leaves_the_line_and_loses_no_slot():
    async def scenario():
        queue = StartQueue(1)
        await queue.wait_turn("a")
        leaving = asyncio.create_task(queue.wait_turn("leaves"))
        staying = asyncio.create_task(queue.wait_turn("stays"))
        await asyncio.sleep(0)
        leaving.cancel()
        await asyncio.sleep(0)
        assert queue.ahead_of("stays") == 0
        queue.done()
        await asyncio.wait_for(staying, 1)
        queue.done()
        assert queue.holders == 0 and queue.waiting == 0
    run(scenario())


def test_a_turn_handed_over_as_the_student_gives_up_goes_to_the_next():
    async def scenario():
        queue = StartQueue(1)
        await queue.wait_turn("a")
        leaving = asyncio.create_task(queue.wait_turn("leaves"))
        staying = asyncio.create_task(queue.wait_turn("stays"))
        await asyncio.sleep(0)
        queue.done()  # the turn goes to "leaves"...
        leaving.cancel()  # ...who gives up before taking it
        with pytest.raises(asyncio.CancelledError):
            await leaving
        await asyncio.wait_for(staying, 1)
        assert queue.holders == 1
    run(scenario())


def make_spawner(options=None, **config):
    c = Config()
    c.ClassroomSpawner.environment = {"AI_ENABLED": "true", "DEEPSEEK_API_KEY": "token", "NO_PROXY": "hub"}
    c.ClassroomSpawner.environment_without_ai = {"AI_ENABLED": "false"}
    for name, value in config.items():
        setattr(c.ClassroomSpawner, name, value)
    spawner = ClassroomSpawner(config=c, user=SimpleNamespace(name="alice", url="/user/alice/"),
                               hub=SimpleNamespace(api_url="http://hub:8081/hub/api", base_url="/hub/",
                                                   public_host="", url="http://hub:8081/hub/"))
    spawner.user_options = options or {}
    return spawner


def test_a_server_started_without_ai_gets_none_of_its_variables():
    env = make_spawner({"ai": False}).get_env()
    assert env["AI_ENABLED"] == "false"
    assert "DEEPSEEK_API_KEY" not in env and "NO_PROXY" not in env
    assert make_spawner().get_env()["DEEPSEEK_API_KEY"] == "token"


@pytest.mark.parametrize("options", [{"ai": "no"}, {"image": "evil"}, {"ai": 0}])
def test_server_options_other_than_ai_on_or_off_are_refused(options):
    spawner = make_spawner()
    with pytest.raises(HTTPError) as refused:
        spawner.apply_user_options(spawner, options)
    assert refused.value.status_code == 400


def test_the_ai_option_is_accepted():
    spawner = make_spawner()
    spawner.apply_user_options(spawner, {"ai": False})
    spawner.apply_user_options(spawner, {})


def test_docker_calls_run_on_a_pool_not_one_thread():
    assert make_spawner(docker_threads=8).executor._max_workers >= 8


def test_student_containers_are_labelled_as_the_stacks_and_not_as_composes():
    labels = student_container_labels("class1")
    assert labels[PROJECT_LABEL] == "class1" and labels[ROLE_LABEL] == STUDENT_SERVER
    # Blank compose labels: `docker compose up` never counts them as `singleuser` replicas.
    assert labels["com.docker.compose.project"] == "" and labels["com.docker.compose.service"] == ""
    assert student_filter("class1") == {"label": [f"{PROJECT_LABEL}=class1", f"{ROLE_LABEL}={STUDENT_SERVER}"]}


@pytest.mark.parametrize("options, joined", [({}, ["class1-models"]), ({"ai": False}, [])])
def test_a_container_joins_its_extra_networks_before_it_starts(monkeypatch, options, joined):
    calls = []

    async def create_object(self):
        return {"Id": "container-1"}

    async def docker(self, method, *args):
        calls.append((method, *args))

    monkeypatch.setattr(DockerSpawner, "create_object", create_object)
    monkeypatch.setattr(ClassroomSpawner, "docker", docker)
    spawner = make_spawner(options, extra_networks=["class1-models"])
    assert run(spawner.create_object()) == {"Id": "container-1"}
    assert calls == [("connect_container_to_network", "container-1", network) for network in joined]


def test_the_state_records_the_running_servers_token_digest_and_keeps_it_across_a_hub_restart():
    """The AI gateway tells a server's token from a personal one by this (aihub.server_token)."""
    spawner = make_spawner()
    assert STATE_KEY not in spawner.get_state()
    spawner.api_token = "the-servers-token"
    state = spawner.get_state()
    assert state[STATE_KEY] == token_digest("the-servers-token") and "the-servers-token" not in str(state)
    restarted = make_spawner()  # a hub restart: no api_token, the state from the database
    restarted.load_state(state)
    assert restarted.get_state()[STATE_KEY] == token_digest("the-servers-token")
    restarted.clear_state()  # the server stopped
    assert STATE_KEY not in restarted.get_state()


def test_after_a_hub_restart_poll_takes_the_servers_token_back_from_its_container():
    """JupyterHub revokes a server's token at stop only if the spawner still knows it."""
    spawner = make_spawner()
    container = {"State": {"Running": True}, "Config": {"Env": ["A=1", "JUPYTERHUB_API_TOKEN=tok=en"]}}

    async def get_object():
        return container

    spawner.get_object = get_object
    assert run(spawner.poll()) is None
    assert spawner.api_token == "tok=en"
    container["State"] = {"Running": False, "ExitCode": 0, "Error": "", "FinishedAt": "now"}
    spawner.api_token = ""
    assert run(spawner.poll()) is not None and spawner.api_token == ""  # a stopped one: nothing to take
