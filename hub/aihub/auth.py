"""Accounts: NativeAuthenticator (sign-up, admin approval) with the admin made up front.

Stock NativeAuthenticator lets whoever signs up first under an admin's name become that
admin. Here the admin's account is created when the hub starts, with the initial
password from the secrets volume, so the admin name can never be claimed by sign-up.

A name an admin added in the admin panel (or through the hub's API) is a hub user with
no sign-up yet: its sign-up is approved at once, since an admin already chose it.
"""

import bcrypt
import nativeauthenticator
from jupyterhub import orm
from nativeauthenticator import NativeAuthenticator
from nativeauthenticator.handlers import SignUpHandler
from nativeauthenticator.orm import UserInfo
from traitlets import Unicode

# Names of the class rehearsal's throwaway accounts (aihub.rehearse): nobody can sign
# up or log in with one, so a rehearsal can never touch a real student's account.
RESERVED_PREFIX = "rehearsal-"
# ...and, while they exist, members of this group: what a later rehearsal cleans up.
REHEARSAL_GROUP = "aihub-rehearsal"
# The hub's pages: NativeAuthenticator's (sign-up, authorize, and its navbar links) over
# JupyterHub's own. The AI gateway's admin page renders with the same ones.
TEMPLATE_PATHS = (f"{nativeauthenticator.__path__[0]}/templates/",)


class BundleAuthenticator(NativeAuthenticator):
    initial_admin_password = Unicode(
        "", config=True, help="Password given to an admin account that has none yet."
    )

    def create_user(self, username, password, **kwargs):
        # Sign-up. The rehearsal makes its accounts through the API, with no password:
        # those can never log in either.
        name = self.normalize_username(username)
        if name.startswith(RESERVED_PREFIX):
            return None
        if self.added_by_admin(name):
            kwargs["is_authorized"] = True
        return super().create_user(username, password, **kwargs)

    def added_by_admin(self, name: str) -> bool:
        """An account the hub has but nobody signed up for: an admin added it. (A sign-up
        gets its hub account only at its first login, and only once approved.)"""
        return orm.User.find(self.db, name) is not None and not self.user_exists(name)

    def get_handlers(self, app):
        return [(path, ApprovedSignUpHandler if handler is SignUpHandler else handler)
                for path, handler in super().get_handlers(app)]

    def add_user(self, user):
        # Called for every user at hub start, so this runs before anyone can sign up.
        if user.name in self.admin_users and self.initial_admin_password and not self.user_exists(user.name):
            hashed = bcrypt.hashpw(self.initial_admin_password.encode(), bcrypt.gensalt())
            self.db.add(UserInfo(username=user.name, password=hashed, is_authorized=True))
            self.db.commit()
            self.log.info("Created admin account %s with the initial password", user.name)
        return super().add_user(user)


class ApprovedSignUpHandler(SignUpHandler):
    """The sign-up page telling a student whose sign-up was approved at once (an admin
    added the name) to log in, as it tells an admin, not that it went to the admin."""

    def get_result_message(self, user, assume_user_is_human, username_already_taken, confirmation_matches,
                           user_is_admin):
        approved = user_is_admin or (user is not None and user.is_authorized)
        return super().get_result_message(user, assume_user_is_human, username_already_taken,
                                          confirmation_matches, approved)


def landing_page(handler) -> str:
    """Where people land after logging in (JupyterHub.default_url): an admin on the
    hub's home page, so their own server starts only when they ask for it; a student
    at their server ("" is JupyterHub's default), which starts it."""
    user = handler.current_user
    return "/hub/home" if user is not None and user.admin else ""
