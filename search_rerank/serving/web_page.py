"""The comparison page at ``/``, its static assets under ``/web``."""

from __future__ import annotations

from flask import Blueprint, request, send_from_directory

from .es_api import pass_through, passthrough, root_info

web = Blueprint("web", __name__, static_folder="web", static_url_path="/web")
# Scripts and styles from this server only, nothing inline: markup that slipped into a product text still could not run.
PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


@web.get("/")
def page():
    """The comparison page: the BM25, hybrid and final rankings of one search side by side (see web/app.js).

    A client that does not take HTML (an Elasticsearch client's ``GET /`` or ``HEAD /`` ping) gets the
    cluster's answer when requests are passed through, else this service's (see :func:`.es_api.root_info`).
    """
    # By preference: "application/json, text/html;q=0.9" is a client that reads JSON first.
    if request.accept_mimetypes.best_match(["text/html", "application/json"]) != "text/html":
        return pass_through("/") if passthrough() is not None else root_info()
    response = send_from_directory(web.static_folder, "index.html")
    response.headers["Content-Security-Policy"] = PAGE_POLICY
    return response
