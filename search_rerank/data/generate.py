"""Synthetic catalog, queries and complete graded judgments in the BEIR layout.

Why synthetic: no full public relevance set fits on these machines, and real
judgment lists are sparse, so full-catalogue evaluation on them is biased.
Here every product's attributes are known, so every query's exact and
partial matches are known: labels are complete by construction.

What makes it a fair test of a hybrid engine rather than a toy:
- a product is titled with any of its type's names, so "couch" misses the
  settees for BM25 but not for a dense model;
- accessories and cross-references ("sofa slipcover", "pairs well with a
  sofa") put the query's words on irrelevant products;
- brands and model numbers are invented, so only exact lexical matching finds them;
- intents name no product ("something to sit on in a small flat");
- misspellings break exact term matching;
- popularity is power-law and drawn independently of relevance, while
  content quality follows popularity, as in real shops where best-sellers get
  curated copy and complete attribute data and long-tail listings are terse
  and half-filled: so relevant long-tail products exist, every text-based
  ranker tends to bury them, and a long-tail boost has something to fix.
  Labels still come from what a product *is*, not from what its text says,
  just as a red sofa listed without a colour is still a red sofa.

Two profiles. ``easy`` (the default) is the furnishing shop above, with
complete labels. ``hard`` reproduces the shape of a real title-only hardware
catalogue with sparse judgments, where an off-the-shelf dense model is
clearly weaker than BM25 and a naive hybrid can rank below its own BM25 leg:
listings are a title and a brand only (no description, attributes or
category), sizes are written as dimensions and units ("3/4 in. x 10 ft.",
"18V"), titles lead with the brand and carry model numbers and packs, most
products have no sales, reviews or rating, search terms are brand + type,
units, partial model numbers and misspellings, and the default labels
(``qrels/``) are a few BM25-pooled judgments per query, the complete ones
being kept in ``complete/``.

Determinism: everything derives from one seed; product text is made in fixed
chunks, each with its own seed, so the output is identical whatever the
number of worker processes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm import tqdm

from ..core.errors import ConfigError
from .taxonomy import BRAND_ENDS, BRAND_STARTS, COLOURS, HARD_PACKS, HARD_SIZES, SHARED_INTENTS, STYLES, TYPES

if TYPE_CHECKING:  # shoppers builds on this module; it is imported where it is used
    from .shoppers import ShopperConfig, ShopperManifest

CHUNK = 20_000
EXACT, PARTIAL = 2, 1

QUERY_KINDS = {  # kind -> share of generated queries
    "head": 0.14,
    "attribute": 0.28,
    "synonym": 0.13,
    "intent": 0.13,
    "brand": 0.08,
    "model": 0.08,
    "misspelt": 0.16,
}
# Real hardware search logs: brand + type, units and model numbers dominate, few
# synonym or intent queries (shoppers use the trade's word).
HARD_QUERY_KINDS = {
    "head": 0.08,
    "attribute": 0.18,
    "unit": 0.14,
    "synonym": 0.06,
    "intent": 0.03,
    "brand": 0.18,
    "model": 0.16,
    "misspelt": 0.17,
}
PROFILES = ("easy", "hard")
HARD_POOLED = 6  # judgments per query of the hard profile's default labels (real lists: a handful)
HARD_UNPOPULAR = 0.85  # share of hard-profile listings without sales, reviews or rating


@dataclass(frozen=True)
class GeneratorConfig:
    products: int = 50_000
    queries: int = 3_000
    seed: int = 13
    heldout_types: int = 5
    train_share: float = 0.6
    dev_share: float = 0.2
    brands: int = 120
    richness_correlation: float = 0.7
    pooled: int = 0  # judgments per query in the sparse pooled copy; 0 = none
    pool_depth: int = 20  # drawn from this many lexical hits
    workers: int = 0  # 0 = one per core
    profile: str = "easy"  # "hard": title-only hardware listings with sparse default labels

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ConfigError(f"profile must be one of {', '.join(PROFILES)}")
        if self.profile == "hard" and self.pooled == 0:  # sparse labels are the hard profile's point
            object.__setattr__(self, "pooled", HARD_POOLED)
        if self.products < 1 or self.queries < 1:
            raise ConfigError("products and queries must be >= 1")
        if not 0 <= self.heldout_types < len(TYPES) // 2:
            raise ConfigError(f"heldout_types must be in [0, {len(TYPES) // 2})")
        if self.train_share <= 0 or self.dev_share < 0 or self.train_share + self.dev_share >= 1:
            raise ConfigError("need train_share > 0, dev_share >= 0 and train_share + dev_share < 1")
        if not 0 <= self.richness_correlation <= 1:
            raise ConfigError("richness_correlation must be in [0, 1]")
        if self.pooled < 0 or self.pooled > self.pool_depth:
            raise ConfigError("need 0 <= pooled <= pool_depth")


# ---------------------------------------------------------------- vocabularies


def _vocab(values: Iterator[str]) -> tuple[list[str], dict[str, int]]:
    words = sorted(set(values))
    return words, {w: i for i, w in enumerate(words)}


MATERIALS, MATERIAL_ID = _vocab(m for t in TYPES for m in t.materials)
FEATURES, FEATURE_ID = _vocab(f for t in TYPES for f in t.features)
SIZES, SIZE_ID = _vocab(s for t in TYPES for s in t.sizes)
ROOMS, ROOM_ID = _vocab(r for t in TYPES for r in t.rooms)
TYPE_INDEX = {t.key: i for i, t in enumerate(TYPES)}


def _local_to_global(per_type: list[tuple[str, ...]], ids: dict[str, int]) -> np.ndarray:
    """A (type, local index) -> global vocabulary id table, -1 padded."""
    width = max(len(v) for v in per_type)
    table = np.full((len(per_type), width), -1, dtype=np.int32)
    for t, values in enumerate(per_type):
        table[t, : len(values)] = [ids[v] for v in values]
    return table


# ---------------------------------------------------------------- catalog arrays


@dataclass
class Catalog:
    """Column arrays of the generated products: what labels are computed from."""

    type: np.ndarray
    brand: np.ndarray
    colour: np.ndarray
    material: np.ndarray
    style: np.ndarray
    size: np.ndarray
    room: np.ndarray
    feature1: np.ndarray
    feature2: np.ndarray
    price: np.ndarray
    sales: np.ndarray
    reviews: np.ndarray
    rating: np.ndarray
    richness: np.ndarray
    model_number: np.ndarray  # int; the text form is brand prefix + number
    brand_names: list[str]
    brand_prefixes: list[str]

    def __len__(self) -> int:
        return len(self.type)

    def model_text(self, i: int) -> str:
        n = int(self.model_number[i])
        return f"{self.brand_prefixes[self.brand[i]]}-{n // 26:04d}{chr(65 + n % 26)}"


def product_id(i: int) -> str:
    return f"P{i:07d}"


def _brands(rng: np.random.Generator, n: int) -> tuple[list[str], list[str], list[list[int]]]:
    """Invented brand names, their model-number prefixes, and the departments each sells in."""
    combos = [(s, e) for s in BRAND_STARTS for e in BRAND_ENDS]
    n = min(n, len(combos))
    picks = rng.choice(len(combos), size=n, replace=False)
    names = [combos[i][0] + combos[i][1] for i in picks]
    prefixes: list[str] = []
    seen: set[str] = set()
    for name in names:
        base = (name[0] + name[-1]).upper()
        prefix, k = base, 2
        while prefix in seen:
            prefix, k = f"{base}{k}", k + 1
        seen.add(prefix)
        prefixes.append(prefix)
    departments = sorted({t.department for t in TYPES})
    by_dept: list[list[int]] = [[] for _ in departments]
    for b in range(n):
        for d in rng.choice(len(departments), size=int(rng.integers(1, 3)), replace=False):
            by_dept[d].append(b)
    for members in by_dept:  # every department gets some brands
        if len(members) < 3:
            members.extend(int(b) for b in rng.choice(n, size=3, replace=False))
    dept_of_type = [departments.index(t.department) for t in TYPES]
    return names, prefixes, [sorted(set(by_dept[d])) for d in dept_of_type]


def make_catalog(config: GeneratorConfig) -> Catalog:
    rng = np.random.default_rng([config.seed, 0])
    n = config.products
    n_types = len(TYPES)
    # Uneven type frequencies, as in real catalogs (many rugs, few chandeliers).
    type_weights = 1.0 / np.sqrt(1 + rng.permutation(n_types))
    type_idx = rng.choice(n_types, size=n, p=type_weights / type_weights.sum()).astype(np.int32)

    names, prefixes, brands_of_type = _brands(rng, config.brands)
    brand = np.empty(n, dtype=np.int32)
    for t in range(n_types):
        members = np.flatnonzero(type_idx == t)
        brand[members] = rng.choice(brands_of_type[t], size=len(members))

    def local(lengths: np.ndarray) -> np.ndarray:
        return (rng.random(n) * lengths[type_idx]).astype(np.int32)

    mat_table = _local_to_global([t.materials for t in TYPES], MATERIAL_ID)
    feat_table = _local_to_global([t.features for t in TYPES], FEATURE_ID)
    size_table = _local_to_global([t.sizes for t in TYPES], SIZE_ID)
    room_table = _local_to_global([t.rooms for t in TYPES], ROOM_ID)
    n_feat = np.array([len(t.features) for t in TYPES])

    f1 = local(n_feat)
    f2 = (f1 + 1 + (rng.random(n) * (n_feat[type_idx] - 1)).astype(np.int32)) % n_feat[type_idx]
    how_many = rng.choice(3, size=n, p=[0.3, 0.45, 0.25])
    feature1 = np.where(how_many >= 1, feat_table[type_idx, f1], -1).astype(np.int32)
    feature2 = np.where(how_many >= 2, feat_table[type_idx, f2], -1).astype(np.int32)

    # Popularity: heavy-tailed and independent of every relevance attribute.
    sales = np.floor(rng.lognormal(mean=1.0, sigma=1.9, size=n)).astype(np.int64)
    reviews = rng.binomial(sales, 0.08) + rng.poisson(0.3, size=n)
    rating = np.round(np.clip(rng.normal(4.2, 0.55, size=n), 1.0, 5.0), 1)
    rank = np.argsort(np.argsort(sales + rng.random(n), kind="stable"), kind="stable") / max(n - 1, 1)
    c = config.richness_correlation
    richness = c * rank + (1 - c) * rng.random(n)

    lo = np.array([t.price[0] for t in TYPES])[type_idx]
    hi = np.array([t.price[1] for t in TYPES])[type_idx]
    price = np.floor(lo + (hi - lo) * rng.beta(2, 5, size=n)) + 0.99

    return Catalog(
        type=type_idx,
        brand=brand,
        colour=rng.integers(0, len(COLOURS), size=n, dtype=np.int32),
        material=mat_table[type_idx, local(np.array([len(t.materials) for t in TYPES]))],
        style=rng.integers(0, len(STYLES), size=n, dtype=np.int32),
        size=size_table[type_idx, local(np.array([len(t.sizes) for t in TYPES]))],
        room=room_table[type_idx, local(np.array([len(t.rooms) for t in TYPES]))],
        feature1=feature1,
        feature2=feature2,
        price=price,
        sales=sales,
        reviews=reviews,
        rating=rating,
        richness=richness,
        model_number=rng.permutation(26 * 10_000)[np.arange(n) % (26 * 10_000)],
        brand_names=names,
        brand_prefixes=prefixes,
    )


# ---------------------------------------------------------------- product text

RICH_TITLES = (
    "{Brand} {Style} {Material} {Name} with {Feature}, {Colour} ({model})",
    "{Brand} {Name} - {Material}, {Colour}, {Size}",
    "{Style} {Colour} {Material} {Name} by {Brand}",
    "{Brand} {Size} {Name} in {Colour} {Material} - {Feature}",
    "{Name} {model} | {Brand} | {Colour} {Material}",
)
POOR_TITLES = ("{Name} {model}", "{Brand} {Name}", "{Brand} {model} {Name}", "{model} {Name}")
# Marketplace boilerplate that terse listings carry instead of product facts.
TITLE_NOISE = (
    "- New",
    "| Free Delivery",
    "- Home Decor Item",
    "(Pack of 1)",
    "- Fast Shipping",
    "| Brand New In Box",
    "- Great Gift Idea",
    "| Top Seller Item Home Furniture Decor",
)
TERSE_OPENERS = (
    "{Brand} {model}.",
    "Quality {name} at a great price.",
    "{Name} from {Brand}.",
    "See photos for details.",
)
SEO_LINES = (
    "Looking for a {name}? This {alt} is the one: a {colour} {material} {name} for the {room}.",
    "Our best-selling {name}, also loved as a {alt}, in {colour} {material}.",
)
OPENERS = (
    "This {name} brings {style} style to any {room}.",
    "Designed for everyday life in the {room}, this {material} {name} is built to last.",
    "A {size} {name} made from {material} in a {colour} finish.",
    "Give your {room} a {style} update with this {colour} {name}.",
    "Meet the {name} from {Brand}: {material}, {colour} and made for the {room}.",
)
DETAILS = (
    "It features {feature}.",
    "Comes with {feature} for added convenience.",
    "Crafted from durable {material}.",
    "The {colour} colour works with most {style} interiors.",
    "Its {size} size suits most homes.",
    "Pair it with a matching {other} for a complete look.",
    "Looks great next to a {other}.",
    "Customers love how well it goes with their {other}.",
    "Backed by a {years}-year limited warranty.",
    "Easy to assemble; all hardware is included.",
    "Wipe clean with a damp cloth.",
    "Model {model}.",
    "Also sold as a {alt}.",
)


def _cap(text: str) -> str:
    return " ".join(w[:1].upper() + w[1:] for w in text.split())


def _product_record(cat: Catalog, i: int, number: int, rng: np.random.Generator) -> dict:
    """Product ``i`` of this (possibly sliced) catalog; ``number`` is its position in the whole one."""
    t = TYPES[cat.type[i]]
    names = t.names
    richness = float(cat.richness[i])
    # Curated copy targets the word shoppers search for; terse listings use whatever the seller calls it.
    name = names[0] if rng.random() < 0.2 + 0.6 * richness else names[1 + int(rng.integers(len(names) - 1))]
    feats = [FEATURES[f] for f in (cat.feature1[i], cat.feature2[i]) if f >= 0]
    others = [TYPES[TYPE_INDEX[k]].names[0] for k in t.pairs_with] or ["rug", "side table", "cushion"]
    slots = {
        "name": name,
        "material": MATERIALS[cat.material[i]],
        "colour": COLOURS[cat.colour[i]],
        "style": STYLES[cat.style[i]],
        "size": SIZES[cat.size[i]],
        "room": ROOMS[cat.room[i]],
        "feature": feats[0] if feats else "a timeless design",
        "model": cat.model_text(i),
        "Brand": cat.brand_names[cat.brand[i]],
        "other": others[int(rng.integers(len(others)))],
        "years": int(rng.integers(1, 6)),
        "alt": names[int(rng.integers(len(names)))],
    }
    caps = {k[:1].upper() + k[1:]: _cap(str(v)) for k, v in slots.items() if k[0].islower()}
    rich = rng.random() < richness
    title_pool = RICH_TITLES if rich else POOR_TITLES
    title = title_pool[int(rng.integers(len(title_pool)))].format(**slots, **caps)
    if not rich and rng.random() < 0.6:
        title += " " + " ".join(TITLE_NOISE[j] for j in rng.choice(len(TITLE_NOISE), size=2, replace=False))
    if rich:
        sentences = [OPENERS[int(rng.integers(len(OPENERS)))]]
        if rng.random() < richness:
            sentences.append(SEO_LINES[int(rng.integers(len(SEO_LINES)))])
        sentences += [DETAILS[j] for j in rng.choice(len(DETAILS), size=int(round(1 + 4 * richness)), replace=False)]
    else:
        sentences = [TERSE_OPENERS[int(rng.integers(len(TERSE_OPENERS)))]]
        sentences += [DETAILS[j] for j in rng.choice(len(DETAILS), size=int(rng.integers(0, 2)), replace=False)]
    description = " ".join(s.format(**slots, **caps) for s in sentences)
    # Attribute data is filled in as carefully as the copy is written.
    filled = 1.0 if rich else 0.2 + 0.6 * richness
    attributes = {
        key: [slots[slot]]
        for key, slot in (
            ("color", "colour"),
            ("material", "material"),
            ("style", "style"),
            ("size", "size"),
            ("room", "room"),
        )
        if rng.random() < filled
    }
    attributes["model"] = [slots["model"]]
    if feats and rng.random() < filled:
        attributes["features"] = feats
    return {
        "_id": product_id(number),
        "title": title,
        "text": description,
        "brand": slots["Brand"],
        "category": list(t.path),
        "attributes": attributes,
        "price": float(cat.price[i]),
        "sales": int(cat.sales[i]),
        "review_count": int(cat.reviews[i]),
        "rating": float(cat.rating[i]),
    }


def _hard_record(cat: Catalog, i: int, number: int, rng: np.random.Generator) -> dict:
    """Product ``i`` as a title-only hardware listing: brand first, units, model number, pack; facts often left out.

    Labels still come from the catalog arrays, so a listing whose title omits
    its colour or size is still judged by them, as on a real shop floor.
    """
    t = TYPES[cat.type[i]]
    name = t.names[0] if rng.random() < 0.6 else t.names[1 + int(rng.integers(len(t.names) - 1))]
    brand = cat.brand_names[cat.brand[i]]
    feature = cat.feature1[i]

    def maybe(p: float, text: str) -> str:
        return text if rng.random() < p else ""

    spec = maybe(0.75, HARD_SIZES[cat.size[i]])
    colour = maybe(0.45, _cap(COLOURS[cat.colour[i]]))
    material = maybe(0.5, _cap(MATERIALS[cat.material[i]]))
    style = maybe(0.2, _cap(STYLES[cat.style[i]]))
    feat = maybe(0.35, f"with {_cap(FEATURES[feature])}") if feature >= 0 else ""
    model = maybe(0.65, cat.model_text(i))
    pack = maybe(0.2, f"({HARD_PACKS[int(rng.integers(len(HARD_PACKS)))]})")
    if rng.random() < 0.5:
        parts = [brand, style, spec, material, _cap(name), feat, f"in {colour}" if colour else "", model, pack]
    else:
        parts = [brand, model, spec, colour, material, style, _cap(name), feat, pack]
    record: dict = {
        "_id": product_id(number),
        "title": " ".join(p for p in parts if p),
        "brand": brand,
        "price": float(cat.price[i]),
    }
    if rng.random() >= HARD_UNPOPULAR:
        record |= {"sales": int(cat.sales[i]), "review_count": int(cat.reviews[i]), "rating": float(cat.rating[i])}
    return record


def _slice(cat: Catalog, start: int, stop: int) -> tuple[Catalog, int]:
    """A catalog view small enough to send to a worker; indexes shift by ``start``."""
    arrays: dict[str, Any] = {k: (v[start:stop] if isinstance(v, np.ndarray) else v) for k, v in vars(cat).items()}
    return Catalog(**arrays), start


def _chunk_job(args: tuple[Catalog, int, int, str]) -> str:
    part, seed, offset, profile = args
    rng = np.random.default_rng([seed, 1, offset])
    record = _product_record if profile == "easy" else _hard_record
    return "".join(json.dumps(record(part, j, offset + j, rng)) + "\n" for j in range(len(part)))


def write_corpus(cat: Catalog, path: Path, seed: int, workers: int, progress: bool, profile: str = "easy") -> None:
    slices = [_slice(cat, start, min(start + CHUNK, len(cat))) for start in range(0, len(cat), CHUNK)]
    jobs = [(part, seed, offset, profile) for part, offset in slices]
    workers = min(workers or (os.cpu_count() or 1), len(jobs))
    with (
        path.open("w", encoding="utf-8") as out,
        tqdm(total=len(cat), desc="products", unit="doc", disable=not progress) as bar,
        ProcessPoolExecutor(max_workers=workers) if workers > 1 else nullcontext() as pool,
    ):
        results = pool.map(_chunk_job, jobs) if pool is not None else map(_chunk_job, jobs)
        for (part, _, _, _), text in zip(jobs, results):
            out.write(text)
            bar.update(len(part))


# ---------------------------------------------------------------- queries and labels


@dataclass
class QuerySpec:
    """What a query asks for, from which its complete labels follow."""

    text: str
    kind: str
    types: tuple[int, ...]
    constraints: tuple[tuple[str, int], ...] = ()  # (column, value id); "model" pins one product

    @property
    def related(self) -> tuple[int, ...]:
        rel = {TYPE_INDEX[k] for t in self.types for k in TYPES[t].related} - set(self.types)
        return tuple(sorted(rel))


def _satisfied(cat: Catalog, idx: np.ndarray, constraints: tuple[tuple[str, int], ...]) -> np.ndarray:
    """Per candidate: how many constraints it meets."""
    met = np.zeros(len(idx), dtype=np.int32)
    for column, value in constraints:
        if column == "feature":
            met += (cat.feature1[idx] == value) | (cat.feature2[idx] == value)
        elif column == "model":
            met += idx == value
        else:
            met += getattr(cat, column)[idx] == value
    return met


def grade(cat: Catalog, spec: QuerySpec, by_type: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Complete labels as (sorted product indexes, grades).

    Exact: right type and every constraint. Partial: right type missing some
    constraint, or a related type meeting every constraint. A model-number
    query names one product: exact is that product, partial the same type
    from the same brand.
    """
    n_constraints = len(spec.constraints)
    model = next((v for col, v in spec.constraints if col == "model"), None)
    ids, grades = [], []
    for t in spec.types:
        idx = by_type[t]
        exact = _satisfied(cat, idx, spec.constraints) == n_constraints
        partial = ~exact if model is None else ~exact & (cat.brand[idx] == cat.brand[model])
        ids += [idx[exact], idx[partial]]
        grades += [np.full(int(exact.sum()), EXACT), np.full(int(partial.sum()), PARTIAL)]
    if model is None:
        for t in spec.related:
            idx = by_type[t]
            met = idx[_satisfied(cat, idx, spec.constraints) == n_constraints]
            ids.append(met)
            grades.append(np.full(len(met), PARTIAL))
    all_ids = np.concatenate(ids) if ids else np.empty(0, dtype=np.int64)
    all_grades = np.concatenate(grades) if grades else np.empty(0, dtype=np.int64)
    order = np.lexsort((-all_grades, all_ids))  # by id, best grade first
    all_ids, all_grades = all_ids[order], all_grades[order]
    first = np.ones(len(all_ids), dtype=bool)
    first[1:] = all_ids[1:] != all_ids[:-1]
    return all_ids[first], all_grades[first]


