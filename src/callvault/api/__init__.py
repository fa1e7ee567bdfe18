"""HTTP API: thin routers over the domain packages."""

from callvault.api.app import create_app, create_fastapi

__all__ = ["create_app", "create_fastapi"]
