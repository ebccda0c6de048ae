"""Signed shopper ids: a browser may carry the shopper's id, but only the shop's server can make one.

A search that names a shopper is ranked by their profile (and, with ``explain``, shows their affinities); an
event that names one changes it. A front end built on Search UI or Searchkit sends its requests from the
browser, where the shopper's id is whatever the page's script says: without a check, anyone can be ranked as,
read the taste of, or steer the profile of any shopper whose id they can guess (shop ids are often counters).

With ``SEARCH_RERANK_IDENTITY_KEY`` set (a secret the shop's server shares with this service), a ``user_id``
must come signed: ``<id>.<signature>``, the signature the lowercase hex HMAC-SHA256 of the id under the key,
which the shop's server writes into the page when the shopper signs in (one line in any language:
``hash_hmac('sha256', $id, $key)`` in PHP, ``hmac.new(key, id, 'sha256').hexdigest()`` in Python,
``createHmac('sha256', key).update(id).digest('hex')`` in Node). It is Algolia's secured API key and Elastic
App Search's signed search key, narrowed to the one thing the browser must not choose. The id without its
signature is what is stored and logged, so profiles, logs and ``profiles build`` do not depend on the key.

Session ids are not signed: the UBI JavaScript client makes them in the browser, and a search reads no
session owned by another shopper (see core.profile_store), so a session id names only an anonymous visit.

The variable may hold several keys, separated by commas: an id signed with any of them is taken, and the
first is the one ``search-rerank profiles sign`` uses, so a key is changed by adding the new one first and
removing the old once the pages signed with it are gone.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence

IDENTITY_KEY_VARIABLE = "SEARCH_RERANK_IDENTITY_KEY"
IDENTITY_KEYS = "identity_keys"
"""Where the keys are in the app's config and in the validation context of the models that take a ``user_id``."""
MIN_KEY_CHARS = 32
"""The shortest key taken: a signature is only as hard to forge as its key is to guess (``openssl rand -hex 32``
makes 64 characters)."""
SIGNATURE = re.compile(r"[0-9a-f]{64}")
"""A hex SHA-256 HMAC, as every language's HMAC library writes one by default (lowercase)."""
UNSIGNED = "must be signed: the id, a dot and the id's HMAC-SHA256 in hex under the identity key"


class UnsignedId(ValueError):
    """A ``user_id`` without a valid signature while the service requires one; the message says what is
    expected, never the key or the signature that would have matched."""


def identity_keys(environ: Mapping[str, str]) -> tuple[str, ...]:
    """The keys in ``SEARCH_RERANK_IDENTITY_KEY``, first the one to sign with; none when it is unset or blank.
    Raises ValueError for a key shorter than :data:`MIN_KEY_CHARS`: a service that would take forgeable
    signatures must not start.

    Whitespace around a key is no part of it: a secret mounted from a file ends in a newline."""
    keys = tuple(key.strip() for key in environ.get(IDENTITY_KEY_VARIABLE, "").split(",") if key.strip())
    short = [n for n, key in enumerate(keys, 1) if len(key) < MIN_KEY_CHARS]
    if short:
        raise ValueError(
            f"{IDENTITY_KEY_VARIABLE}: key {short[0]} has fewer than {MIN_KEY_CHARS} characters, which can be guessed; "
            "make one with `openssl rand -hex 32`"
        )
    return keys


def signature(key: str, user_id: str) -> str:
    return hmac.new(key.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def signed(key: str, user_id: str) -> str:
    """``user_id`` as the shop's server writes it for the browser."""
    return f"{user_id}.{signature(key, user_id)}"


def carries_signature(value: str) -> bool:
    """Whether ``value`` is written as a signed id, ``<id>.<64 hex>``, whether or not the signature is right."""
    user_id, dot, sent = value.rpartition(".")
    return bool(dot and user_id) and SIGNATURE.fullmatch(sent) is not None


def verified(value: str, keys: Sequence[str]) -> str:
    """The id ``value`` carries when its signature is one of ``keys``' (compared in constant time); ``value``
    itself when no key is set. Raises :class:`UnsignedId` otherwise."""
    if not keys:
        return value
    if not carries_signature(value):
        raise UnsignedId(UNSIGNED)
    user_id, _, sent = value.rpartition(".")
    # Every key is tried, so that the time taken does not say which one matched.
    matches = [hmac.compare_digest(sent, signature(key, user_id)) for key in keys]
    if not any(matches):
        raise UnsignedId(UNSIGNED)
    return user_id


def named_for_forgetting(value: str, keys: Sequence[str]) -> str:
    """The stored id a forget (``DELETE /profiles/{user_id}``, ``profiles forget``) names: the id as front ends
    send it, signed, is the shopper it verifies to, whose profiles are stored unsigned; one whose signature does
    not verify names no one (:class:`UnsignedId`): taken as sent, it would forget nobody and log a forget of an id
    no event can carry. An unsigned id is the stored id an admin names."""
    return verified(value, keys) if keys and carries_signature(value) else value