KEYBOARD_NEIGHBOURS = {
    "a": "sq",
    "b": "vn",
    "c": "xv",
    "d": "sf",
    "e": "wr",
    "f": "dg",
    "g": "fh",
    "h": "gj",
    "i": "uo",
    "j": "hk",
    "k": "jl",
    "l": "k",
    "m": "n",
    "n": "bm",
    "o": "ip",
    "p": "o",
    "q": "w",
    "r": "et",
    "s": "ad",
    "t": "ry",
    "u": "yi",
    "v": "cb",
    "w": "qe",
    "x": "zc",
    "y": "tu",
    "z": "x",
}


def misspell(text: str, rng: np.random.Generator) -> str:
    """One typo in the longest word, of the kinds people make: drop, swap, double, neighbour key."""
    words = text.split()
    j = max(range(len(words)), key=lambda k: (len(words[k]), -k))
    w = words[j]
    if len(w) < 4:
        return text
    p = int(rng.integers(1, len(w) - 1))
    op = int(rng.integers(4))
    if op == 0:
        w = w[:p] + w[p + 1 :]
    elif op == 1:
        w = w[:p] + w[p + 1] + w[p] + w[p + 2 :]
    elif op == 2:
        w = w[:p] + w[p] + w[p:]
    else:
        near = KEYBOARD_NEIGHBOURS.get(w[p], w[p])
        w = w[:p] + near[int(rng.integers(len(near)))] + w[p + 1 :]
    words[j] = w
    return " ".join(words)


