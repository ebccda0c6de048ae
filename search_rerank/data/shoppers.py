"""Simulated shoppers with hidden tastes: a UBI log to build profiles from, and per-shopper judgments to score them.

Why simulate: personalisation is only measurable when what each shopper
prefers is known, and no public log says that. Here every shopper has a
hidden taste (a few preferred brands, colours, a style, materials, a price
tier; a share has none), searches the generated queries in sessions, and
clicks, adds to cart and buys through a position-based click model whose
attractiveness is the product's relevance grade boosted by how well it
matches the taste. The shopper's sessions are split over time:

- earlier sessions go to ``ubi.ndjson``, in the UBI format the service writes
  (query records and events with ``client_id``, ``user_id``, ``session_id``),
  which is what profiles are built from;
- later sessions become held-out judgments, one query id per (shopper,
  query): the query's shared grades, where a relevant product the shopper's
  taste prefers gains a grade. An irrelevant product never does: taste
  re-orders what answers the query, it does not make a lamp answer "sofa".

Three kinds of searches are held out: returning shoppers (many logged
events), cold ones (at most two logged events) and anonymous searches (no
user id at all), so that a personalisation stage can be checked to help the
first, not hurt the second and leave the third exactly alone.

Everything derives from the generator's seed and the shopper config, so the
output is identical on every run.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from ..core.errors import ConfigError
from .generate import MATERIALS, TYPES, Catalog, QuerySpec, grade, product_id
from .taxonomy import COLOURS, STYLES

SEGMENTS = ("returning", "cold", "anonymous")
THETA = (1.0, 0.85, 0.7, 0.6, 0.5, 0.43, 0.37, 0.32, 0.28, 0.25)
"""Examination probability per rank (position bias), as in eye-tracking studies of result pages."""
ATTRACTION = (0.03, 0.2, 0.5, 0.8)
"""Click probability when examined, per relevance grade, before the taste boost."""
FACETS = ("brand", "colour", "style", "material", "price_tier")
PAGE = len(THETA)
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ShopperConfig:
    """How many shoppers, of which kinds, with how much taste and how many sessions.

    ``taste_boost`` multiplies a product's click attractiveness per matched
    facet; ``preferred_matches`` is how many facets a relevant product must
    match for the shopper's judgment to raise its grade.
    """

    shoppers: int = 300
    returning_share: float = 0.6
    cold_share: float = 0.2
    no_taste_share: float = 0.2
    log_sessions: tuple[int, int] = (4, 10)
    heldout_sessions: tuple[int, int] = (1, 2)
    searches_per_session: tuple[int, int] = (1, 3)
    taste_boost: float = 1.0
    preferred_matches: int = 2
    cart_rate: float = 0.3
    purchase_rate: float = 0.4
    dev_share: float = 0.5
    days: int = 60
    heldout_days: int = 10
    application: str = "search-rerank-sim"

    def __post_init__(self) -> None:
        if self.shoppers < 1:
            raise ConfigError("shoppers must be >= 1")
        for name in ("returning_share", "cold_share", "no_taste_share", "dev_share", "cart_rate", "purchase_rate"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"{name} must be between 0 and 1")
        if self.returning_share + self.cold_share > 1:
            raise ConfigError("returning_share + cold_share must be at most 1 (the rest are anonymous)")
        for name in ("log_sessions", "heldout_sessions", "searches_per_session"):
            low, high = getattr(self, name)
            if not 1 <= low <= high:
                raise ConfigError(f"{name} must be a range (low, high) with 1 <= low <= high")
        if self.preferred_matches < 1 or self.taste_boost < 0:
            raise ConfigError("preferred_matches must be >= 1 and taste_boost >= 0")
        if not 0 < self.heldout_days < self.days:
            raise ConfigError("need 0 < heldout_days < days")

    @property
    def anonymous_share(self) -> float:
        return 1.0 - self.returning_share - self.cold_share


@dataclass
class Taste:
    """What a shopper prefers, as catalogue value ids; an empty facet is one they do not care about."""

    brand: list[int] = field(default_factory=list)
    colour: list[int] = field(default_factory=list)
    style: list[int] = field(default_factory=list)
    material: list[int] = field(default_factory=list)
    price_tier: list[int] = field(default_factory=list)

    def empty(self) -> bool:
        return not any(getattr(self, facet) for facet in FACETS)


def price_tiers(cat: Catalog) -> np.ndarray:
    """0 (budget), 1 (mid) or 2 (premium): a product's price tertile within its own type, since a cheap sofa
    costs more than a dear cushion."""
    tiers = np.zeros(len(cat), dtype=np.int32)
    for t in np.unique(cat.type):
        idx = np.flatnonzero(cat.type == t)
        low, high = np.quantile(cat.price[idx], [1 / 3, 2 / 3])
        tiers[idx] = (cat.price[idx] > low).astype(np.int32) + (cat.price[idx] > high).astype(np.int32)
    return tiers


def taste_matches(cat: Catalog, tiers: np.ndarray, taste: Taste, idx: np.ndarray) -> np.ndarray:
    """Per product in ``idx``: how many of the taste's facets it matches."""
    columns = {"brand": cat.brand, "colour": cat.colour, "style": cat.style, "material": cat.material}
    matched = np.zeros(len(idx), dtype=np.int32)
    for facet in FACETS:
        wanted = getattr(taste, facet)
        if wanted:
            values = tiers[idx] if facet == "price_tier" else columns[facet][idx]
            matched += np.isin(values, wanted)
    return matched


