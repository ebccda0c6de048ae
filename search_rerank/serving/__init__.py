"""The HTTP service: the app factory and its blueprints. gunicorn runs ``create_app()`` through ``asgi_bridge``."""

from .app import create_app

__all__ = ["create_app"]
