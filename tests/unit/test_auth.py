"""aihub.auth.BundleAuthenticator: the admin's account exists before anyone can sign up."""

import asyncio
from types import SimpleNamespace

import bcrypt
import pytest
from jupyterhub import orm
from nativeauthenticator.handlers import SignUpHandler
from nativeauthenticator.orm import UserInfo
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from aihub.auth import ApprovedSignUpHandler, BundleAuthenticator

INITIAL_PASSWORD = "initial-admin-pass"
ADMIN = SimpleNamespace(name="admin")


@pytest.fixture(autouse=True)
def fast_bcrypt(monkeypatch):
    """The fewest bcrypt rounds: the same hashes and checks, a hundred times faster."""
    gensalt = bcrypt.gensalt
    monkeypatch.setattr(bcrypt, "gensalt", lambda rounds=4, prefix=b"2b": gensalt(4, prefix))


@pytest.fixture
def db():
    """A real SQLAlchemy session on an in-memory database with the hub's tables; the
    authenticator makes its own."""
    engine = create_engine("sqlite://")
    orm.Base.metadata.create_all(engine)
    with Session(engine) as session:
        yield session


@pytest.fixture
def make_authenticator(db):
    def make(initial_admin_password=INITIAL_PASSWORD):
        return BundleAuthenticator(db=db, admin_users={"admin"}, initial_admin_password=initial_admin_password)

    return make


def log_in(authenticator, username, password):
    return asyncio.run(authenticator.authenticate(None, {"username": username, "password": password}))


def test_add_user_creates_the_admin_approved_with_the_initial_password(db, make_authenticator):
    authenticator = make_authenticator()
    authenticator.add_user(ADMIN)
    info = UserInfo.find(db, "admin")
    assert info.is_authorized
    assert bcrypt.checkpw(INITIAL_PASSWORD.encode(), info.password)
    assert log_in(authenticator, "admin", INITIAL_PASSWORD) == "admin"
    assert log_in(authenticator, "admin", "wrong-password") is None


def test_add_user_again_keeps_a_changed_password(db, make_authenticator):
    authenticator = make_authenticator()
    authenticator.add_user(ADMIN)
    assert authenticator.change_password("admin", "changed-by-admin-1")
    stored = UserInfo.find(db, "admin").password
    make_authenticator().add_user(ADMIN)  # the hub restarts
    assert db.query(UserInfo).filter_by(username="admin").count() == 1
    assert UserInfo.find(db, "admin").password == stored
    assert log_in(authenticator, "admin", "changed-by-admin-1") == "admin"


def test_the_admin_name_cannot_be_claimed_by_sign_up(db, make_authenticator):
    authenticator = make_authenticator()
    authenticator.add_user(ADMIN)
    assert authenticator.create_user("admin", "attacker-password-1") is None
    assert log_in(authenticator, "admin", "attacker-password-1") is None


def test_a_student_gets_no_account_from_add_user(db, make_authenticator):
    make_authenticator().add_user(SimpleNamespace(name="alice"))
    assert UserInfo.find(db, "alice") is None


def test_without_an_initial_password_no_account_is_made(db, make_authenticator):
    make_authenticator(initial_admin_password="").add_user(ADMIN)
    assert db.query(UserInfo).count() == 0


def test_nobody_can_sign_up_with_a_rehearsal_name(db, make_authenticator):
    authenticator = make_authenticator()
    authenticator.open_signup = True
    assert authenticator.create_user("Rehearsal-abc-01", "a-long-password-1") is None
    assert UserInfo.find(db, "rehearsal-abc-01") is None
    assert log_in(authenticator, "rehearsal-abc-01", "a-long-password-1") is None
    assert authenticator.create_user("rehearsals-fan", "a-long-password-1") is not None


def add_in_admin_panel(db, name):
    """What the admin panel's "Add Users" (POST /hub/api/users) leaves: a hub user."""
    db.add(orm.User(name=name))
    db.commit()


def test_a_name_an_admin_added_is_approved_at_sign_up(db, make_authenticator):
    authenticator = make_authenticator()
    add_in_admin_panel(db, "li-lei")
    assert authenticator.create_user("li-lei", "a-long-password-1").is_authorized
    assert log_in(authenticator, "li-lei", "a-long-password-1") == "li-lei"


def test_a_name_nobody_added_waits_for_the_admin(db, make_authenticator):
    authenticator = make_authenticator()
    add_in_admin_panel(db, "someone-else")
    assert not authenticator.create_user("bob", "a-long-password-1").is_authorized
    assert log_in(authenticator, "bob", "a-long-password-1") is None


def test_a_name_already_signed_up_cannot_be_signed_up_again(db, make_authenticator):
    authenticator = make_authenticator()
    assert authenticator.create_user("carol", "a-long-password-1") is not None
    add_in_admin_panel(db, "carol")  # e.g. approved, logged in once, then unapproved
    assert authenticator.create_user("carol", "another-password-2") is None
    assert log_in(authenticator, "carol", "another-password-2") is None


def test_the_sign_up_page_tells_an_approved_student_to_log_in(make_authenticator):
    page = ApprovedSignUpHandler.__new__(ApprovedSignUpHandler)  # only its message is asked for
    page.application = SimpleNamespace(settings={"authenticator": SimpleNamespace(open_signup=False)})
    approved, waiting = SimpleNamespace(is_authorized=True), SimpleNamespace(is_authorized=False, login_email_sent=False)
    assert "log in" in page.get_result_message(approved, True, False, True, False)[1]
    assert "sent to the admin" in page.get_result_message(waiting, True, False, True, False)[1]
    handlers = dict(make_authenticator().get_handlers(None))
    assert handlers["/signup"] is ApprovedSignUpHandler and SignUpHandler not in handlers.values()


def test_admins_land_on_the_hub_and_students_at_their_server():
    from aihub.auth import landing_page
    assert landing_page(SimpleNamespace(current_user=SimpleNamespace(admin=True))) == "/hub/home"
    assert landing_page(SimpleNamespace(current_user=SimpleNamespace(admin=False))) == ""
    assert landing_page(SimpleNamespace(current_user=None)) == ""
