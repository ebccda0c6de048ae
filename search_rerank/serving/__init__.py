"""The HTTP service: the app factory and its blueprints. gunicorn runs ``search_rerank.serving:create_app()``.

``create_app`` is imported on first use (PEP 562), not with the package: gunicorn's
master imports this package's small modules through its config (logs, reload
broadcast) and must not load the app, its models and its Prometheus metrics,
which would open their files before the master has prepared their directory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
