"""jupyter-ai's server extension as the classroom runs it: AiExtension with a Dask
client that starts.

jupyter-ai 2.31 makes the Dask client that /learn splits and embeds files with after
setting `distributed.dashboard.link` to False; the pinned `distributed` formats that
setting as a string when its scheduler starts, so the scheduler fails, the client
never comes, and `/learn` waits forever. This subclass makes the same in-process
client (threads, no dashboard) and leaves the setting alone. Everything else, and
every `c.AiExtension.*` setting, is jupyter-ai's. aihub_providers.lazy_server loads
this module in place of `jupyter_ai`.
"""

from __future__ import annotations

from jupyter_ai.extension import AiExtension


class ClassroomAiExtension(AiExtension):
    async def _get_dask_client(self):
        from dask.distributed import Client

        return await Client(processes=False, asynchronous=True, dashboard_address=None)


def _jupyter_server_extension_points():
    return [{"module": __name__, "app": ClassroomAiExtension}]
