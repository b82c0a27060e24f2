"""jupyter-ai's server extension (the chat panel's /api/ai/*), loaded on its first request.

Importing and initialising jupyter_ai at server start (LangChain, Dask, every
provider) doubles the CPU a student's server needs to start and adds about
90 MiB; with 30 servers starting on two cores, that is what makes spawns slow. This
server extension starts nothing: it routes /api/ai/* to a router that, on the first
such request (JupyterLab's chat panel makes one when it loads), adds and loads
jupyter-ai's extension (as aihub_providers.jupyter_ai_app, whose Dask client starts)
through the server's extension manager, as if it had been enabled at start, and then lets the request go on to jupyter_ai's own handlers.
Its configuration (`c.AiExtension.*`) is read from the server's config then, and
jupyter_ai is stopped with the server like any extension.

Enable it instead of jupyter_ai (jupyter_server_config.py):

    c.ServerApp.jpserver_extensions = {"jupyter_ai": False, "aihub_providers.lazy_server": True}

The first request waits for the load (about 1.5 s of CPU); later ones do not.
"""

from __future__ import annotations

from jupyter_server.extension.application import ExtensionApp
from jupyter_server.utils import url_path_join
from tornado.routing import Router

# jupyter-ai's extension with a Dask client that starts (see jupyter_ai_app).
JUPYTER_AI = "aihub_providers.jupyter_ai_app"
# Every route jupyter_ai serves (its API and Jupyternaut's avatar) is under this path.
JUPYTER_AI_ROUTES = "api/ai/.*"


class LoadOnFirstRequest(Router):
    """Calls `load` on the first request it sees, then routes nothing itself: the
    request goes on to the next rules, where the loaded extension added its handlers."""

    # It answers no request itself (jupyter_server checks that every method of every
    # handler it is given requires authentication; jupyter_ai's handlers do).
    SUPPORTED_METHODS = ()

    def __init__(self, load):
        self._load = load
        self._loaded = False

    def find_handler(self, request, **kwargs):
        if not self._loaded:
            self._loaded = True
            self._load()
        return None


class LazyJupyterAi(ExtensionApp):
    name = "lazy_jupyter_ai"

    def initialize_handlers(self) -> None:
        web_app = self.serverapp.web_app
        pattern = url_path_join(web_app.settings["base_url"], JUPYTER_AI_ROUTES)
        web_app.add_handlers(".*$", [(pattern, LoadOnFirstRequest(self.load_jupyter_ai))])

    def load_jupyter_ai(self) -> None:
        """Add, link and load jupyter_ai as the server does with an enabled extension
        at start; a failure is logged by the manager, and /api/ai/* then answers 404."""
        manager = self.serverapp.extension_manager
        self.log.info("Loading %s on its first request", JUPYTER_AI)
        if not manager.add_extension(JUPYTER_AI, enabled=True):
            return
        manager.link_extension(JUPYTER_AI)
        manager.load_extension(JUPYTER_AI)
        self.serverapp.io_loop.add_callback(manager.start_extension, JUPYTER_AI)


def _jupyter_server_extension_points():
    return [{"module": "aihub_providers.lazy_server", "app": LazyJupyterAi}]
