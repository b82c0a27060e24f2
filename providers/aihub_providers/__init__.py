"""aihub-providers: the AI classroom's model vendors for jupyter-ai 2.x.

Students write

    %%ai deepseek:deepseek-chat
    What does a Python decorator do?

in any notebook, or pick the same providers in the chat panel, with nothing to
install. The admin sets each vendor's key (and optionally its base URL) in .env.

Modules:
  vendors     the one table of vendors: ids, names, variables, default URLs, examples
  providers   the jupyter-ai provider classes (entry points `jupyter_ai.model_providers`)
  errors      ProviderError and the one-line messages for every failure
  configured  which provider ids have their settings; `python -m aihub_providers.configured`

This package is also an IPython extension (load it after jupyter_ai_magics, e.g.
`c.InteractiveShellApp.extensions = ["jupyter_ai_magics", "aihub_providers"]`): a
ProviderError then prints its one line to stderr instead of a 60-line traceback.
Other exceptions still go to the handler that was there before (jupyter_ai_magics
stores them for `%ai error`). Importing this package is cheap: the providers (and
LangChain) load only when jupyter-ai asks for them.
"""

from __future__ import annotations

import sys

from .errors import ProviderError

__all__ = ["ProviderError", "load_ipython_extension", "unload_ipython_extension"]

_PREVIOUS = "_aihub_providers_previous_custom_exc"


def _show_provider_error(shell, etype, value, tb, tb_offset=None):
    if isinstance(value, ProviderError):
        print(str(value), file=sys.stderr)
        return []
    previous_types, previous_handler = getattr(shell, _PREVIOUS, ((), None))
    if previous_handler is not None and isinstance(value, previous_types):
        return previous_handler(etype, value, tb, tb_offset=tb_offset)
    shell.showtraceback((etype, value, tb), tb_offset=tb_offset)
    return []


def load_ipython_extension(ip) -> None:
    """Show a ProviderError as its one line; hand every other exception on."""
    # The magics install their own handler for every exception; load them first so
    # ours wraps theirs whatever order the extensions are listed in.
    ip.extension_manager.load_extension("jupyter_ai_magics")
    if getattr(ip, _PREVIOUS, None) is not None:
        return  # already loaded
    setattr(ip, _PREVIOUS, (tuple(ip.custom_exceptions), ip.CustomTB))
    ip.set_custom_exc((ProviderError, *ip.custom_exceptions), _show_provider_error)


def unload_ipython_extension(ip) -> None:
    previous = getattr(ip, _PREVIOUS, None)
    if previous is None:
        return
    delattr(ip, _PREVIOUS)
    types, handler = previous
    if handler is not None and types:
        ip.custom_exceptions = types
        ip.CustomTB = handler
    else:
        ip.set_custom_exc((), None)