def personal_grades(grades: np.ndarray, matches: np.ndarray, preferred_matches: int) -> np.ndarray:
    """The shopper's grades: a relevant product matching enough of the taste gains one; grade 0 stays 0."""
    return grades + ((grades > 0) & (matches >= preferred_matches)).astype(grades.dtype)


@dataclass
class Shopper:
    id: str
    segment: str
    split: str
    taste: Taste
    types: list[int]
    """The product types this shopper shops for (what their searches are about)."""
    logged_events: int = 0

    @property
    def user_id(self) -> str | None:
        return None if self.segment == "anonymous" else self.id

    def to_json(self, cat: Catalog) -> dict:
        taste = asdict(self.taste)
        taste["brand"] = [cat.brand_names[b] for b in self.taste.brand]
        taste["colour"] = [COLOURS[c] for c in self.taste.colour]
        taste["style"] = [STYLES[s] for s in self.taste.style]
        taste["material"] = [MATERIALS[m] for m in self.taste.material]
        return {
            "id": self.id,
            "user_id": self.user_id,
            "segment": self.segment,
            "split": self.split,
            "types": [TYPES[t].key for t in self.types],
            "taste": taste,
            "logged_events": self.logged_events,
        }


@dataclass
class ShopperManifest:
    shoppers: dict[str, int]
    heldout_queries: dict[str, dict[str, int]]
    """split -> segment -> (shopper, query) pairs judged."""
    log_events: dict[str, int]
    config: dict

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")


