"""A panic of a Rust engine (tantivy, through pyo3) answered as any other failure of one request.

Why: pyo3 raises a Rust panic as ``pyo3_runtime.PanicException``, a ``BaseException``, which Flask's error
handlers (they catch ``Exception``) let through: the server dropped the connection with no answer, no access line
and no count (a phrase query of one word, which tantivy refuses by panicking, did it). A query the engine cannot
run is that request's failure, so it becomes :class:`EnginePanic` and is answered, logged and counted as any
unexpected error is (a 500 naming only the request id; Elasticsearch's error shape on its routes).
"""

from __future__ import annotations

from typing import Any

from flask import Flask


class EnginePanic(RuntimeError):
    """A Rust engine's panic, raised again as an ordinary error (the panic is its ``__cause__``)."""


def is_panic(exc: BaseException) -> bool:
    return type(exc).__name__ == "PanicException" and type(exc).__module__ == "pyo3_runtime"


class PanicsAnswered(Flask):
    """The service's Flask: a panic while a view runs is raised again as :class:`EnginePanic`."""

    def dispatch_request(self) -> Any:
        try:
            return super().dispatch_request()
        except BaseException as exc:
            if is_panic(exc):
                raise EnginePanic(f"{type(exc).__name__}: {exc}") from exc
            raise
