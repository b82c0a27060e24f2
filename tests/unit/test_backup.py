"""aihub.backup: one archive with the secrets, a pg_dump and every student's volume,
restored into a fresh stack (renamed for its project), and never into one in use.

Docker and PostgreSQL are stand-ins that keep what they are given; the archives, the
streaming into and out of containers, and the secrets files are real."""

import io
import os
import tarfile
from types import SimpleNamespace

import pytest

from aihub import backup, secrets, settings as settings_module
from aihub.backup import BackupError, Stack, create, restore

DUMP = b"PGDMP pretend custom-format dump" * 1000


def tar_chunks(entries: dict, root: str, size: int = 1000):
    """A Docker archive of `entries` (path -> (content or None for a dir, uid, mode)) under `root`, in chunks."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for path, (content, uid, mode) in sorted(entries.items()):
            info = tarfile.TarInfo(f"{root}/{path}".rstrip("/.") if path != "." else root)
            info.uid, info.gid, info.mode = uid, uid, mode
            if content is None:
                info.type = tarfile.DIRTYPE
                archive.addfile(info)
            else:
                info.size = len(content)
                archive.addfile(info, io.BytesIO(content))
    data = buffer.getvalue()
    return (data[i:i + size] for i in range(0, len(data), size))


def untar(chunks) -> dict:
    with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as archive:  # PAX: long and non-ASCII names
        return {member.name: (archive.extractfile(member).read() if member.isreg() else None, member.uid, member.mode)
                for member in archive}


class FakeContainer:
    def __init__(self, engine, volume=None):
        self.engine, self.volume, self.id = engine, volume, "c1"
        self.files = {}

    def get_archive(self, path):
        assert path == "/volume"
        return tar_chunks(self.engine.volumes_content[self.volume], "volume"), {}

    def put_archive(self, path, chunks):
        files = untar(chunks)
        if self.volume is None:  # the postgres container
            assert path == "/tmp"
            self.files.update(files)
        else:
            assert path == "/"
            self.engine.volumes_content[self.volume] = {
                ("." if name == "volume" else name[len("volume/"):]): entry for name, entry in files.items()}
        return True

    def remove(self, force):
        self.engine.helpers_removed += 1


class FakeEngine:
    def __init__(self, volumes_content):
        self.volumes_content = volumes_content
        self.helpers_removed = 0
        self.volumes = SimpleNamespace(create=lambda name: self.volumes_content.setdefault(name, {}))


class FakeDatabase:
    """The new stack's database, as one cursor; what ran, with the password it ran with."""

    def __init__(self, has_accounts):
        self.has_accounts = has_accounts
        self.statements = []

    def __call__(self, password, work):
        self.password = password
        return work(self)

    def execute(self, sql, args=()):
        self.statements.append((sql, args, self.password))

    def fetchone(self):
        return (self.has_accounts,)


class FakeStack(Stack):
    def __init__(self, project, volumes_content, has_accounts=False):
        super().__init__(settings_module.load({**os.environ, "COMPOSE_PROJECT_NAME": project}),
                         engine=FakeEngine(volumes_content))
        self.postgres_container = FakeContainer(self.docker)
        self.commands = []
        self.database = FakeDatabase(has_accounts)

    def image(self):
        return "sha256:hub"

    def postgres(self):
        return self.postgres_container

    def student_volumes(self):
        return sorted(self.docker.volumes_content)

    def helper(self, volume, image, read_only):
        assert image == "sha256:hub"
        return FakeContainer(self.docker, volume)

    def run_in_postgres(self, command, output=None, meter=None):
        self.commands.append(command)
        if command[0] == "pg_dump":
            output.write(DUMP)
            meter.add(len(DUMP))
        if command[0] == "pg_restore":
            self.restored = self.postgres_container.files[command[-1].rsplit("/", 1)[1]][0]


HOMES = {
    "class1-user-alice": {".": (None, 1000, 0o750), "notes": (None, 1000, 0o755),
                          "notes/proof.txt": (b"alice's work " * 50000, 1000, 0o644)},
    "class1-user--e7-8e-8b-e8-8a-b3": {".": (None, 1000, 0o755), "a.py": (b"print(1)", 1000, 0o600),
                                       "作业" * 40 + ".ipynb": (b"{}", 1000, 0o644)},  # a long name: a PAX header
}


@pytest.fixture
def old_secrets(tmp_path, monkeypatch):
    for name in list(secrets.GENERATORS) + [setting.name for setting in settings_module.SETTINGS]:
        monkeypatch.delenv(name, raising=False)
    directory = tmp_path / "old"
    return secrets.ensure(settings_module.load({}), directory), directory