class _Simulator:
    """Holds the catalogue and queries; one method per thing a shopper does."""

    def __init__(
        self,
        cat: Catalog,
        specs: Sequence[QuerySpec],
        qids: Sequence[str],
        frequencies: np.ndarray,
        by_type: list[np.ndarray],
        config: ShopperConfig,
        seed: int,
    ):
        self.cat, self.specs, self.qids, self.config = cat, specs, list(qids), config
        self.by_type = by_type
        self.rng = np.random.default_rng([seed, 40])
        self.tiers = price_tiers(cat)
        self.labels = [grade(cat, spec, by_type) for spec in specs]
        # Searches worth simulating return something relevant; the rest teach a profile nothing.
        self.searchable = np.array([len(ids) > 0 for ids, _ in self.labels])
        self.weights = np.asarray(frequencies, dtype=float) * self.searchable
        self.types_of = [set(spec.types) for spec in specs]
        self.present = [t for t in range(len(by_type)) if len(by_type[t])]
        self.brands_of = [np.unique(cat.brand[idx]) for idx in by_type]
        self.materials_of = [np.unique(cat.material[idx]) for idx in by_type]

    # ------------------------------------------------------------ who shops

    def shopper(self, n: int) -> Shopper:
        rng, c = self.rng, self.config
        u = rng.random()
        segment = (
            "returning" if u < c.returning_share else "cold" if u < c.returning_share + c.cold_share else "anonymous"
        )
        types = [
            int(t)
            for t in rng.choice(self.present, size=min(int(rng.integers(1, 4)), len(self.present)), replace=False)
        ]
        taste = Taste()
        if rng.random() >= c.no_taste_share:
            brands = np.unique(np.concatenate([self.brands_of[t] for t in types]))
            materials = np.unique(np.concatenate([self.materials_of[t] for t in types]))
            choices = {
                "brand": (brands, 2),
                "colour": (np.arange(len(COLOURS)), 2),
                "style": (np.arange(len(STYLES)), 1),
                "material": (materials, 2),
                "price_tier": (np.arange(3), 1),
            }
            while taste.empty():
                for facet, (values, k) in choices.items():
                    if rng.random() < 0.7 and len(values):
                        picked = rng.choice(values, size=min(k, len(values)), replace=False)
                        setattr(taste, facet, sorted(int(v) for v in picked))
        split = "dev" if rng.random() < c.dev_share else "test"
        return Shopper(f"shopper-{n:05d}", segment, split, taste, types)

    def query(self, shopper: Shopper) -> int:
        """A query about what this shopper shops for (now and then anything), by query frequency."""
        weights = self.weights
        if self.rng.random() < 0.85:
            mine = np.array([bool(types & set(shopper.types)) for types in self.types_of])
            if (weights * mine).sum() > 0:
                weights = weights * mine
        return int(self.rng.choice(len(weights), p=weights / weights.sum()))

    # ------------------------------------------------------------ what they see and do

    def shown(self, q: int) -> np.ndarray:
        """A result page: a noisy ranker's top 10 over the query's judged products and a few random ones.

        The log's pages need not come from this product's pipeline: profiles
        learn from what shoppers chose among what they were shown, and a
        page of mostly relevant results, not always in the right order, is
        what any decent engine shows.
        """
        ids, grades = self.labels[q]
        pick = self.rng.choice(len(ids), size=min(200, len(ids)), replace=False)
        noise = self.rng.integers(0, len(self.cat), size=20)
        pool = np.concatenate([ids[pick], noise])
        pool_grades = np.concatenate([grades[pick], np.zeros(len(noise), dtype=grades.dtype)])
        pool, first = np.unique(pool, return_index=True)
        pool_grades = pool_grades[first]
        score = pool_grades + self.rng.gumbel(scale=0.7, size=len(pool))
        return pool[np.argsort(-score, kind="stable")[:PAGE]]

    def attractiveness(self, shopper: Shopper, q: int, shown: np.ndarray) -> np.ndarray:
        ids, grades = self.labels[q]
        where = np.searchsorted(ids, shown)
        found = (where < len(ids)) & (ids[np.minimum(where, len(ids) - 1)] == shown)
        g = np.where(found, grades[np.minimum(where, len(ids) - 1)], 0)
        matches = taste_matches(self.cat, self.tiers, shopper.taste, shown)
        return np.minimum(0.95, np.asarray(ATTRACTION)[g] * (1 + self.config.taste_boost * matches))

    def actions(self, shopper: Shopper, q: int, shown: np.ndarray) -> list[tuple[int, str]]:
        """(rank, action) for what the shopper did on this page: clicks, then add-to-cart and purchase of some."""
        rng, c = self.rng, self.config
        attract = self.attractiveness(shopper, q, shown)
        examined = rng.random(len(shown)) < np.asarray(THETA[: len(shown)])
        done: list[tuple[int, str]] = []
        for rank in np.flatnonzero(examined & (rng.random(len(shown)) < attract)):
            done.append((int(rank), "click"))
            # Deeper actions follow the same attraction: a product that suits the shopper is kept more often.
            if rng.random() < c.cart_rate * attract[rank] / max(attract.max(), 1e-9):
                done.append((int(rank), "add_to_cart"))
                if rng.random() < c.purchase_rate:
                    done.append((int(rank), "purchase"))
        return done

    # ------------------------------------------------------------ records

    def records(
        self, shopper: Shopper, session: str, search: int, q: int, at: datetime, cold_budget: int | None
    ) -> tuple[list[dict], int]:
        """UBI query record and events for one logged search; a cold shopper's log keeps at most the budget."""
        shown = self.shown(q)
        ids = [product_id(int(i)) for i in shown]
        query_id = f"{session}-{search}"
        text = self.specs[q].text
        identity = {"client_id": shopper.id, "session_id": session}
        if shopper.user_id is not None:
            identity["user_id"] = shopper.user_id
        events = self.actions(shopper, q, shown)
        if cold_budget is None:
            events = [(rank, "impression") for rank in range(len(ids))] + events
        else:  # a cold shopper: what little was logged (no impressions), up to the budget
            events = events[:cold_budget]
        out = [
            {
                "application": self.config.application,
                "query_id": query_id,
                "client_id": shopper.id,
                "user_query": text,
                "query_attributes": {k: v for k, v in identity.items() if k != "client_id"},
                "object_id_field": "id",
                "query_response_id": query_id + "-r",
                "query_response_hit_ids": ids,
                "timestamp": _iso(at),
            }
        ]
        for k, (rank, action) in enumerate(events):
            out.append(
                {
                    "action_name": action,
                    "query_id": query_id,
                    **identity,
                    "application": self.config.application,
                    "timestamp": _iso(at + timedelta(seconds=5 + 3 * k)),
                    "user_query": text,
                    "event_attributes": {
                        "object": {"object_id": ids[rank], "object_id_field": "id"},
                        "position": {"ordinal": rank},
                    },
                }
            )
        return out, len(events)

    def judgments(self, shopper: Shopper, q: int) -> tuple[np.ndarray, np.ndarray]:
        ids, grades = self.labels[q]
        matches = taste_matches(self.cat, self.tiers, shopper.taste, ids)
        return ids, personal_grades(grades, matches, self.config.preferred_matches)


