"""Shopper profiles: what a shopper's behaviour says about their taste, decayed over time.

A profile holds, per facet (category, brand, colour, material, style, size,
price band), the decayed weight of each value among the products the shopper
interacted with, and the decayed mean of those products' bi-encoder vectors.
Every event multiplies what is already there by ``0.5 ** (elapsed /
half_life)`` before adding its own weight, so a profile needs no batch job to
age: the same :func:`apply_event` serves the online update and the offline
rebuild from UBI logs, and replaying a log gives the profile the online path
built. One profile type serves both kinds of profile: a session's (short
half-life) and a shopper's long-term one (long half-life); :func:`mix` blends
them for a search.

Profiles are bounded: each facet keeps its ``max_values_per_facet`` strongest
values, so a shopper who browses the whole catalogue costs no more than one
who buys a single brand.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .product import Product
from .settings import PersonalisationSettings

ATTRIBUTE_FACETS = ("color", "material", "style", "size")
"""Facets read from ``Product.attributes`` (the generator and the loaders write ``color``, not ``colour``)."""
_COLOUR_SPELLINGS = ("color", "colour")


VECTOR_FIELD = "vector_f32"
"""The record's key for the profile's vector: its little-endian float32 bytes in base64, 4 characters a dimension
(2 KB for 384) where a list of floats took about 21 (8 KB), in every profile with the dense leg on. Records
written before it hold ``vector``, a list, which is still read; a version before it reads a record written now
as one without a vector (its next event starts the mean again), never as an error."""


def encode_vector(vector: np.ndarray) -> str:
    """``vector`` as :data:`VECTOR_FIELD` keeps it: float32, little-endian, base64 (exact: no digits rounded)."""
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")


def decode_vector(packed: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(packed), dtype="<f4").astype(np.float32)


@dataclass
class ShopperProfile:
    """A session's or a shopper's taste.

    ``affinities``: facet -> value -> decayed weight (as of ``updated_at``).
    ``vector``: the decayed weighted mean of the vectors of products
    interacted with (``vector_mass`` is that mean's decayed weight, so the
    next event moves it by its share). ``events``: the decayed count of events
    with a positive action weight; a shopper with fewer than ``min_events`` is
    cold. ``user_id``: whose profile this is (a session's owner too), so that
    forgetting a shopper removes their sessions as well. ``signed_out``: for a
    session its owner signed out of and that went on without them, that owner,
    whom it is forgotten with (a rebuild from the logs counts such events as
    theirs: ``clicks.without_forgotten``). Times are seconds since the epoch.
    """

    key: str
    affinities: dict[str, dict[str, float]] = field(default_factory=dict)
    vector: np.ndarray | None = None
    events: float = 0.0
    updated_at: float = 0.0
    vector_mass: float = 0.0
    user_id: str | None = None
    signed_out: str | None = None

    @property
    def owner(self) -> str | None:
        """The shopper whose forget removes this profile."""
        return self.holder.owner

    @property
    def holder(self) -> SessionHolder:
        return SessionHolder(self.user_id, self.signed_out)

    def to_record(self) -> dict[str, Any]:
        """A JSON-ready dict (what the stores keep); the vector as :data:`VECTOR_FIELD`, its float32 bytes."""
        return {
            "key": self.key,
            "affinities": self.affinities,
            **({} if self.vector is None else {VECTOR_FIELD: encode_vector(self.vector)}),
            "events": self.events,
            "updated_at": self.updated_at,
            "vector_mass": self.vector_mass,
            "user_id": self.user_id,
            **({"signed_out": self.signed_out} if self.signed_out else {}),
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> ShopperProfile:
        """The profile :meth:`to_record` wrote, or one written before the vector was packed (a list of floats)."""
        packed, listed = record.get(VECTOR_FIELD), record.get("vector")
        if packed is not None:
            vector: np.ndarray | None = decode_vector(packed)
        else:
            vector = None if listed is None else np.asarray(listed, dtype=np.float32)
        return cls(
            key=str(record["key"]),
            affinities={f: {str(v): float(w) for v, w in vals.items()} for f, vals in record["affinities"].items()},
            vector=vector,
            events=float(record["events"]),
            updated_at=float(record["updated_at"]),
            vector_mass=float(record.get("vector_mass", 0.0)),
            user_id=record.get("user_id"),
            signed_out=record.get("signed_out"),
        )


SAFE_ID_PATTERN = r"^[A-Za-z0-9._:|-]{1,128}$"
"""What a shopper's or session's id (and a UBI client id) may be: it keys profiles that a search, an event and
a forget must all name alike, and ends up in log files and response headers. ``|`` is in identity providers'
ids, which are what a shop's front end knows its shopper by (Auth0's ``auth0|5f7c...``, ``google-oauth2|1049...``);
an e-mail address is not an id (it would put the shopper's address in every log)."""
_SAFE_ID = re.compile(SAFE_ID_PATTERN)


FORGET_ACTION = "forget_shopper"
"""The UBI record a forget writes (``user_id``, ``timestamp`` and :data:`RECEIVED_AT`): a profile rebuild from the
logs (``search-rerank profiles build``) replays none of that shopper's events received up to then, so a forgotten
shopper does not come back from logs written before the forget. Reserved: ``POST /ubi/events`` refuses it."""


RECEIVED_AT = "received_at"
"""The key of the time the service wrote an event to the log, beside the event's own ``timestamp``: what a forget
is ordered against (see :func:`~search_rerank.data.clicks.without_forgotten`). A front end's clock may be hours
off (``timestamp`` is accepted up to a day ahead) and a queued event may arrive late; only the order in which
the service took events and forgets matches what the profiles it served went through. A value a front end sends
is replaced."""


def safe_id(value: str | None) -> str | None:
    """A caller-supplied shopper, session or client id if it looks like one (:data:`SAFE_ID_PATTERN`), else None."""
    return value if value and _SAFE_ID.fullmatch(value) else None  # match's $ would take "abc\n"


def user_key(user_id: str) -> str:
    """The store key of a shopper's long-term profile."""
    return f"user:{user_id}"


def session_key(session_id: str) -> str:
    """The store key of a session's profile."""
    return f"session:{session_id}"


def price_band(price: float | None) -> str | None:
    """The product's price band: one per doubling of price ("64-128"), or None without a price.

    Log-scale bands rather than catalogue quantiles because a band must mean
    the same thing when the event is applied and months later when the profile
    is read: quantiles move with every catalogue change and would silently
    re-label what a stored profile says, while a doubling of price is how
    shoppers perceive price tiers (a 10-unit difference matters on a cushion,
    not on a sofa).
    """
    if price is None or price <= 0:
        return None
    low = 2 ** math.floor(math.log2(price))
    return f"{low:g}-{2 * low:g}"


def facet_values(product: Product) -> dict[str, tuple[str, ...]]:
    """The product's value(s) in each profile facet it has (lower-cased, so spelling case never splits a taste)."""
    values: dict[str, tuple[str, ...]] = {}
    if product.category:
        values["category"] = (" > ".join(product.category).lower(),)
    if product.brand:
        values["brand"] = (product.brand.lower(),)
    for facet in ATTRIBUTE_FACETS:
        names = _COLOUR_SPELLINGS if facet == "color" else (facet,)
        found = next((product.attributes[n] for n in names if product.attributes.get(n)), ())
        if found:
            values[facet] = tuple(v.lower() for v in found)
    band = price_band(product.price)
    if band is not None:
        values["price_band"] = (band,)
    return values


def decay_factor(elapsed_s: float, half_life_s: float) -> float:
    """How much of a weight is left after ``elapsed_s`` (1 for no time or time running backwards)."""
    return 0.5 ** (max(elapsed_s, 0.0) / half_life_s)


def decayed(profile: ShopperProfile, at: float, half_life_s: float) -> ShopperProfile:
    """The profile as of ``at``: every weight and the event count aged; a new object, ``profile`` unchanged."""
    factor = decay_factor(at - profile.updated_at, half_life_s)
    return ShopperProfile(
        key=profile.key,
        affinities={f: {v: w * factor for v, w in vals.items()} for f, vals in profile.affinities.items()},
        vector=None if profile.vector is None else profile.vector.copy(),
        events=profile.events * factor,
        updated_at=max(at, profile.updated_at),
        vector_mass=profile.vector_mass * factor,
        user_id=profile.user_id,
        signed_out=profile.signed_out,
    )


@dataclass(frozen=True)
class SessionHolder:
    """Whose a session is: the shopper signed in on it (``user_id``) and, for one gone on without them after a
    sign-out, that shopper (``signed_out``). What :func:`apply_event` follows to start a session again, a search to
    read it or not, and a rebuild from the logs to forget the sessions a shopper owned
    (:func:`~search_rerank.data.clicks.without_forgotten`)."""

    user_id: str | None = None
    signed_out: str | None = None

    @property
    def owner(self) -> str | None:
        """The shopper whose forget removes the session."""
        return self.user_id or self.signed_out

    def starts_again_for(self, actor: str | None) -> bool:
        """Whether an event of ``actor`` (None: nobody signed in) starts the session again: a session's taste is
        its owner's, to forget with them and to show no one else. So it does for another shopper's event, for
        nobody's after a sign-out (a shared device), and for its owner's back after it went on without them:
        what was done meanwhile is nobody's to count as theirs, a session id being no secret (anyone who knows it
        could have written it, and would steer the shopper's ranking)."""
        if self.user_id is not None:
            return actor != self.user_id
        return self.signed_out is not None and actor is not None

    def after(self, actor: str | None) -> SessionHolder:
        """Whose the session is after an event of ``actor``."""
        if self.starts_again_for(actor):
            return SessionHolder(actor, self.user_id if actor is None else None)
        return SessionHolder(actor or self.user_id, self.signed_out)

    def read_by(self, user_id: str | None) -> bool:
        """Whether a search of ``user_id`` (None: anonymous) is ranked by the session: one signed in as them; one
        nobody is signed in on, for an anonymous search; for a signed-in one, only one nobody ever signed in on
        (their browsing before they signed in), not one gone on without its owner after a sign-out, which whoever
        knows the session id could have written."""
        if self.user_id is not None:
            return self.user_id == user_id
        return user_id is None or self.signed_out is None


def apply_event(
    profile: ShopperProfile | None,
    key: str,
    product: Product,
    action: str,
    at: float,
    vector: np.ndarray | None,
    settings: PersonalisationSettings,
    *,
    half_life_s: float | None = None,
    user_id: str | None = None,
) -> ShopperProfile:
    """The profile after the shopper did ``action`` on ``product`` at ``at``: a new object, ``profile`` unchanged.

    ``half_life_s`` defaults to the long-term ``settings.half_life_s``; pass
    ``settings.session_half_life_s`` for a session profile. An action with no
    weight (an impression by default, any action not in
    ``settings.action_weights``) only ages the profile. A profile past its TTL,
    or a session owned by another shopper than ``user_id``, starts again from
    nothing.
    """
    half_life = settings.half_life_s if half_life_s is None else half_life_s
    someone_else = profile is not None and profile.holder.starts_again_for(user_id)
    if profile is None or someone_else or at - profile.updated_at > settings.ttl_s:
        # Started again for someone else, it is still its owner's to forget after a sign-out (SessionHolder.after).
        holder = profile.holder.after(user_id) if profile is not None and someone_else else SessionHolder(user_id)
        current = ShopperProfile(key=key, updated_at=at, user_id=holder.user_id, signed_out=holder.signed_out)
    else:
        current = decayed(profile, at, half_life)
        current.key = key
        if user_id is not None:
            current.user_id = user_id
    weight = settings.action_weights.get(action, 0.0)
    if weight <= 0:
        return current
    # An event from before the profile's time (a front end's clock, a queued event) adds what would be left of it
    # had it come in order: so the profile does not depend on the order events arrive in, and is the one that
    # ``profiles build``, which replays them in time order, makes.
    late = decay_factor(current.updated_at - at, half_life)
    weight *= late
    current.events += late
    for facet, values in facet_values(product).items():
        kept = current.affinities.setdefault(facet, {})
        for value in values:
            kept[value] = kept.get(value, 0.0) + weight / len(values)
        if len(kept) > settings.max_values_per_facet:
            strongest = sorted(kept.items(), key=lambda kv: (-kv[1], kv[0]))[: settings.max_values_per_facet]
            current.affinities[facet] = dict(strongest)
    if vector is not None:
        v = np.asarray(vector, dtype=np.float32)
        if current.vector is None or current.vector.shape != v.shape or current.vector_mass <= 0:
            current.vector, current.vector_mass = v.copy(), weight
        else:
            mass = current.vector_mass + weight
            current.vector = (current.vector * (current.vector_mass / mass) + v * (weight / mass)).astype(np.float32)
            current.vector_mass = mass
    return current


def shares(affinities: Mapping[str, float]) -> dict[str, float]:
    """Each value's share of a facet's total weight (0..1, summing to 1): how concentrated the taste is."""
    total = sum(affinities.values())
    return {v: w / total for v, w in affinities.items()} if total > 0 else {}


def mix(
    session: ShopperProfile | None,
    shopper: ShopperProfile | None,
    settings: PersonalisationSettings,
    at: float,
) -> ShopperProfile | None:
    """The profile a search uses: the session's and the shopper's long-term profile, aged to ``at``, blended.

    Each facet's shares are blended ``session_weight`` to ``1 - session_weight``
    (shares, not raw weights, so a long history does not drown the session's
    intent); the vectors likewise, each normalised first. The event count is
    the larger of the two, not the sum: a signed-in shopper's session events
    are in their long-term profile too, and counting them twice would call a
    shopper with two clicks warm. With one side
    missing (or past its TTL) the other is used alone (aged); with neither,
    None.
    """
    sides = []
    for profile, half_life, share in (
        (session, settings.session_half_life_s, settings.session_weight),
        (shopper, settings.half_life_s, 1.0 - settings.session_weight),
    ):
        if profile is not None and at - profile.updated_at <= settings.ttl_s:
            sides.append((decayed(profile, at, half_life), share))
    if not sides:
        return None
    if len(sides) == 1:
        return sides[0][0]
    total_share = sum(share for _, share in sides) or 1.0
    affinities: dict[str, dict[str, float]] = {}
    vector: np.ndarray | None = None
    for profile, share in sides:
        for facet, values in profile.affinities.items():
            blended = affinities.setdefault(facet, {})
            for value, s in shares(values).items():
                blended[value] = blended.get(value, 0.0) + s * share / total_share
        if profile.vector is not None:
            norm = float(np.linalg.norm(profile.vector))
            if norm > 0:
                part = profile.vector / norm * (share / total_share)
                vector = part if vector is None or vector.shape != part.shape else vector + part
    first = sides[0][0]
    return ShopperProfile(
        key=first.key,
        affinities=affinities,
        vector=vector,
        events=max(p.events for p, _ in sides),
        updated_at=at,
        vector_mass=sum(p.vector_mass for p, _ in sides),
        user_id=next((p.user_id for p, _ in sides if p.user_id is not None), None),
    )
