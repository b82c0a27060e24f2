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

This package is also an IPython extension (it loads jupyter_ai_magics itself): a
ProviderError then prints its one line to stderr instead of a 60-line traceback.
Other exceptions still go to the handler that was there before (jupyter_ai_magics
stores them for `%ai error`). Importing this package is cheap: the providers (and
LangChain) load only when jupyter-ai asks for them. The user image loads
`aihub_providers.lazy_magics` instead, which loads both on the first `%ai`/`%%ai`.
"""

from __future__ import annotations

import sys

from .errors import ProviderError

__all__ = [
    "ProviderError",
    "load_ipython_extension",
    "show_provider_errors",
    "unload_ipython_extension",
]

_PREVIOUS = "_aihub_providers_previous_custom_exc"
_INSTALLED = "_aihub_providers_custom_exc"


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
    """Load jupyter_ai_magics; show a ProviderError as its one line."""
    # The magics install their own handler for every exception; load them first so
    # ours wraps theirs whatever order the extensions are listed in.
    ip.extension_manager.load_extension("jupyter_ai_magics")
    show_provider_errors(ip)


def show_provider_errors(ip) -> None:
    """Wrap the shell's exception handler: a ProviderError is one line, the rest is
    handed on. Again only if another handler replaced ours since (jupyter_ai_magics
    installs its own whenever its extension function runs)."""
    if getattr(ip, _INSTALLED, None) is not None and ip.CustomTB is getattr(ip, _INSTALLED):
        return
    setattr(ip, _PREVIOUS, (tuple(ip.custom_exceptions), ip.CustomTB))
    ip.set_custom_exc((ProviderError, *ip.custom_exceptions), _show_provider_error)
    setattr(ip, _INSTALLED, ip.CustomTB)


def unload_ipython_extension(ip) -> None:
    previous = getattr(ip, _PREVIOUS, None)
    if previous is None:
        return
    delattr(ip, _PREVIOUS)
    delattr(ip, _INSTALLED)
    types, handler = previous
    if handler is not None and types:
        ip.custom_exceptions = types
        ip.CustomTB = handler
    else:
        ip.set_custom_exc((), None)
