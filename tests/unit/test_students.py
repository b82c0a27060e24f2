"""aihub.students: every student with the volume the spawner gives them, and deleting one
completely (server, container, volume, account, sign-up, ledger rows on request)."""

import asyncio
from types import SimpleNamespace

import docker
import pytest

from aihub.labels import student_filter
from aihub.progress import size_text
from aihub.students import StudentError, Tools, main, students

PROJECT = "class1"


def test_every_account_sign_up_and_volume_is_listed_with_its_escaped_volume():
    users = [{"name": "admin", "admin": True, "servers": {}},
             {"name": "alice", "admin": False, "servers": {"": {"ready": True}}},
             {"name": "li-lei", "admin": False, "servers": {}}]
    sign_ups = {"admin": True, "alice": True, "bob": False}
    volumes = {"class1-user-alice": 5 * 1024**2, "class1-user--e7-8e-8b-e8-8a-b3": 2048,
               "class1-user-li-2dlei": 0}
    found = {student.name: student for student in students(PROJECT, users, sign_ups, volumes)}
    assert list(found) == ["admin", "alice", "bob", "li-lei", "王芳"]
    assert (found["alice"].account, found["alice"].server, found["alice"].volume, found["alice"].size_text) == (
        "approved", "running", "class1-user-alice", "5.0 MiB")
    assert (found["li-lei"].account, found["li-lei"].volume) == ("added by an admin, not signed up yet",
                                                                 "class1-user-li-2dlei")
    assert (found["bob"].account, found["bob"].server, found["bob"].size) == ("waiting for approval", "-", None)
    assert (found["王芳"].account, found["王芳"].volume) == ("no account (files only)",
                                                         "class1-user--e7-8e-8b-e8-8a-b3")
    assert found["admin"].account == "admin"


def test_sizes_read_like_docker_system_df():
    assert [size_text(n) for n in (0, 1023, 1536, 3 * 1024**3)] == ["0 B", "1023 B", "1.5 KiB", "3.0 GiB"]


class FakeHub:
    def __init__(self, users):
        self.accounts = {user["name"]: user for user in users}
        self.calls = []

    async def users(self):
        return list(self.accounts.values())

    async def stop_server(self, name):
        self.calls.append(("stop", name))
        self.accounts[name]["servers"] = {}

    async def delete_user(self, name):
        self.calls.append(("delete", name))
        del self.accounts[name]


class FakeEngine:
    """The Docker engine: volumes (with sizes) and student containers mounting them."""

    def __init__(self, volumes, containers):
        self.volume_sizes = dict(volumes)
        self.mounted = dict(containers)  # container name -> volume
        self.removed = []
        self.volumes = SimpleNamespace(get=self.get_volume)
        self.containers = SimpleNamespace(list=self.list_containers)

    def df(self):
        return {"Volumes": [{"Name": name, "UsageData": {"Size": size}} for name, size in self.volume_sizes.items()]}

    def get_volume(self, name):
        if name not in self.volume_sizes:
            raise docker.errors.NotFound(name)

        def remove():
            if name in self.mounted.values():
                raise docker.errors.APIError("volume is in use", explanation="volume is in use")
            del self.volume_sizes[name]
            self.removed.append(name)
        return SimpleNamespace(remove=remove)

    def list_containers(self, all, filters):
        assert all and filters["label"] == student_filter(PROJECT)["label"]

        def remover(name):
            def remove(force):
                del self.mounted[name]
                self.removed.append(name)
            return remove
        return [SimpleNamespace(remove=remover(name)) for name, volume in self.mounted.items()
                if volume == filters["volume"]]


class FakeDatabase:
    """The hub's tables as the tool reads and changes them."""

    def __init__(self, sign_ups, ledger):
        self.sign_ups = dict(sign_ups)
        self.ledger = list(ledger)
        self.statement = None

    def execute(self, sql, args=()):
        self.statement = " ".join(sql.split())
        if sql.startswith("SELECT username, is_authorized"):
            self.rows = list(self.sign_ups.items())
        elif sql.startswith("DELETE FROM users_info"):
            self.sign_ups.pop(args[0], None)
        elif "to_regclass" in sql:
            self.rows = [(True,)]
        elif sql.startswith("SELECT count(*) FROM ai_usage"):
            self.rows = [(self.ledger.count(args[0]),)]
        elif sql.startswith("DELETE FROM ai_usage"):
            self.rowcount = sum(1 for name in self.ledger if name in args[0])
            self.ledger = [name for name in self.ledger if name not in args[0]]
        elif sql.startswith("DELETE FROM ai_budget_overrides"):
            self.rowcount = 0
        else:
            raise AssertionError(f"unexpected SQL: {sql}")

    def fetchall(self):
        return self.rows

    def fetchone(self):
        return self.rows[0]


