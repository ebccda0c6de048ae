"""One validated settings object for every entry point.

Precedence: defaults, then a settings file (TOML or JSON; what ``tune`` writes),
then ``SEARCH_RERANK_*`` environment variables (nested with ``__``, e.g.
``SEARCH_RERANK_FUSION__METHOD=linear``; one that names no setting is refused, see
:func:`check_variables`), then the CLI's flags; a copy with per-request overrides keeps them over the variables.
Built once by the CLI or ``create_app()``, never at import time.

The environment is read only here and in the entry points (the CLI's root group, ``create_app()``,
``gunicorn_conf``): everything else takes what it needs as settings or arguments, so a module's behaviour
never depends on a variable nobody can see from its call site, and tests pass values instead of patching
``os.environ``.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from . import json_text
from .catalog_fields import FieldType
from .errors import ConfigError
from .setting_errors import describe, unparsed

PACKAGED_MINILM = "packaged:all-MiniLM-L6-v2"
ENV_PREFIX = "SEARCH_RERANK_"


def refusing_blank(message: str) -> Callable[[Any], Any]:
    """A check that refuses a setting given empty or blank, with ``message``: a variable set to "" (a compose
    file's ``VAR=``) is read as a value, never as the setting left out."""

    def check(value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            raise ValueError(message)
        return value

    return check


# ``Path("")`` is the current directory and an empty model name is ``models_dir`` itself: the service would serve,
# log or load from wherever the process started, and fail far from the cause, or not at all.
not_empty = refusing_blank("empty: name a file or model, or leave the setting out for its default")
# gunicorn binds an empty host on every interface: a service meant for 127.0.0.1 would be on the network.
no_empty_host = refusing_blank("empty: name the address to listen on (0.0.0.0 for every interface), or leave it out")


SettingPath = Annotated[Path, BeforeValidator(not_empty)]
ModelName = Annotated[str, BeforeValidator(not_empty)]


class _Section(BaseModel):
    # A weight, a boost or a time of NaN or infinity would make every score it enters NaN: refused, as JSON has none.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_boolean_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        """``window = true`` is refused, not read as 1 (pydantic's lax mode): a reranker of one hit reorders
        nothing, and a fusion weight of true is no weight anyone meant."""
        where = _boolean_number(value, cls.model_fields[info.field_name or ""].annotation)
        if where is not None:
            raise ValueError(f"{where + ': ' if where else ''}a number, not true or false")
        return value


def _boolean_number(value: Any, annotation: Any) -> str | None:
    """Where in ``value`` a boolean stands for a number ``annotation`` wants ("" for the value itself, a dict's
    key, a list's index); None where there is none."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return _boolean_number(value, args[0])
    if isinstance(value, bool):
        kinds = set(args) if origin in (Union, UnionType) else {annotation}
        return "" if kinds & {int, float} and bool not in kinds and Any not in kinds else None
    if isinstance(value, dict) and origin in (dict, Mapping) and len(args) == 2:
        return next((str(k) for k, v in value.items() if _boolean_number(v, args[1]) is not None), None)
    if isinstance(value, list) and origin in (list, tuple) and args:
        return next((f"[{i}]" for i, v in enumerate(value) if _boolean_number(v, args[0]) is not None), None)
    return None


LEXICAL_FIELDS = ("title", "brand", "category", "attributes", "description")
SERVER_BACKENDS = ("elasticsearch", "opensearch")
# Elasticsearch/OpenSearch index and alias names: lowercase, no path or wildcard characters.
INDEX_NAME = r"^[a-z0-9][a-z0-9._-]{0,199}$"
ORIGIN = r"[a-zA-Z][a-zA-Z0-9+.-]*://(\[[0-9a-fA-F:.]+\]|[^\s/:?#\[\]@]+)(:[0-9]{1,5})?"
"""A web origin as a browser sends it in ``Origin``: a scheme, a host (an IPv6 one in brackets) and a port."""


class LexicalSettings(_Section):
    """BM25 leg: the embedded tantivy index, or an Elasticsearch/OpenSearch cluster.

    k1/b are Lucene's defaults; tantivy fixes them at these values, a server
    index takes them into its similarity settings. The server fields are only
    read when ``backend`` names a server; ``index`` is the alias (or plain
    index) that searches go to, so that a reindex can swap what is behind it.
    """

    backend: Literal["tantivy", "elasticsearch", "opensearch"] = "tantivy"
    candidates: int = Field(default=100, ge=1, le=10_000)
    field_boosts: dict[str, float] = Field(
        default_factory=lambda: {"title": 3.0, "brand": 2.0, "category": 2.0, "attributes": 1.5, "description": 1.0}
    )
    tie_breaker: float = Field(default=0.3, ge=0.0, le=1.0)
    correct_typos: bool = Field(
        default=True,
        description="a query word that is in no searched field and is no English word is searched as the index's "
        "nearest words (Elasticsearch's AUTO edits, first letter kept); on a cluster its term suggester names them, "
        "one request before the search of a query that has such a word; the embedded backend also reads two words "
        "run together and one word typed apart (docs/TUNING.md, Misspelt words)",
    )
    unit_spellings: bool = Field(
        default=False,
        description='embedded backend: a unit after a number matches every spelling of it ("60 inch" finds '
        '"60 in.", "18v" finds "18-Volt"); off by default, as on the generator it did not help (docs/TUNING.md, '
        "Units); the cluster backends search words as typed",
    )
    model_codes: bool = Field(
        default=True,
        description='a model number typed without its separators or with others finds it ("ecc102" and "ecc10-2" '
        'find "ECC-10-2"; docs/TUNING.md, "Model numbers"); on a cluster, in an index of mapping version 4 on',
    )
    k1: float = Field(default=1.2, ge=0.0)
    b: float = Field(default=0.75, ge=0.0, le=1.0)
    url: str | None = Field(default=None, description="e.g. https://search.internal:9200")
    index: str = Field(default="products", pattern=INDEX_NAME)
    username: str | None = None
    password: SecretStr | None = None
    api_key: SecretStr | None = None
    verify_certs: bool = True
    timeout_s: float = Field(
        default=1.0, gt=0, description="search deadline: past this the answer comes from the other leg"
    )
    request_timeout_s: float = Field(
        default=30.0, gt=0, le=300, description="client timeout for cluster requests, bulk included"
    )
    retries: int = Field(default=3, ge=0, le=10, description="retries of a failed request, with exponential backoff")
    bulk_workers: int = Field(
        default=3, ge=1, le=32, description="bulk requests in flight at once while indexing (1: one after another)"
    )
    mapping_version: int = Field(default=5, ge=1, description="which index_mappings/products.vN.json new indexes use")
    synonyms_file: SettingPath | None = Field(
        default=None,
        description="Solr-format synonym rules applied to queries: by the embedded leg as it reads them (a reload "
        "reads the file again; backends/synonyms.py), by a cluster's index as it was created with them",
    )
    catalog_field_types: dict[str, FieldType] = Field(
        default_factory=dict,
        description="the type (keyword, long, double, date, boolean) of a catalog's own field where the one read "
        "from its values is wrong (a product code of digits as a keyword); read when an index is built "
        "(core/catalog_fields.py)",
    )

    @model_validator(mode="after")
    def _known_fields(self) -> LexicalSettings:
        unknown = set(self.field_boosts) - set(LEXICAL_FIELDS)
        if unknown:
            raise ValueError(f"unknown field(s) in field_boosts: {sorted(unknown)}; valid: {sorted(LEXICAL_FIELDS)}")
        if any(v < 0 for v in self.field_boosts.values()):
            raise ValueError("field_boosts must be >= 0")
        return self

    def searched_fields(self) -> dict[str, float]:
        """Fields with a positive boost, in a fixed order: a field boosted 0 is not searched at all,
        as with a ``multi_match`` field list. Every lexical engine calls this when it is built."""
        boosts = {f: self.field_boosts[f] for f in LEXICAL_FIELDS if self.field_boosts.get(f, 0.0) > 0}
        if not boosts:
            raise ConfigError(
                f"lexical.field_boosts={self.field_boosts} gives no field a positive boost, so the "
                f"lexical leg could never match; give at least one of {list(LEXICAL_FIELDS)} a boost > 0"
            )
        return boosts

    @model_validator(mode="after")
    def _server_connection(self) -> LexicalSettings:
        if self.backend not in SERVER_BACKENDS:
            return self
        if not self.url or not self.url.startswith(("http://", "https://")):
            raise ValueError(
                f"lexical.backend={self.backend!r} needs lexical.url, an http:// or https:// address "
                f"of the cluster (got {self.url!r})"
            )
        if (self.username is None) != (self.password is None):
            raise ValueError("lexical.username and lexical.password go together: set both or neither")
        if self.api_key is not None and self.username is not None:
            raise ValueError("set lexical.api_key or lexical.username/password, not both")
        if self.api_key is not None and self.backend == "opensearch":
            raise ValueError("OpenSearch has no API key authentication; use lexical.username/password")
        return self


class DenseSettings(_Section):
    """Dense leg. ``model`` is a registry name, a path, a hub name (``org/name``), or the packaged MiniLM.

    ``backend`` picks where the vectors live: a FAISS index in the index
    directory (exact up to ``flat_max_size``, fastest while the catalog fits
    one machine's memory), or the cluster's own approximate kNN (``engine``:
    a ``dense_vector`` / ``knn_vector`` field in the lexical index, so the
    catalog can outgrow one machine; needs a cluster lexical backend).
    """

    enabled: bool = True
    backend: Literal["faiss", "engine"] = Field(
        default="faiss",
        description="faiss: a FAISS index per version; engine: HNSW kNN in the Elasticsearch/OpenSearch index "
        "of the lexical leg (lexical.backend must name a cluster)",
    )
    model: ModelName = Field(
        default=PACKAGED_MINILM,
        description="a name in models_dir (a trained encoder with its card), a model directory, an org/name "
        "hub model, or the packaged MiniLM",
    )
    require_card: bool = Field(
        default=False,
        description="also refuse directories and hub models without a card (registry names and directories "
        "with a card always have their card checked; the packaged MiniLM needs none)",
    )
    allow_unpromoted: bool = Field(
        default=False, description="serve an encoder whose card says it did not beat its starting model on dev"
    )
    candidates: int = Field(default=100, ge=1, le=10_000)
    index_type: Literal["auto", "flat", "hnsw", "ivf"] = "auto"
    flat_max_size: int = Field(default=200_000, ge=1, description="auto picks exact search up to this many products")
    hnsw_m: int = Field(default=32, ge=4, description="HNSW links per node (FAISS, and engine indexes)")
    hnsw_ef_search: int = Field(default=128, ge=1)
    hnsw_ef_construction: int = Field(
        default=100,
        ge=1,
        le=3200,
        description="engine: HNSW candidates kept while building the graph (index_options / method parameters)",
    )
    num_candidates: int = Field(
        default=200,
        ge=1,
        le=10_000,
        description="engine: nearest-neighbour candidates per shard (at least the k asked for; Elasticsearch's "
        "num_candidates, OpenSearch's k); more is slower and closer to exact",
    )
    vector_mapping_version: int = Field(
        default=1, ge=1, description="engine: which index_mappings/vectors.<engine>.vN.json new indexes use"
    )
    ivf_nprobe: int = Field(default=16, ge=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    batch_size: int = Field(default=64, ge=1)
    max_seq_length: int = Field(
        default=64,
        ge=8,
        le=512,
        description="tokens the bi-encoder reads; 64 keeps title, brand, category and attributes, and encodes "
        "about twice as fast on a CPU as 128 (attention cost grows with length)",
    )
    query_prefix: str = ""
    document_prefix: str = ""
    timeout_s: float = Field(
        default=2.0, gt=0, description="past this the answer comes from the other leg (encoding runs on a CPU)"
    )
    code_anchors: bool = Field(
        default=True,
        description="a query that names a product code, whose product the lexical leg found, searches the dense "
        "leg by that product's own vector: its neighbours, the products like the one asked for (a text encoder "
        "reads a code as noise); fused with fusion.anchored_weights",
    )


LegName = Literal["lexical", "dense"]


def _default_leg_weights() -> dict[LegName, float]:
    """Lexical 0.8, dense 0.2: chosen on dev across both generated profiles (docs/TUNING.md), where the
    off-the-shelf dense leg is much weaker than BM25 on title-only catalogues."""
    return {"lexical": 0.8, "dense": 0.2}


def _identifier_leg_weights() -> dict[LegName, float]:
    """Lexical only: a text encoder cannot read a model number (core.identifiers says how a code is told)."""
    return {"lexical": 1.0, "dense": 0.0}


def _anchored_leg_weights() -> dict[LegName, float]:
    """Lexical 0.9, dense 0.1 for a code query whose dense leg searched by the named product's vector: the share
    whose worst dev margin over the anchors off is largest across both generated profiles and the Home Depot
    layout, each on both label sets. 0.5 led on the generator's labels but lost to the anchors off on the
    layout's rows, pooled from another engine as a shop's judgments are (docs/TUNING.md, "Queries that name a
    product by its code")."""
    return {"lexical": 0.9, "dense": 0.1}


_DEFAULT_WEIGHTS = {
    "weights": _default_leg_weights,
    "identifier_weights": _identifier_leg_weights,
    "anchored_weights": _anchored_leg_weights,
}


class FusionSettings(_Section):
    """How the legs' lists become one.

    The defaults (linear min-max, lexical share 0.8) were chosen on dev across
    both generator profiles and both label sets as the candidate whose worst
    margin over the BM25 leg is largest; equal-weight RRF lost to BM25 on
    title-only catalogues where an off-the-shelf dense model is weak
    (docs/TUNING.md, "Defaults"). ``tune`` chooses them on a shop's own data.
    """

    method: Literal["rrf", "linear"] = "linear"
    rank_constant: float = Field(default=60.0, ge=0.0)
    weights: dict[LegName, float] = Field(default_factory=_default_leg_weights)
    identifier_weights: dict[LegName, float] = Field(
        default_factory=_identifier_leg_weights,
        description="leg weights for a query naming a product by its code (a model number, SKU or part number, see "
        "core.identifiers): lexical only by default, since a text encoder cannot read codes; set them equal to "
        "`weights` to fuse such queries like any other",
    )
    """Not among ``tune``'s trials: a dev split holds few code queries (40 of 248 on the hard profile), and from
    them the trials gave the dense leg 0.32 of codes where it scores nDCG@10 0.03, a fit to noise. After the
    trials ``tune`` tries shares on the code queries alone and moves this (and ``anchored_weights``) only on a
    significant lead (evaluation.tune.choose_share; docs/TUNING.md)."""
    anchored_weights: dict[LegName, float] = Field(
        default_factory=_anchored_leg_weights,
        description="leg weights for a query naming a product code whose dense leg searched by that product's "
        "vector (dense.code_anchors): the lexical leg's exact match and the dense leg's products like it",
    )
    normalization: Literal["minmax", "zscore", "l2_norm", "none"] = Field(
        default="minmax",
        description="how linear fusion puts each leg's scores on one scale: minmax, zscore, l2_norm (each score over "
        "the list's Euclidean norm) or none (raw scores; Elasticsearch's linear retriever normalizers are none, "
        "minmax and l2_norm)",
    )

    @field_validator("weights", "identifier_weights", "anchored_weights", mode="before")
    @classmethod
    def _legs_left_out_keep_their_defaults(cls, given: Any, info: ValidationInfo) -> Any:
        """A map naming one leg (``SEARCH_RERANK_FUSION__WEIGHTS__DENSE=0.5``, a settings file's
        ``[fusion.weights]`` with one key) keeps the other leg's default weight: left out, fusion weighted it 1.0,
        neither the default nor anything asked for."""
        if isinstance(given, Mapping):
            return {**_DEFAULT_WEIGHTS[str(info.field_name)](), **given}
        return given

    @model_validator(mode="after")
    def _non_negative_weights(self) -> FusionSettings:
        maps = {name: getattr(self, name) for name in _DEFAULT_WEIGHTS}
        if any(w < 0 for weights in maps.values() for w in weights.values()):
            raise ValueError("fusion weights must be >= 0")
        for name, weights in maps.items():
            if not any(w > 0 for w in weights.values()):
                raise ValueError(
                    f"fusion.{name} gives every leg weight 0, so every product would score alike: give a leg a "
                    "positive weight"
                )
        return self


class RerankSettings(_Section):
    """Cross-encoder stage. No model means the stage is skipped and the response says so."""

    model: ModelName | None = Field(
        default=None, description="a name in models_dir, or a model directory with its card"
    )
    window: int = Field(default=50, ge=1, le=1000)
    batch_size: int = Field(default=32, ge=1)
    max_length: int | None = Field(
        default=None,
        ge=16,
        le=512,
        description="tokens per query-product pair; unset: the length the model was trained at (its card), else 256",
    )
    timeout_s: float = Field(default=2.0, gt=0)
    blend: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="weight of the reranker in the final score, the rest being the fused first-stage score; "
        "unset: the weight chosen on dev, from the model card",
    )
    require_card: bool = Field(
        default=True, description="refuse a model without a valid card; false allows e.g. a hub cross-encoder"
    )
    allow_unpromoted: bool = Field(
        default=False, description="serve a model whose card says it did not beat the first stage on dev"
    )
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["auto", "fp32", "bf16"] = Field(
        default="auto",
        description="the torch runtime's precision on a CPU: bf16 autocast (weights stay fp32) or fp32; auto: bf16 "
        "where the CPU has it natively (AVX512-BF16, AMX), where it scores about twice as fast, else fp32",
    )
    pretokenise: bool = Field(
        default=True,
        description="store each product's token ids with the index version (for rerank.model's tokenizer, else "
        "the packaged MiniLM's), so a request tokenises only its query",
    )


class LtrSettings(_Section):
    """The learned ranker (LambdaMART over per-candidate features), the last ranking stage before the
    exposure stages; no model means the stage is skipped and the response says so."""

    model: ModelName | None = Field(
        default=None, description="a ranker in models_dir (`search-rerank train ranker`), or its directory"
    )
    enabled: bool = Field(default=True, description="false skips the stage while keeping the model loaded")
    allow_unpromoted: bool = Field(
        default=False, description="serve a ranker whose card says it did not beat the best linear blend on dev"
    )


class LongTailSettings(_Section):
    """Long-tail exposure: the gated additive ``boost``, or popularity-aware ``xquad`` re-ranking (see exposure)."""

    enabled: bool = True
    method: Literal["boost", "xquad"] = "boost"
    strength: float = Field(default=0.1, ge=0.0, le=10.0)
    gate: float = Field(
        default=0.8, ge=0.0, le=1.0, description="minimum relevance (0..1 within the list) for a product to be boosted"
    )
    head_fraction: float = Field(
        default=0.2, gt=0.0, lt=1.0, description="share of the catalog, by popularity, that counts as head"
    )
    torso_fraction: float = Field(
        default=0.4,
        ge=0.0,
        lt=1.0,
        description="share of the non-head catalog, the most popular part of it, that counts as torso; the rest "
        "is tail (a share of what is left, so any head_fraction stays valid)",
    )
    target: Literal["long_tail", "tail"] = Field(
        default="long_tail",
        description="what the stage favours: 'long_tail', everything below the head, the rarer the more (boost); "
        "'tail', the tail tier below head and torso, every tail product alike (boost: the same lift; xquad: tail "
        "against the rest)",
    )
    xquad_lambda: float = Field(
        default=0.3,
        ge=0.0,
        le=1.0,
        description="xquad: weight of head/tail coverage against relevance (0 = relevance order)",
    )
    xquad_depth: int = Field(default=50, ge=1, le=1000, description="xquad: how many top results are re-ranked")


class ExposureControlSettings(_Section):
    """The closed loop that steers ``longtail.strength`` towards a band of tail share (see core.exposure_control).

    Off by default: a shop turns it on once its band and guardrail are chosen (docs/BENCHMARKS.md shows a
    simulated run). It needs the ``boost`` method, the only one ``strength`` drives.
    """

    enabled: bool = False
    target_low: float = Field(
        default=0.2, ge=0.0, le=1.0, description="lower edge of the wanted tail share of the top 10"
    )
    target_high: float = Field(
        default=0.3, ge=0.0, le=1.0, description="upper edge of the wanted tail share of the top 10"
    )
    min_ctr_ratio: float = Field(
        default=0.5,
        ge=0.0,
        description="guardrail: tail click-through over head click-through at least this, else the strength is held",
    )
    min_strength: float = Field(default=0.0, ge=0.0, le=10.0, description="the strength never goes below this")
    max_strength: float = Field(default=1.0, ge=0.0, le=10.0, description="the strength never goes above this")
    max_step: float = Field(default=0.05, gt=0.0, le=10.0, description="largest change of the strength per interval")
    gain: float = Field(
        default=0.5,
        gt=0.0,
        le=100.0,
        description="strength per unit of tail share between the observation and mid-band",
    )
    hysteresis: float = Field(
        default=0.02,
        ge=0.0,
        le=1.0,
        description="once in the band, the tail share must leave it by more than this before the strength moves again",
    )
    interval_s: float = Field(default=60.0, gt=0.0, description="how often the controller looks and decides")
    min_impressions: int = Field(
        default=500, ge=1, description="products shown in an interval below this: too little evidence, held"
    )
    state_path: SettingPath | None = Field(
        default=None,
        description="JSON file holding the controlled strength, shared by every worker; unset: a file that gunicorn's "
        "master names for this server (the strength starts again from longtail.strength at each start)",
    )

    @model_validator(mode="after")
    def _ordered(self) -> ExposureControlSettings:
        if self.target_low >= self.target_high:
            raise ValueError(f"target_low ({self.target_low}) must be below target_high ({self.target_high})")
        if self.min_strength > self.max_strength:
            raise ValueError(f"min_strength ({self.min_strength}) must not exceed max_strength ({self.max_strength})")
        return self


class DiversitySettings(_Section):
    """The MMR diversity stage after the long-tail stage (see core.diversity); off by default."""

    enabled: bool = False
    lambda_: float = Field(
        default=0.7,
        ge=0.0,
        le=1.0,
        description="weight of relevance against similarity to what is shown (1 = relevance order)",
    )
    depth: int = Field(default=30, ge=1, le=1000, description="how many top results are re-ranked")


PROFILE_FACETS = ("category", "brand", "color", "material", "style", "size", "price_band")
"""What a shopper profile keeps affinities for: the product's category path and brand, the attributes shoppers
choose between (``attributes[...]`` keys as the loaders and the generator write them), and a price band."""
PROFILE_ACTIONS = ("impression", "click", "add_to_cart", "purchase")


def _default_facet_weights() -> dict[str, float]:
    return {
        "category": 0.05,
        "brand": 0.1,
        "color": 0.05,
        "material": 0.05,
        "style": 0.05,
        "size": 0.02,
        "price_band": 0.05,
    }


def _default_action_weights() -> dict[str, float]:
    """A purchase says more about taste than a click, an impression next to nothing (it is what we chose)."""
    return {"impression": 0.0, "click": 1.0, "add_to_cart": 3.0, "purchase": 5.0}


class PersonalisationSettings(_Section):
    """The personalisation stage and the shopper profiles it reads (see core.profile, core.personalise).

    On by default because it only acts on a request that names a shopper (user or session id) whose
    profile holds at least ``min_events`` events: anonymous and cold requests rank exactly as without it.
    Weights are on the scale of the list's min-max scaled score (the best result is 1).
    """

    enabled: bool = True
    facet_weights: dict[str, float] = Field(
        default_factory=_default_facet_weights,
        description="per facet, the weight of the shopper's share of interest in the product's value (0..1)",
    )
    vector_weight: float = Field(
        default=0.1, ge=0.0, le=10.0, description="weight of the cosine between profile and product vectors"
    )
    cap: float = Field(default=0.3, ge=0.0, le=10.0, description="the most the stage adds to a product's score")
    max_rise: int = Field(
        default=10, ge=0, le=1000, description="the most positions the stage may move a product up the list"
    )
    depth: int = Field(default=50, ge=1, le=1000, description="how many top results the stage re-ranks")
    relevance_power: float = Field(
        default=1.0,
        ge=0.0,
        le=8.0,
        description="the personal term is multiplied by the product's min-max scaled relevance to this power (0: not "
        "scaled), so taste settles near-ties among good matches instead of lifting weak ones",
    )
    skip_query_facets: bool = Field(
        default=True,
        description="a facet whose value the query names (a colour word, a brand) gets no affinity: the query "
        "already chose that value, and clicks it forced say nothing about taste",
    )
    min_events: float = Field(
        default=3.0, ge=0.0, description="a shopper with fewer (decayed) events is cold: the stage skips them"
    )
    session_weight: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="share of the session's profile against the shopper's long-term one, when both exist",
    )
    half_life_s: float = Field(
        default=30 * 86400.0, gt=0, description="long-term profile: an event's weight halves after this long"
    )
    session_half_life_s: float = Field(
        default=3600.0, gt=0, description="session profile: an event's weight halves after this long"
    )
    action_weights: dict[str, float] = Field(default_factory=_default_action_weights)
    max_values_per_facet: int = Field(
        default=20, ge=1, le=1000, description="values kept per facet, the strongest; bounds a profile's size"
    )
    ttl_s: float = Field(default=180 * 86400.0, gt=0, description="a profile not updated for this long is forgotten")
    max_profiles: int = Field(
        default=1_000_000,
        ge=1,
        description="the most profiles the store keeps: the hourly purge removes the least recently updated past "
        "it, session profiles first (a session's taste halves every hour, a signed-in shopper's is what "
        "personalisation is for). POST /ubi/events is open to anyone and each fresh session or user id adds a "
        "profile, so without it only ttl_s bounds the store. A million holds a large shop's returning shoppers "
        "and recent sessions within the TTL (most sessions are worth nothing after a day) and bounds the store "
        "to about 0.45 GB (SQLite, measured), or 4.2 GB with the dense leg's vector in each profile; raise it "
        "for more shoppers",
    )
    read_timeout_s: float = Field(
        default=0.25, gt=0, le=30, description="a search waits this long for the shopper's profile, then ranks without"
    )
    write_timeout_s: float = Field(
        default=2.0,
        gt=0,
        le=60,
        description="POST /ubi/events waits this long for the profile update, then answers (the event is logged)",
    )
    store: Literal["sqlite", "elasticsearch", "opensearch"] = Field(
        default="sqlite",
        description="sqlite: a file shared by the workers of one machine; elasticsearch/opensearch: an index in "
        "the lexical leg's cluster (lexical.url and its credentials), shared by several machines",
    )
    store_path: SettingPath | None = Field(
        default=None, description="sqlite: the database file; unset: profiles.sqlite3 in index_dir"
    )
    profile_index: str = Field(
        default="search-rerank-profiles", pattern=INDEX_NAME, description="elasticsearch/opensearch: the index"
    )

    @model_validator(mode="after")
    def _known_keys(self) -> PersonalisationSettings:
        unknown = set(self.facet_weights) - set(PROFILE_FACETS)
        if unknown:
            raise ValueError(f"unknown facet(s) in facet_weights: {sorted(unknown)}; valid: {list(PROFILE_FACETS)}")
        unknown = set(self.action_weights) - set(PROFILE_ACTIONS)
        if unknown:
            raise ValueError(f"unknown action(s) in action_weights: {sorted(unknown)}; valid: {list(PROFILE_ACTIONS)}")
        if any(w < 0 for w in (*self.facet_weights.values(), *self.action_weights.values())):
            raise ValueError("facet_weights and action_weights must be >= 0")
        return self


class RecoSettings(_Section):
    """Recommendations beside search: similar items, also-clicked items, and the fallback block of a weak search."""

    size: int = Field(default=10, ge=1, le=100, description="recommendations per list unless a request asks")
    refresh_s: float = Field(
        default=300.0, gt=0, description="the also-clicked table is mined again from the UBI log after this long"
    )
    min_support: int = Field(default=1, ge=1, description="sessions two products must share to be also-clicked")
    max_basket: int = Field(
        default=100,
        ge=2,
        le=10_000,
        description="a session that showed interest in more distinct products than this is left out of the "
        "also-clicked table: it is a crawler or an id many shoppers share, not one shopper, and its pairs grow "
        "with the square of its size (10,000 products: 50 million pairs, minutes and gigabytes per mining)",
    )
    max_pairs: int = Field(
        default=2_000_000,
        ge=1_000,
        description="pairs of products the also-clicked table counts at once (each way); past it the pairs seen in "
        "fewest sessions are dropped until half remain. Anyone may post events, and random pairs, one session "
        "each, grew a worker by gigabytes; a catalogue of 50,000 products with 20 companions each holds 2 million",
    )
    fallback_min_hits: int = Field(
        default=3, ge=0, description="a search with fewer candidates than this gets a fallback block (0: never)"
    )
    fallback_min_similarity: float = Field(
        default=0.0,
        ge=-1.0,
        le=1.0,
        description="a search whose best dense cosine on the page is below this gets a fallback block (0: not used)",
    )


class BreakerSettings(_Section):
    """Circuit breakers, one per dependency a search waits on: the cluster legs, aggregations, the passthrough,
    the reranker, the profile store (see breaker). The same limits apply to each; every serving process keeps its own breakers."""

    enabled: bool = True
    failures: int = Field(
        default=5, ge=1, le=1000, description="consecutive failures (a call past its deadline is one) that open it"
    )
    cooldown_s: float = Field(
        default=10.0, gt=0, le=3600, description="how long an open breaker refuses calls before letting probes through"
    )
    probes: int = Field(
        default=1, ge=1, le=100, description="calls let through at once when half-open: one success closes it"
    )


class ServiceSettings(_Section):
    host: Annotated[str, BeforeValidator(no_empty_host)] = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=2, ge=1)
    threads: int = Field(default=4, ge=1)
    timeout_s: int = Field(default=60, ge=1)
    max_size: int = Field(
        default=100,
        ge=1,
        description="the most hits one /search page may ask for (more is a 400 naming size); an Elasticsearch "
        "body's size is held, with its from, to service.max_result_window, as Elasticsearch holds it to its "
        "index.max_result_window: the pipeline ranks its candidates, and a page past them goes on with the other "
        "matches, best BM25 first, whatever its size",
    )
    max_query_length: int = Field(default=512, ge=1)
    max_fuzzy_terms: int = Field(
        default=1024,
        ge=1,
        description="a query on the embedded index with more fuzzy words than this (each word in each field it "
        "searches once) is a 400: each walks the field's term dictionary, about a millisecond on a catalogue of "
        "thousands (Lucene's max_clause_count, 1,024, plays this part in Elasticsearch, which enforces its own)",
    )
    max_wildcard_terms: int = Field(
        default=32,
        ge=1,
        description="a query on the embedded index with more wildcards than this (the * and ? of sof*, s?fa, a "
        "prefix or wildcard query, a prefix counting one; each pattern in each field it searches once) is a 400: "
        "one with a leading * walks the field's whole term dictionary, about 4 ms on 2,000 products "
        "(benchmarks/attack.py) and more on larger catalogues, and the automaton a pattern is searched with grows "
        "with its wildcards; a search box sends a few words over a few fields",
    )
    max_sloppy_phrases: int = Field(
        default=32,
        ge=1,
        description="a query on the embedded index with more phrases of three words or more with a slop than this "
        "(each phrase in each field it searches once) is a 400: tantivy matches each by carrying positions from "
        "word to word, milliseconds each on a catalogue of thousands (600 four-word phrases with a large slop, "
        "a 44 KB body, took 3.9 s on 20,000 products); a search box sends one or two",
    )
    max_suggest_words: int = Field(
        default=64,
        ge=1,
        description="a body's term and phrase suggesters on the embedded index look up at most this many words in "
        "all (each word of a suggester's text in each field it draws candidates from; past it, a 400): each walks "
        "the field's term dictionary for the terms sharing its first letters and reads the products its "
        'suggestions are written in; a shop\'s "did you mean" sends a few words over a few fields',
    )
    max_pair_facet_names: int = Field(
        default=200,
        ge=1,
        description="a facet over name/value pairs (Spryker's nested string-facet) counts at most this many of the "
        "catalogue's attribute names, those most products hold: each is one more filter and terms aggregation over "
        "the search's matches (serving/name_value_facets.py), and a shop page shows tens of facets",
    )
    max_result_window: int = Field(
        default=10_000,
        ge=1,
        description="from + size at most this (Elasticsearch's index.max_result_window, and its default)",
    )
    max_body_bytes: int = Field(default=64 * 1024, ge=1024, description="larger request bodies get a 413")
    queue_timeout_s: float = Field(
        default=5.0,
        gt=0,
        le=300,
        description="a request that waited longer than this for one of the worker's threads is answered at once "
        "with a 503 and Retry-After and never run (probes never wait; see asgi_bridge). 5 s of queue plus a search "
        "held to its stage deadlines is answered within the Elasticsearch Python client's default 10 s timeout; "
        "benchmarks/overload.py (200 shoppers, 2 workers x 4 threads, the CPU cross-encoder): 5 s shed 17% of "
        "searches and bounded the slowest answer at 7.1 s (37 s unbounded, p99 29 s), while 2 s shed 69%",
    )
    max_json_depth: int = Field(
        default=64,
        ge=2,
        le=256,
        description="request JSON nested deeper than this (arrays and objects) is a 400 naming where; "
        "the parsers and validators behind it recurse, and fail near 1,000 levels",
    )
    max_requests: int = Field(
        default=0,
        ge=0,
        description="a worker is replaced by a fresh one after this many requests (gunicorn's max_requests; 0: "
        "never). A worker that reranks on the CPU grows from about 1.0 to 1.8 GB in its first ten minutes and "
        "still about 130 MB in the next five (docs/BENCHMARKS.md, 'Worker memory with the CPU reranker'); "
        "replacing it returns that memory, at the price of a fresh worker's model load, so it is off unless a "
        "machine's memory needs it",
    )
    max_requests_jitter: int = Field(
        default=0,
        ge=0,
        description="up to this many requests more, drawn per worker, so that workers started together are not "
        "replaced together (gunicorn's max_requests_jitter)",
    )
    reload_grace_s: float = Field(
        default=30.0,
        gt=0,
        description="after POST /admin/reload, the old indexes close when their last request "
        "ends or after this long, whichever is first",
    )
    cache_size: int = Field(
        default=1024,
        ge=0,
        description="search results cached per worker for repeated (query, filters, page, settings) on one "
        "index version, least recently used dropped first; 0: no cache (see serving/result_cache.py)",
    )
    cache_ttl_s: float = Field(default=60.0, gt=0, description="a cached search result is recomputed after this long")
    ubi_log_path: SettingPath | None = Field(
        default=None,
        description="UBI query and event log (NDJSON, one file per worker: ubi.<pid>.ndjson); unset: not logged",
    )
    ubi_log_max_bytes: int = Field(
        default=100 * 1024 * 1024,
        ge=1024,
        description="rotate a UBI file past this size (between batches: a request's batch is kept whole in one file, "
        "which it may pass by that batch)",
    )
    ubi_log_backups: int = Field(default=10, ge=0, description="rotated UBI files kept per worker")
    ubi_application: str = Field(
        default="search-rerank",
        min_length=1,
        description="the UBI 'application' of query records, and of events that name none",
    )
    aggregations_timeout_s: float = Field(
        default=2.0,
        gt=0,
        description="cluster backends: past this an Elasticsearch-compatible search answers "
        "its hits without aggregations, and says so (search_rerank.degraded.aggregations)",
    )
    highlight_timeout_s: float = Field(
        default=1.0,
        gt=0,
        description="embedded backend: highlighting past this answers the hits left without highlights, and says so "
        "(search_rerank.degraded.highlight = timeout); a page of ten hits takes milliseconds, one of 10,000 with "
        "every field asked took 8 s",
    )
    ready_timeout_s: float = Field(
        default=1.0,
        gt=0,
        le=30,
        description="GET /ready waits at most this for its check, then answers 'not ready' (timeout); one check "
        "runs at a time per worker",
    )
    ready_cache_s: float = Field(
        default=2.0, ge=0, le=60, description="GET /ready answers a check this recent without checking again"
    )
    passthrough: bool = Field(
        default=True,
        description="cluster backends: Elasticsearch requests that are not searches (_mapping, "
        "_count, _cat, ...) go to the cluster with the service's credentials; false: a 501 (see passthrough.py)",
    )
    passthrough_writes: bool = Field(
        default=False,
        description="also pass through requests off the read allow-list, which can change the cluster "
        "(PUT, DELETE, POST to other than read-only endpoints); off: a 403. Paths that are not "
        "canonical are a 400 either way (see passthrough.py)",
    )
    max_msearch_searches: int = Field(
        default=50,
        ge=1,
        description="searches one _msearch may hold (each runs the whole pipeline); more is a 400. Searchkit and "
        "Search UI send one search per disjunctive facet and one for the hits, so a page with 40 facets fits",
    )
    max_msearch_hits: int = Field(
        default=10_000,
        ge=1,
        description="hits one _msearch (or _reactivesearch request) may ask in all, from + size summed over its "
        "searches; more is a 400 before any runs. Each search alone is held to max_result_window, but 50 searches "
        "of 10,000 hits took a minute of CPU and 600 MB; a shop page asks one page of hits and size-0 facets",
    )
    msearch_budget_s: float = Field(
        default=3.0,
        gt=0,
        description="time one _msearch (or _reactivesearch request) may spend before its searches go without "
        "their optional stages (the "
        "reranker, a dense leg beside the lexical one, the embedded index's highlights): a search begun after it is answered without them, "
        "marked degraded budget_spent, and one begun before waits for them at most what is left. 5 s of queue "
        "(queue_timeout_s) plus 3 s, plus the rest of 50 searches on the lexical leg (a few ms each), is answered "
        "within the Elasticsearch Python client's default 10 s timeout, where 50 reranks (0.8 s each on a CPU) "
        "took 40 s; 3 s holds a page's search for hits (one rerank) and its size-0 facet searches (no rerank)",
    )
    passthrough_concurrency: int = Field(
        default=2,
        ge=1,
        description="requests per process the passthrough has with the cluster at once; one more gets an "
        "immediate 503 (passthrough_busy), so that slow requests to the cluster cannot take every thread "
        "searches need (keep it below service.threads)",
    )
    max_open_points_in_time: int = Field(
        default=50,
        ge=1,
        description="points in time per process the passthrough may have opened on the cluster and not seen "
        "closed or expired (each kept alive up to 5 minutes, pinning the index's segments; OpenSearch caps them "
        "per node, search.max_open_pit_context, 300): one more is an immediate 429 until one ends",
    )
    interleave_with: SettingPath | None = Field(
        default=None,
        description="settings file of a second ranking (B, e.g. tune's best.toml) to compare with the "
        "served one (A) by team-draft interleaving; its fusion, rerank, longtail sections and candidates per leg are "
        "used, on the served indexes and models (see interleave_serving)",
    )
    interleave_share: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="share of shoppers (UBI client id, else session id, else query) "
        "answered with the interleaved list when interleave_with is set; the X-Search-Rerank-Interleave header "
        "(on/off) decides per request",
    )

    index_names: tuple[str, ...] = Field(
        default=("products",),
        description="index names (or aliases) that Elasticsearch-compatible searches may name in the URL or an "
        "_msearch header, besides _all and, with a cluster backend, lexical.index; any other gets Elasticsearch's "
        "404 index_not_found_exception",
    )
    field_aliases: dict[str, str] = Field(
        default_factory=dict,
        description="a front end's field names onto the product's (e.g. {'color.keyword' = 'attributes.color', "
        "'brand.keyword' = 'brand'}), applied to queries, filters, aggregations, sort and highlight fields of "
        "Elasticsearch-compatible searches, so a front end configured for a shop's previous index works unedited; "
        "a name aliased to '' is a field the product lacks (left out of fields lists; a clause on it matches nothing), "
        "one aliased to '=<value>' a field every product holds with that value (a term on it matches all or none), "
        "a nested path aliased to '{facet-name}' Spryker-style facet-name/facet-value pairs (serving/field_aliases.py)",
    )

    cors_allow_origins: tuple[str, ...] = Field(
        default=(),
        description="origins whose pages may call the service from a browser (Elasticsearch's "
        "http.cors.allow-origin): an origin ('https://shop.example', scheme, host and port only), '*' for any, or "
        "a regular expression between slashes, matched against the whole origin ('/https://.*\\.shop\\.example/'). "
        "Empty (the default): no CORS headers, so only pages of the service's own origin (or of one reverse proxy "
        "in front of it) can read its answers, as with Elasticsearch's http.cors.enabled off",
    )
    cors_allow_credentials: bool = Field(
        default=False,
        description="let those pages send cookies and HTTP authentication (Elasticsearch's http.cors.allow-credentials); "
        "needs origins named, not '*', since a browser then refuses the wildcard and answering any origin by name "
        "would let every site read what a shopper's credentials unlock",
    )
    cors_max_age_s: int = Field(
        default=7200,
        ge=0,
        le=86_400,
        description="how long a browser may keep a preflight's answer; 7200 s is the most Chromium keeps one",
    )

    @property
    def address(self) -> str:
        """``host:port`` as gunicorn binds it and a URL names it: an IPv6 host in brackets (``[::1]:8000``), or
        its colons would be read as the port's."""
        host = f"[{self.host}]" if ":" in self.host and not self.host.startswith("[") else self.host
        return f"{host}:{self.port}"

    @field_validator("index_names")
    @classmethod
    def _index_names_valid(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        for name in names:
            if not re.fullmatch(INDEX_NAME, name):
                raise ValueError(f"{name!r} is not an index name (lowercase letters, digits, '.', '_', '-')")
        return names

    @field_validator("cors_allow_origins")
    @classmethod
    def _origins_valid(cls, origins: tuple[str, ...]) -> tuple[str, ...]:
        for origin in origins:
            if len(origin) > 2 and origin.startswith("/") and origin.endswith("/"):
                try:
                    re.compile(origin[1:-1])
                except re.error as exc:
                    raise ValueError(f"{origin!r} is not a regular expression: {exc}") from None
            elif origin != "*" and not re.fullmatch(ORIGIN, origin):
                raise ValueError(
                    f"{origin!r} is not an origin: scheme://host[:port] with no path ('https://shop.example'), "
                    "'*', or a /regular expression/"
                )
        return origins

    @model_validator(mode="after")
    def _credentials_need_named_origins(self) -> ServiceSettings:
        if self.cors_allow_credentials and "*" in self.cors_allow_origins:
            raise ValueError(
                "service.cors_allow_credentials needs the origins named in service.cors_allow_origins, not '*'"
            )
        return self

    @model_validator(mode="after")
    def _interleave_needs_b(self) -> ServiceSettings:
        if self.interleave_share > 0 and self.interleave_with is None:
            raise ValueError(
                f"service.interleave_share={self.interleave_share} needs service.interleave_with, the "
                "settings file of the ranking to interleave with"
            )
        return self


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", frozen=True)

    index_dir: SettingPath = Path("indexes/default")
    models_dir: SettingPath = Path("models")
    """The model registry: one directory per trained model, each with its model card."""
    lexical: LexicalSettings = Field(default_factory=LexicalSettings)
    dense: DenseSettings = Field(default_factory=DenseSettings)
    fusion: FusionSettings = Field(default_factory=FusionSettings)
    rerank: RerankSettings = Field(default_factory=RerankSettings)
    ltr: LtrSettings = Field(default_factory=LtrSettings)
    longtail: LongTailSettings = Field(default_factory=LongTailSettings)
    diversity: DiversitySettings = Field(default_factory=DiversitySettings)
    exposure_control: ExposureControlSettings = Field(default_factory=ExposureControlSettings)
    personalisation: PersonalisationSettings = Field(default_factory=PersonalisationSettings)
    reco: RecoSettings = Field(default_factory=RecoSettings)
    service: ServiceSettings = Field(default_factory=ServiceSettings)
    breaker: BreakerSettings = Field(default_factory=BreakerSettings)

    @model_validator(mode="after")
    def _engine_knn_needs_a_cluster(self) -> Settings:
        if self.dense.backend == "engine" and self.lexical.backend not in SERVER_BACKENDS:
            raise ValueError(
                f"dense.backend='engine' runs the dense leg's kNN in the lexical leg's cluster index, but "
                f"lexical.backend is {self.lexical.backend!r}; set lexical.backend to one of "
                f"{list(SERVER_BACKENDS)} (with lexical.url), or dense.backend to 'faiss'"
            )
        return self

    @model_validator(mode="after")
    def _a_lone_lexical_leg_needs_a_weight(self) -> Settings:
        if not self.dense.enabled and self.fusion.weights.get("lexical", 0.0) == 0:
            raise ValueError(
                "fusion.weights.lexical is 0 with dense.enabled false: the lexical leg is fused alone, so every "
                "product would score alike; give it a positive weight"
            )
        return self

    @model_validator(mode="after")
    def _cluster_profile_store_needs_a_cluster(self) -> Settings:
        if self.personalisation.store in SERVER_BACKENDS and not self.lexical.url:
            raise ValueError(
                f"personalisation.store={self.personalisation.store!r} keeps profiles in the cluster at "
                "lexical.url, which is not set; set lexical.url (and its credentials), or personalisation.store "
                "to 'sqlite'"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Values given win over the environment: a copy validated again (override) or a flag must not be undone by
        # a variable read again. load_settings puts the environment over the file itself.
        return init_settings, env_settings

    def offline(self) -> Settings:
        """For evaluation and training: no stage deadlines, so a busy machine changes timings, never results."""
        hour = {"timeout_s": 3600.0}
        return self.override(lexical=hour, dense=hour, rerank=hour)

    def override(self, **sections: dict[str, Any]) -> Settings:
        """A copy with some section fields replaced (per-request overrides), validated again."""
        data = self.model_dump()
        for name, values in sections.items():
            if name not in data or not isinstance(data[name], dict):
                raise ConfigError(f"unknown settings section {name!r}")
            data[name] = {**data[name], **values}
        try:
            return Settings.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(str(exc)) from exc


def read_settings_file(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"settings file {path} does not exist")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")  # Windows editors start UTF-8 files with a byte-order mark
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"{path}:{line}: not UTF-8 (byte {data[exc.start]:#04x}); save the file as UTF-8") from None
    try:
        if path.suffix == ".toml":
            return tomllib.loads(text)
        if path.suffix == ".json":
            data = json_text.loads(text)
            if not isinstance(data, dict):
                raise ConfigError(f"{path}: settings must be a JSON object of sections, not a {type(data).__name__}")
            return data
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, json_text.JsonTextError) as exc:
        raise ConfigError(f"{path}: cannot parse: {exc}") from None
    except RecursionError:  # TOML's reader recurses once per level: thousands of [ or { are not settings
        raise ConfigError(f"{path}: cannot parse: nested too deep") from None
    raise ConfigError(f"{path}: settings files must be .toml or .json")