def _iso(at: datetime) -> str:
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def simulate_shoppers(
    out_dir: str | Path,
    cat: Catalog,
    specs: Sequence[QuerySpec],
    qids: Sequence[str],
    frequencies: np.ndarray,
    by_type: list[np.ndarray],
    config: ShopperConfig,
    seed: int,
) -> ShopperManifest:
    """Write ``ubi.ndjson``, ``queries.jsonl``, ``qrels/{dev,test}.tsv``, ``shoppers.jsonl`` and a manifest.

    ``out_dir`` sits inside the generated dataset and links its corpus, so it
    loads as a BEIR dataset of its own (``load_beir``): the queries are the
    held-out (shopper, query) pairs, each with ``user_id`` (empty when
    anonymous), ``segment``, ``shopper`` and ``query`` (the shared query id) in
    its meta.
    """
    out = Path(out_dir)
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    corpus = out / "corpus.jsonl"
    if corpus.is_symlink() or corpus.exists():
        corpus.unlink()
    corpus.symlink_to(Path("..") / "corpus.jsonl")
    sim = _Simulator(cat, specs, qids, frequencies, by_type, config, seed)
    if not sim.searchable.any():
        raise ConfigError("no generated query has a relevant product: nothing for shoppers to search")
    c = config
    log_span = (c.days - c.heldout_days) * 86_400
    counts = {s: 0 for s in SEGMENTS}
    heldout: dict[str, dict[str, int]] = {"dev": dict.fromkeys(SEGMENTS, 0), "test": dict.fromkeys(SEGMENTS, 0)}
    log_events = dict.fromkeys(SEGMENTS, 0)
    qrel_files = {s: (out / "qrels" / f"{s}.tsv").open("w", encoding="utf-8") for s in heldout}
    for f in qrel_files.values():
        f.write("query-id\tcorpus-id\tscore\n")
    with (
        (out / "ubi.ndjson").open("w", encoding="utf-8") as log,
        (out / "queries.jsonl").open("w", encoding="utf-8") as queries,
        (out / "shoppers.jsonl").open("w", encoding="utf-8") as people,
    ):
        for n in range(c.shoppers):
            shopper = sim.shopper(n)
            counts[shopper.segment] += 1
            rng = sim.rng
            # Logged history: returning shoppers have many sessions; cold ones a search or none, at most two
            # events; anonymous searches have no user id, so nothing of theirs can build a profile.
            sessions = 0
            if shopper.segment == "returning":
                sessions = int(rng.integers(c.log_sessions[0], c.log_sessions[1] + 1))
            elif shopper.segment == "cold":
                sessions = int(rng.integers(0, 2))
            starts = np.sort(rng.random(sessions)) * log_span
            for s, start in enumerate(starts):
                session = f"{shopper.id}-s{s}"
                at = EPOCH + timedelta(seconds=float(start))
                for k in range(int(rng.integers(c.searches_per_session[0], c.searches_per_session[1] + 1))):
                    budget = None if shopper.segment == "returning" else 2 - shopper.logged_events
                    if budget is not None and budget <= 0:
                        break
                    records, events = sim.records(shopper, session, k, sim.query(shopper), at, budget)
                    log.write("".join(json.dumps(r) + "\n" for r in records))
                    shopper.logged_events += events
                    at += timedelta(minutes=2)
            log_events[shopper.segment] += shopper.logged_events
            # Held out: later sessions, each search one (shopper, query) judged by this shopper's taste.
            held = 1 if shopper.segment == "anonymous" else int(rng.integers(*c.heldout_sessions, endpoint=True))
            seen: set[int] = set()
            for h in range(held):
                at = EPOCH + timedelta(seconds=log_span + float(rng.random()) * c.heldout_days * 86_400)
                q = sim.query(shopper)
                if q in seen:
                    continue
                seen.add(q)
                qid = f"{shopper.id}-{qids[q]}"
                queries.write(
                    json.dumps(
                        {
                            "_id": qid,
                            "text": specs[q].text,
                            "query": qids[q],
                            "kind": specs[q].kind,
                            "shopper": shopper.id,
                            "user_id": shopper.user_id or "",
                            "session_id": f"{shopper.id}-h{h}",
                            "segment": shopper.segment,
                            "split": shopper.split,
                            "timestamp": _iso(at),
                        }
                    )
                    + "\n"
                )
                ids, grades = sim.judgments(shopper, q)
                qrel_files[shopper.split].write(
                    "".join(f"{qid}\t{product_id(int(i))}\t{int(g)}\n" for i, g in zip(ids, grades))
                )
                heldout[shopper.split][shopper.segment] += 1
            people.write(json.dumps(shopper.to_json(cat)) + "\n")
    for f in qrel_files.values():
        f.close()
    manifest = ShopperManifest(shoppers=counts, heldout_queries=heldout, log_events=log_events, config=asdict(c))
    manifest.write(out / "manifest.json")
    return manifest