@pytest.fixture
def school():
    hub = FakeHub([{"name": "admin", "admin": True, "servers": {}},
                   {"name": "li-lei", "admin": False, "servers": {"": {"ready": True}}},
                   {"name": "alice", "admin": False, "servers": {}}])
    engine = FakeEngine({"class1-user-li-2dlei": 4096, "class1-user-alice": 10, "class1-user-carol": 99},
                        {"class1-li-2dlei": "class1-user-li-2dlei"})
    database = FakeDatabase({"admin": True, "li-lei": True, "alice": True, "dan": False},
                            ["li-lei", "li-lei", "alice"])
    tools = Tools(SimpleNamespace(compose_project_name=PROJECT), {}, hub=hub, engine=engine)
    tools.database = lambda work: work(database)
    return SimpleNamespace(tools=tools, hub=hub, engine=engine, database=database)


def delete(school, name, ledger=False, confirmed=True):
    return asyncio.run(school.tools.delete(name, ledger, confirmed))


def test_delete_removes_server_container_volume_account_and_sign_up(school, capsys):
    assert delete(school, "li-lei") == 0
    assert school.hub.calls == [("stop", "li-lei"), ("delete", "li-lei")]
    assert school.engine.removed == ["class1-li-2dlei", "class1-user-li-2dlei"]
    assert "li-lei" not in school.database.sign_ups
    assert school.database.ledger == ["li-lei", "li-lei", "alice"], "the ledger is kept without --ledger"
    assert "volume class1-user-li-2dlei removed" in capsys.readouterr().out


def test_delete_with_ledger_removes_only_that_students_rows(school, capsys):
    assert delete(school, "li-lei", ledger=True) == 0
    assert school.database.ledger == ["alice"]
    out = capsys.readouterr().out
    assert "2 AI usage ledger rows" in out and "2 ledger rows deleted" in out


def test_files_left_by_a_deleted_account_and_a_waiting_sign_up_can_be_deleted(school):
    assert delete(school, "carol") == 0
    assert school.engine.removed == ["class1-user-carol"] and school.hub.calls == []
    assert delete(school, "dan") == 0
    assert "dan" not in school.database.sign_ups and school.hub.calls == []


def test_an_unknown_name_is_one_clear_line_and_nothing_changes(school):
    with pytest.raises(StudentError, match=r"no student named 'li-le'.*python -m aihub.students list"):
        delete(school, "li-le")
    assert school.hub.calls == [] and school.engine.removed == []


def test_an_admin_is_not_deleted(school):
    with pytest.raises(StudentError, match="admin"):
        delete(school, "admin")
    assert school.hub.calls == []


def test_without_a_terminal_delete_needs_yes(school, monkeypatch):
    monkeypatch.setattr("sys.stdin", SimpleNamespace(isatty=lambda: False))
    with pytest.raises(StudentError, match="add --yes"):
        delete(school, "alice", confirmed=False)
    assert school.hub.calls == [] and "alice" in school.database.sign_ups


def test_at_a_terminal_the_name_must_be_typed_again(school, monkeypatch):
    monkeypatch.setattr("sys.stdin", SimpleNamespace(isatty=lambda: True))
    monkeypatch.setattr("builtins.input", lambda prompt: "alic")
    assert delete(school, "alice", confirmed=False) == 1
    assert school.hub.calls == []
    monkeypatch.setattr("builtins.input", lambda prompt: "alice")
    assert delete(school, "alice", confirmed=False) == 0
    assert school.hub.calls == [("delete", "alice")]


def test_a_volume_still_in_use_is_reported_in_one_line(school):
    school.engine.mounted["someone-elses-container"] = "class1-user-alice"  # not a student server
    school.engine.containers = SimpleNamespace(list=lambda all, filters: [])
    with pytest.raises(StudentError, match="could not remove the volume class1-user-alice: volume is in use"):
        delete(school, "alice")


def test_delete_without_a_name_is_a_usage_error():
    with pytest.raises(SystemExit) as usage:
        main(["delete"])
    assert usage.value.code == 2