ATTRIBUTE_PATTERNS = (
    ("{colour} {name}", ("colour",)),
    ("{material} {name}", ("material",)),
    ("{style} {name}", ("style",)),
    ("{name} with {feature}", ("feature",)),
    ("{size} {name}", ("size",)),
    ("{colour} {material} {name}", ("colour", "material")),
    ("{style} {name} in {colour}", ("style", "colour")),
    ("{material} {name} with {feature}", ("material", "feature")),
    ("{name} for the {room}", ("room",)),
)


def _seeded_query(cat: Catalog, i: int, kind: str, rng: np.random.Generator, profile: str = "easy") -> QuerySpec | None:
    """A query derived from one product, so at least that product is an exact match."""
    t = TYPES[cat.type[i]]
    if profile == "hard":
        hard = _hard_seeded_query(cat, i, kind, rng)
        if hard is not None:
            return hard
    sizes = SIZES if profile == "easy" else HARD_SIZES
    values = {
        "colour": (COLOURS[cat.colour[i]], int(cat.colour[i])),
        "material": (MATERIALS[cat.material[i]], int(cat.material[i])),
        "style": (STYLES[cat.style[i]], int(cat.style[i])),
        "size": (sizes[cat.size[i]], int(cat.size[i])),
        "room": (ROOMS[cat.room[i]], int(cat.room[i])),
        "feature": (FEATURES[cat.feature1[i]], int(cat.feature1[i])) if cat.feature1[i] >= 0 else None,
    }
    type_ids = (int(cat.type[i]),)
    if kind == "brand":
        brand = cat.brand_names[cat.brand[i]]
        return QuerySpec(f"{brand} {t.names[0]}", kind, type_ids, (("brand", int(cat.brand[i])),))
    if kind == "model":
        text = cat.model_text(i) if rng.random() < 0.5 else f"{cat.brand_names[cat.brand[i]]} {cat.model_text(i)}"
        return QuerySpec(text, kind, type_ids, (("model", i),))
    pattern, columns = ATTRIBUTE_PATTERNS[int(rng.integers(len(ATTRIBUTE_PATTERNS)))]
    chosen: dict[str, tuple[str, int]] = {}
    for column in columns:
        value = values[column]
        if value is None:
            return None
        chosen[column] = value
    name = t.names[0] if kind == "attribute" else t.names[1 + int(rng.integers(len(t.names) - 1))]
    text = pattern.format(name=name, **{c: chosen[c][0] for c in columns})
    column_of = {"colour": "colour", "feature": "feature"}
    return QuerySpec(text, kind, type_ids, tuple((column_of.get(c, c), chosen[c][1]) for c in columns))


