"""The hub side of the AI classroom bundle: settings, secrets and wiring for jupyterhub_config.py."""

__version__ = "0.1.0"
