"""Accounts: NativeAuthenticator (sign-up, admin approval) with the admin made up front.

Stock NativeAuthenticator lets whoever signs up first under an admin's name become that
admin. Here the admin's account is created when the hub starts, with the initial
password from the secrets volume, so the admin name can never be claimed by sign-up.
"""

import bcrypt
import nativeauthenticator
from nativeauthenticator import NativeAuthenticator
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
        if self.normalize_username(username).startswith(RESERVED_PREFIX):
            return None
        return super().create_user(username, password, **kwargs)

    def add_user(self, user):
        # Called for every user at hub start, so this runs before anyone can sign up.
        if user.name in self.admin_users and self.initial_admin_password and not self.user_exists(user.name):
            hashed = bcrypt.hashpw(self.initial_admin_password.encode(), bcrypt.gensalt())
            self.db.add(UserInfo(username=user.name, password=hashed, is_authorized=True))
            self.db.commit()
            self.log.info("Created admin account %s with the initial password", user.name)
        return super().add_user(user)


def landing_page(handler) -> str:
    """Where people land after logging in (JupyterHub.default_url): an admin on the
    hub's home page, so their own server starts only when they ask for it; a student
    at their server ("" is JupyterHub's default), which starts it."""
    user = handler.current_user
    return "/hub/home" if user is not None and user.admin else ""