def _hard_seeded_query(cat: Catalog, i: int, kind: str, rng: np.random.Generator) -> QuerySpec | None:
    """The hard profile's own query forms: units, and model numbers typed partly; ``None`` for the shared forms."""
    t = TYPES[cat.type[i]]
    type_ids = (int(cat.type[i]),)
    brand = cat.brand_names[cat.brand[i]]
    if kind == "unit":
        spec, size = HARD_SIZES[cat.size[i]], int(cat.size[i])
        if rng.random() < 0.5:
            return QuerySpec(f"{spec} {t.names[0]}", kind, type_ids, (("size", size),))
        return QuerySpec(f"{brand} {spec} {t.names[0]}", kind, type_ids, (("brand", int(cat.brand[i])), ("size", size)))
    if kind == "model":
        model = cat.model_text(i)
        number = model.split("-", 1)[1]  # what shoppers copy off a box: the number without the brand prefix
        u = rng.random()
        text = model if u < 0.35 else number if u < 0.7 else f"{brand} {number}"
        return QuerySpec(text.lower() if rng.random() < 0.5 else text, kind, type_ids, (("model", i),))
    return None


def make_queries(cat: Catalog, config: GeneratorConfig, by_type: list[np.ndarray]) -> list[QuerySpec]:
    rng = np.random.default_rng([config.seed, 2])
    kind_shares = QUERY_KINDS if config.profile == "easy" else HARD_QUERY_KINDS
    kinds = list(kind_shares)
    shares = np.array([kind_shares[k] for k in kinds])
    misspelt_bases = (
        ("head", "attribute", "synonym") if config.profile == "easy" else ("head", "attribute", "brand", "unit")
    )
    present = [t for t in range(len(TYPES)) if len(by_type[t])]
    specs: list[QuerySpec] = []
    seen: set[str] = set()
    attempts = 0
    while len(specs) < config.queries and attempts < config.queries * 20:
        attempts += 1
        kind = kinds[int(rng.choice(len(kinds), p=shares))]
        base_kind = kind
        if kind == "misspelt":
            base_kind = misspelt_bases[int(rng.integers(len(misspelt_bases)))]
        spec: QuerySpec | None
        if base_kind == "head":
            t = present[int(rng.integers(len(present)))]
            name = TYPES[t].names[0]
            spec = QuerySpec(name + ("s" if rng.random() < 0.3 and not name.endswith("s") else ""), base_kind, (t,))
        elif base_kind == "intent":
            spec = _intent_query(rng, present)
        else:
            spec = _seeded_query(cat, int(rng.integers(len(cat))), base_kind, rng, config.profile)
        if spec is None:
            continue
        if kind == "misspelt":
            typo = misspell(spec.text, rng)
            if typo == spec.text:
                continue
            spec = QuerySpec(typo, "misspelt", spec.types, spec.constraints)
        key = spec.text.casefold()
        if key in seen:
            continue
        seen.add(key)
        specs.append(spec)
    return specs