def make_archive(old_secrets) -> bytes:
    _, directory = old_secrets
    out = io.BytesIO()
    create(FakeStack("class1", {name: dict(files) for name, files in HOMES.items()}), out, directory)
    return out.getvalue()


def test_the_archive_holds_secrets_dump_and_every_volume_with_owners(old_secrets):
    values, _ = old_secrets
    with tarfile.open(fileobj=io.BytesIO(make_archive(old_secrets))) as archive:
        names = archive.getnames()
        assert names[0] == "aihub-backup.json"
        assert archive.extractfile("database.dump").read() == DUMP
        assert archive.extractfile("secrets/postgres_password").read().decode().strip() == values["POSTGRES_PASSWORD"]
        proof = archive.getmember("volumes/class1-user-alice/notes/proof.txt")
        assert (proof.uid, proof.mode) == (1000, 0o644)
        assert archive.getmember("volumes/class1-user-alice").mode == 0o750
        assert "volumes/class1-user--e7-8e-8b-e8-8a-b3/a.py" in names


def test_a_fresh_stack_gets_everything_back_under_its_own_name(old_secrets, tmp_path):
    values, _ = old_secrets
    archive = make_archive(old_secrets)
    fresh_dir = tmp_path / "fresh"
    fresh = secrets.ensure(settings_module.load({}), fresh_dir)  # what `up` made for the new stack
    stack = FakeStack("class2", {})
    restore(stack, io.BytesIO(archive), fresh_dir)
    assert secrets.read(fresh_dir) == values
    assert stack.restored == DUMP
    assert stack.commands[-1][:2] == ["rm", "-f"]
    assert stack.docker.volumes_content["class2-user-alice"] == HOMES["class1-user-alice"]
    assert stack.docker.volumes_content["class2-user--e7-8e-8b-e8-8a-b3"] == HOMES["class1-user--e7-8e-8b-e8-8a-b3"]
    assert stack.docker.helpers_removed == 2
    # The new database was made with the fresh password: it now takes the restored one.
    alter = [statement for statement in stack.database.statements if statement[0].startswith("ALTER ROLE")]
    assert alter == [("ALTER ROLE CURRENT_USER PASSWORD %s", (values["POSTGRES_PASSWORD"],),
                      fresh["POSTGRES_PASSWORD"])]


def test_a_secret_set_in_env_still_wins_after_a_restore(old_secrets, tmp_path, monkeypatch):
    archive = make_archive(old_secrets)
    monkeypatch.setenv("ADMIN_PASSWORD", "set-in-env-1")
    fresh_dir = tmp_path / "fresh"
    secrets.ensure(settings_module.load(), fresh_dir)
    restore(FakeStack("class2", {}), io.BytesIO(archive), fresh_dir)
    assert secrets.read(fresh_dir)["ADMIN_PASSWORD"] == "set-in-env-1"


def test_a_stack_with_accounts_is_refused_and_left_alone(old_secrets, tmp_path):
    archive = make_archive(old_secrets)
    fresh_dir = tmp_path / "fresh"
    fresh = secrets.ensure(settings_module.load({}), fresh_dir)
    stack = FakeStack("class2", {}, has_accounts=True)
    with pytest.raises(BackupError, match="already holds the hub's accounts.*docker compose down -v"):
        restore(stack, io.BytesIO(archive), fresh_dir)
    assert secrets.read(fresh_dir) == fresh and stack.commands == [] and stack.docker.volumes_content == {}


def test_an_existing_student_volume_is_refused(old_secrets, tmp_path):
    archive = make_archive(old_secrets)
    fresh_dir = tmp_path / "fresh"
    secrets.ensure(settings_module.load({}), fresh_dir)
    stack = FakeStack("class1", {"class1-user-alice": {}})
    with pytest.raises(BackupError, match="docker volume rm class1-user-alice"):
        restore(stack, io.BytesIO(archive), fresh_dir)
    assert stack.commands == []


def test_what_is_not_a_backup_is_one_line(tmp_path):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        archive.addfile(tarfile.TarInfo("something-else"))
    with pytest.raises(BackupError, match="not an aihub backup"):
        restore(FakeStack("class1", {}), io.BytesIO(buffer.getvalue()), tmp_path)


def test_archives_are_not_written_to_or_read_from_a_terminal(capsys, monkeypatch):
    monkeypatch.setattr(backup, "Stack", lambda settings: None)
    monkeypatch.setattr("sys.stdout", SimpleNamespace(isatty=lambda: True))
    assert backup.main(["create"]) == 2
    monkeypatch.setattr("sys.stdin", SimpleNamespace(isatty=lambda: True))
    assert backup.main(["restore"]) == 2
    errors = capsys.readouterr().err
    assert "create > class.tar" in errors and "restore < class.tar" in errors