NOT_SETTINGS = frozenset(
    {"SETTINGS", "ADMIN_TOKEN", "IDENTITY_KEY", "LOG_LEVEL", "RELOAD_FILE", "EXPOSURE_FILE", "MADE_DIRS"}
)
"""The ``SEARCH_RERANK_*`` variables that entry points read besides settings: the settings file, the admin
token, the key of signed shopper ids, gunicorn's log level, the files gunicorn's workers share and the directories made for them."""


def setting_variables() -> list[str]:
    """Every variable name a setting is read from: ``SEARCH_RERANK_<FIELD>`` and ``SEARCH_RERANK_<SECTION>__<FIELD>``."""
    names = []
    for name, info in Settings.model_fields.items():
        names.append(f"{ENV_PREFIX}{name.upper()}")
        if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel):
            names += [f"{ENV_PREFIX}{name.upper()}__{field.upper()}" for field in info.annotation.model_fields]
    return names


def check_variables(environ: Mapping[str, str]) -> None:
    """Refuse a ``SEARCH_RERANK_*`` variable that names no setting, which pydantic-settings would ignore.

    The likely slip is one underscore for the two between a section and its field
    (``SEARCH_RERANK_LEXICAL_URL``): ignored, the service would run on defaults
    (the embedded index, not the cluster) without a word.
    """
    known = setting_variables()
    allowed = {*known, *(ENV_PREFIX + name for name in NOT_SETTINGS)}
    for variable in sorted(environ):
        name = variable.upper()
        if not name.startswith(ENV_PREFIX) or name in allowed:
            continue
        if any(name.startswith(f"{setting}__") for setting in known):  # a key inside a dict setting
            continue
        close = difflib.get_close_matches(name.removeprefix(ENV_PREFIX), [k.removeprefix(ENV_PREFIX) for k in known], 1)
        hint = f"; did you mean {ENV_PREFIX}{close[0]}?" if close else ""
        raise ConfigError(
            f"environment variable {variable} names no setting{hint} (a section and its field are joined by two "
            f"underscores: {ENV_PREFIX}FUSION__METHOD); rename it, or remove it if it is not meant for search_rerank"
        )


def merged(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``over`` merged in: objects key by key, any other value from ``over``."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Defaults, then the file at ``path``, then the environment, then ``overrides`` (the CLI's flags); errors name
    the field or variable."""
    check_variables(os.environ)
    data: dict[str, Any] = read_settings_file(path) if path is not None else {}
    try:
        data = merged(
            merged(data, EnvSettingsSource(Settings)()), {k: v for k, v in overrides.items() if v is not None}
        )
        return Settings(**data)
    except ValidationError as exc:
        source = Path(path) if path is not None else None
        raise ConfigError(f"invalid settings:\n{describe(exc, Settings, source, os.environ, ENV_PREFIX)}") from None
    except SettingsError as exc:  # a list, map or section (SEARCH_RERANK_LEXICAL) given in a variable, not as JSON
        section = re.search(r'field "([^"]+)"', str(exc))
        if section is None:
            raise ConfigError(str(exc)) from None
        raise ConfigError(f"invalid settings:\n{unparsed(section[1], Settings, os.environ, ENV_PREFIX)}") from None