def _intent_query(rng: np.random.Generator, present: list[int]) -> QuerySpec | None:
    if rng.random() < 0.25:
        text, keys = SHARED_INTENTS[int(rng.integers(len(SHARED_INTENTS)))]
        types = tuple(sorted(TYPE_INDEX[k] for k in keys if TYPE_INDEX[k] in present))
        return QuerySpec(text, "intent", types) if types else None
    t = present[int(rng.integers(len(present)))]
    intents = TYPES[t].intents
    if not intents:
        return None
    return QuerySpec(intents[int(rng.integers(len(intents)))], "intent", (t,))


# ---------------------------------------------------------------- splits and output


def _split_queries(specs: list[QuerySpec], heldout: set[int], config: GeneratorConfig) -> list[str]:
    """Queries touching a held-out type go to test only; the rest split by share."""
    rng = np.random.default_rng([config.seed, 3])
    splits = []
    for spec in specs:
        if heldout & set(spec.types):
            splits.append("test")
            continue
        u = rng.random()
        splits.append(
            "train" if u < config.train_share else "dev" if u < config.train_share + config.dev_share else "test"
        )
    return splits


def _frequencies(specs: list[QuerySpec], rng: np.random.Generator) -> np.ndarray:
    """Power-law query frequency; short head queries tend to be the frequent ones."""
    head_bias = np.array(
        [2.0 if s.kind == "head" else 1.0 if s.kind in ("synonym", "attribute") else 0.5 for s in specs]
    )
    order = np.argsort(-(np.log(head_bias) + rng.gumbel(size=len(specs))))
    freq = np.empty(len(specs), dtype=np.int64)
    freq[order] = np.maximum(1, (10_000 / np.arange(1, len(specs) + 1) ** 0.9).astype(np.int64))
    return freq


