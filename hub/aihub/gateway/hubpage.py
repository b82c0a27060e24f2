"""The admin page in the hub's own look: JupyterHub's page template, navbar and styles.

The gateway runs from the hub's image, so it renders with the hub's own templates (the
hub's template paths, aihub.auth.TEMPLATE_PATHS, over JupyterHub's) and links the
hub's static files at /hub/static/..., which browsers reach on the same origin through
the hub's proxy. Those URLs carry the version hashes the hub gives them, so the browser
shares its cached copies with the hub's pages. Nothing comes from anywhere else, so the
page works offline. Jinja escapes every value, as in the hub.
"""

from __future__ import annotations

import json
import os
from types import SimpleNamespace

from jinja2 import ChoiceLoader, DictLoader, Environment, FileSystemLoader, PrefixLoader
from jupyterhub._data import DATA_FILES_PATH
from jupyterhub.handlers.static import CacheControlStaticFilesHandler
from jupyterhub.services.auth import HubAuth

from ..auth import TEMPLATE_PATHS
from .config import SERVICE_NAME, SERVICE_PREFIX

HUB_TEMPLATES = os.path.join(DATA_FILES_PATH, "templates")
HUB_STATIC = os.path.join(DATA_FILES_PATH, "static")


def hub_environment(pages: dict[str, str]) -> Environment:
    """`pages` (name -> template source) over the hub's templates, loaded as the hub does
    (JupyterHub.init_tornado_settings): NativeAuthenticator's page.html extends
    "templates/page.html", JupyterHub's own."""
    loader = ChoiceLoader([
        DictLoader(pages),
        PrefixLoader({"templates": FileSystemLoader([HUB_TEMPLATES])}, "/"),
        FileSystemLoader([*TEMPLATE_PATHS, HUB_TEMPLATES]),
    ])
    return Environment(loader=loader, autoescape=True)


def script_safe_name(name: str) -> str:
    """A name inside a JavaScript string in a <script> block (page.html puts the user's
    there unescaped): JSON, with <, > and & as \\u escapes, so no name can end the block."""
    quoted = json.dumps(name).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return quoted[1:-1]


def hub_namespace(hub_auth: HubAuth, user: dict, xsrf: str) -> dict:
    """What the hub's page.html (and NativeAuthenticator's) expect, for a hub admin."""
    hub_prefix = hub_auth.hub_prefix  # /hub/ under the hub's base URL
    static_settings = {"static_path": HUB_STATIC, "static_url_prefix": hub_prefix + "static/"}

    def static_url(path: str, include_version: bool = True) -> str:
        return CacheControlStaticFilesHandler.make_static_url(static_settings, path, include_version)

    return dict(
        base_url=hub_prefix,
        prefix=hub_prefix[: -len("hub/")],
        static_url=static_url,
        version_hash="",  # the hub's start time, unknown here: require.js then adds no cache-buster
        user=SimpleNamespace(name=user["name"], admin=bool(user.get("admin")),
                             json_escaped_name=script_safe_name(user["name"])),
        no_spawner_check=True,
        # Only hub admins see this page, and the hub gives admins its Admin page's link.
        parsed_scopes={"admin-ui"},
        services=[{"name": SERVICE_NAME, "href": SERVICE_PREFIX}],
        login_url=hub_prefix + "login",
        logout_url=hub_prefix + "logout",
        xsrf_token=xsrf,
        xsrf=xsrf,
    )
