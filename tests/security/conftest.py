"""Attacks on the service, as an attacker would send them (see rawhttp.py).

``make_cluster_app`` (the app on a fresh osmem-server index holding the small
cluster catalog) is the service tests' fixture, shared here rather than copied.
"""

from service.conftest import make_cluster_app  # noqa: F401