def lexical_pools(corpus: Path, specs: list[QuerySpec], depth: int, progress: bool) -> list[np.ndarray]:
    """Per query, the catalog positions of its top ``depth`` BM25 hits, as a judging pool.

    A pool from one lexical run is how real judgment lists are made, and why
    they are sparse and biased towards what BM25 already finds. The run reads
    words as typed, so a misspelt query's pool holds what a BM25 that cannot
    spell finds: a ranking that corrects the word finds relevant products
    outside the pool, unjudged, and these labels understate it.
    """
    import tempfile

    from ..backends.tantivy_index import TantivyRetriever
    from ..core.settings import LexicalSettings
    from .loaders import iter_catalog

    with tempfile.TemporaryDirectory(prefix="pool-") as tmp:
        # Words as typed, whatever the product's defaults: a dataset's judgments do not change with a release.
        bm25 = TantivyRetriever(
            Path(tmp), LexicalSettings(correct_typos=False, unit_spellings=False, model_codes=False)
        )
        bm25.add(iter_catalog(corpus))
        return [
            np.array([int(c.product_id[1:]) for c in bm25.search(spec.text, depth)], dtype=np.int64)
            for spec in tqdm(specs, desc="pooling", unit="query", disable=not progress)
        ]


def _pooled_sample(
    pool: np.ndarray, ids: np.ndarray, grades: np.ndarray, k: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``k`` pooled products with their true grades (0 included: a judged miss is a label too)."""
    picked = np.sort(rng.choice(pool, size=min(k, len(pool)), replace=False))
    where = np.searchsorted(ids, picked)
    found = (where < len(ids)) & (ids[np.minimum(where, len(ids) - 1)] == picked)
    return picked, np.where(found, grades[np.minimum(where, len(ids) - 1)], 0)


def _linked_dataset(out: Path, name: str) -> Path:
    """``out/<name>`` reads as its own BEIR dataset: same corpus and queries, other qrels."""
    linked = out / name
    (linked / "qrels").mkdir(parents=True, exist_ok=True)
    for file in ("corpus.jsonl", "queries.jsonl"):
        link = linked / file
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(Path("..") / file)
    return linked


@dataclass
class Manifest:
    products: int
    queries: dict[str, int]
    judgments: dict[str, int]
    heldout_types: list[str]
    query_kinds: dict[str, int]
    config: dict
    pooled_judgments: dict[str, int] = field(default_factory=dict)
    labels: str = "complete"  # what qrels/ holds: "complete", or "pooled" (the hard profile; complete/ has the rest)
    shoppers: ShopperManifest | None = None
    """What ``shoppers/`` holds, when simulated shoppers were asked for (not written to manifest.json)."""

    def write(self, path: Path) -> None:
        data = asdict(self)
        data.pop("shoppers")  # shoppers/ has its own manifest; this one stays as it was without them
        path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def generate(
    out_dir: str | Path,
    config: GeneratorConfig = GeneratorConfig(),
    progress: bool = True,
    shoppers: ShopperConfig | None = None,
) -> Manifest:
    """Write corpus.jsonl, queries.jsonl, qrels/{train,dev,test}.tsv and manifest.json to ``out_dir``.

    With ``config.pooled``, also ``pooled/``: the same dataset judged the way
    real ones are (a few BM25-pooled products per query, the rest unjudged),
    to show what sparse labels do to training and evaluation. The hard profile
    turns this round: ``qrels/`` holds the pooled judgments, as a shop's own
    data would, and ``complete/`` the complete labels.

    With ``shoppers``, also ``shoppers/``: simulated shoppers' UBI log and
    per-(shopper, query) judgments of their held-out searches (see
    data.shoppers).
    """
    out = Path(out_dir)
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    cat = make_catalog(config)
    write_corpus(cat, out / "corpus.jsonl", config.seed, config.workers, progress, config.profile)

    by_type = [np.flatnonzero(cat.type == t) for t in range(len(TYPES))]
    rng = np.random.default_rng([config.seed, 4])
    heldout = set(int(t) for t in rng.choice(len(TYPES), size=config.heldout_types, replace=False))
    specs = make_queries(cat, config, by_type)
    splits = _split_queries(specs, heldout, config)
    freq = _frequencies(specs, rng)

    counts = {"train": 0, "dev": 0, "test": 0}
    judged, pooled_judged = dict(counts), dict(counts)
    id_cells = np.array([f"\t{product_id(i)}\t" for i in range(len(cat))], dtype=object)
    grade_cells = np.array(["0\n", "1\n", "2\n"], dtype=object)
    complete_dir = out if config.profile == "easy" else _linked_dataset(out, "complete")
    qrel_files = {s: (complete_dir / "qrels" / f"{s}.tsv").open("w", encoding="utf-8") for s in counts}
    pools = lexical_pools(out / "corpus.jsonl", specs, config.pool_depth, progress) if config.pooled else None
    pooled_files = {}
    if pools is not None:
        pooled_dir = _linked_dataset(out, "pooled") if config.profile == "easy" else out
        pooled_files = {s: (pooled_dir / "qrels" / f"{s}.tsv").open("w", encoding="utf-8") for s in counts}
    pool_rng = np.random.default_rng([config.seed, 5])
    for f in [*qrel_files.values(), *pooled_files.values()]:
        f.write("query-id\tcorpus-id\tscore\n")
    with (out / "queries.jsonl").open("w", encoding="utf-8") as qf:
        for n, (spec, split) in enumerate(
            tqdm(list(zip(specs, splits)), desc="labels", unit="query", disable=not progress)
        ):
            qid = f"Q{n:06d}"
            ids, grades = grade(cat, spec, by_type)
            qf.write(
                json.dumps(
                    {
                        "_id": qid,
                        "text": spec.text,
                        "kind": spec.kind,
                        "split": split,
                        "types": ",".join(TYPES[t].key for t in spec.types),
                        "heldout": "1" if heldout & set(spec.types) else "0",
                        "frequency": int(freq[n]),
                    }
                )
                + "\n"
            )
            qrel_files[split].write("".join(qid + id_cells[ids] + grade_cells[grades]))
            if pools is not None and len(pools[n]):
                picked, picked_grades = _pooled_sample(pools[n], ids, grades, config.pooled, pool_rng)
                pooled_files[split].write("".join(qid + id_cells[picked] + grade_cells[picked_grades]))
                pooled_judged[split] += len(picked)
            counts[split] += 1
            judged[split] += len(ids)
    for f in [*qrel_files.values(), *pooled_files.values()]:
        f.close()
    kinds: dict[str, int] = {}
    for s in specs:
        kinds[s.kind] = kinds.get(s.kind, 0) + 1
    manifest = Manifest(
        products=len(cat),
        queries=counts,
        judgments=judged,
        heldout_types=sorted(TYPES[t].key for t in heldout),
        query_kinds=kinds,
        config=asdict(config),
        pooled_judgments=pooled_judged if pools is not None else {},
        labels="complete" if config.profile == "easy" else "pooled",
    )
    manifest.write(out / "manifest.json")
    if shoppers is not None:
        from .shoppers import simulate_shoppers

        qids = [f"Q{n:06d}" for n in range(len(specs))]
        manifest.shoppers = simulate_shoppers(out / "shoppers", cat, specs, qids, freq, by_type, shoppers, config.seed)
    return manifest
