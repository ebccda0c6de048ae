"""The HTTP service: the app factory and its blueprints. gunicorn runs ``search_rerank.serving:create_app()``."""

from .app import create_app

__all__ = ["create_app"]
