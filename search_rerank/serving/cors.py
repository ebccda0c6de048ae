"""Cross-origin requests: a shop's page on another origin calling the service, as Elasticsearch's ``http.cors.*``
settings let a Search UI or Searchkit page call a cluster directly.

Flask-CORS does the protocol (preflights on Flask's automatic ``OPTIONS`` answers, ``Vary: Origin``, the
headers on error answers too); this module decides what it is given. The origins are compiled here rather
than left to its guess of which strings are regular expressions: it takes a string with ``[`` for one, so an
IPv6 origin (``http://[::1]:8080``) would become a pattern, and its patterns match a prefix, so
``https://shop\\.example`` would also let in ``https://shop.example.evil.test``. Here a named origin must be the
request's whole origin, and a ``/regular expression/`` the whole of it too, as Elasticsearch matches one.
"""

from __future__ import annotations

import re

from flask import Flask, Response
from flask_cors import CORS

from ..core.settings import ServiceSettings
from .context import CLIENT_ID_HEADER, QUERY_ID_HEADER, SESSION_ID_HEADER
from .interleave import INTERLEAVE_HEADER
from .profiles_api import SESSION_HEADER, USER_HEADER

METHODS = ["GET", "HEAD", "POST"]
"""What a page may call: searches, counts and events. Nothing a browser needs changes the cluster, and the
passthrough refuses writes anyway."""
ALLOWED_HEADERS = [
    # What Elasticsearch allows by default (http.cors.allow-headers), so its clients' requests pass as they do there.
    "X-Requested-With",
    "Content-Type",
    "Content-Length",
    "Authorization",
    "Accept",
    "X-Elastic-Client-Meta",
    # The service's own: the shopper and session (see profiles_api), UBI ids, interleaving, tracing.
    USER_HEADER,
    SESSION_HEADER,
    CLIENT_ID_HEADER,
    SESSION_ID_HEADER,
    INTERLEAVE_HEADER,
    "X-Request-Id",
    "X-Opaque-Id",
    "traceparent",
    "tracestate",
]
EXPOSED_HEADERS = [QUERY_ID_HEADER, "X-Request-Id", "Retry-After", "X-Elastic-Product", "Warning"]
"""Answer headers a page's script may read: the query id its UBI events must carry above all (a browser hides
every header but a few from a cross-origin script unless named here)."""
ORIGINS = "cors_origins"
"""Where the app keeps the compiled origins and whether credentials are allowed, for :func:`refusal_headers`."""


def origin_pattern(origin: str) -> re.Pattern[str]:
    """What a configured origin lets in (see ServiceSettings.cors_allow_origins), matched against the whole
    ``Origin`` header: a named origin in any case (a scheme and a host are), a regular expression as written."""
    if origin == "*":
        return re.compile(r".*")
    if len(origin) > 2 and origin.startswith("/") and origin.endswith("/"):
        return re.compile(rf"(?:{origin[1:-1]})\Z")
    return re.compile(rf"{re.escape(origin)}\Z", re.IGNORECASE)


def allow_cross_origin(app: Flask, service: ServiceSettings) -> None:
    """Answer the configured origins' requests with CORS headers; nothing at all when none is configured."""
    if not service.cors_allow_origins:
        return
    origins = [origin_pattern(origin) for origin in service.cors_allow_origins]
    app.extensions[ORIGINS] = (origins, service.cors_allow_credentials)
    CORS(
        app,
        origins=origins,
        methods=METHODS,
        allow_headers=ALLOWED_HEADERS,
        expose_headers=EXPOSED_HEADERS,
        supports_credentials=service.cors_allow_credentials,
        max_age=service.cors_max_age_s,
        always_send=False,  # no Origin, no CORS: a same-origin or server-side caller gets no headers it has no use for
    )

    @app.after_request
    def varies_by_origin(response: Response) -> Response:
        """``Vary: Origin`` on every answer, whatever the origin, as refusal_headers sends it: the same URL's answer
        to an allowed origin carries CORS headers, and a shared cache keying it without the origin would serve a
        page of the shop the answer it cannot read (Flask-CORS adds it only to the answers it gives headers)."""
        response.vary.add("Origin")
        return response


def refusal_headers(app: Flask, origin: str | None) -> dict[str, str]:
    """The CORS headers of an answer given before the app runs (asgi_bridge's 503 to a request shed from a full
    queue, its 413), so that a page of an allowed origin can read it (and its ``Retry-After``) instead of
    seeing a network error; none for another origin, or when CORS is off."""
    allowed = app.extensions.get(ORIGINS)
    if allowed is None or not origin:
        return {"Vary": "Origin"} if allowed is not None else {}
    origins, credentials = allowed
    if not any(pattern.match(origin) for pattern in origins):
        return {"Vary": "Origin"}
    headers = {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Expose-Headers": ", ".join(EXPOSED_HEADERS),
        "Vary": "Origin",
    }
    return headers | ({"Access-Control-Allow-Credentials": "true"} if credentials else {})
