"""The HTTP API's request and response models; validation and the OpenAPI document both come from them.

Requests are validated here rather than in the routes so that a bad field is
reported by its path in the body (pydantic's ``loc``) and the published schema
cannot drift from what the service accepts. Limits that depend on the
deployment (``service.max_size`` ...) arrive as validation context.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from ..core.filters import Filters
from ..core.pipeline import Hit, SearchResult
from ..core.retrieval import Stage
from ..core.settings import ServiceSettings, Settings
from .ubi import ShopperRef, UserRef

NonNegative = Annotated[float, Field(ge=0.0)]


class _Strict(BaseModel):
    """Unknown fields are errors: a misspelt override must not be silently ignored."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class LegOverrides(_Strict):
    candidates: int | None = Field(
        default=None,
        ge=1,
        le=10_000,
        description="candidates this leg retrieves; above the served value only with the admin token",
    )


class FusionOverrides(_Strict):
    method: Literal["rrf", "linear"] | None = None
    rank_constant: float | None = Field(default=None, ge=0.0)
    weights: dict[Literal["lexical", "dense"], NonNegative] | None = None


class RerankOverrides(_Strict):
    window: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description="top candidates the cross-encoder scores; above the served value only with the admin token",
    )


class LongTailOverrides(_Strict):
    enabled: bool | None = None
    method: Literal["boost", "xquad"] | None = None
    strength: float | None = Field(default=None, ge=0.0, le=10.0)
    gate: float | None = Field(default=None, ge=0.0, le=1.0)
    xquad_lambda: float | None = Field(default=None, ge=0.0, le=1.0)
    target: Literal["long_tail", "tail"] | None = None


class DiversityOverrides(_Strict):
    enabled: bool | None = None
    lambda_: float | None = Field(default=None, ge=0.0, le=1.0, description="MMR: relevance against variety")
    depth: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description="top results MMR re-ranks; above the served value only with the admin token",
    )


class PersonalisationOverrides(_Strict):
    enabled: bool | None = Field(default=None, description="false: rank this search as for an anonymous shopper")
    vector_weight: float | None = Field(default=None, ge=0.0, le=10.0)
    cap: float | None = Field(default=None, ge=0.0, le=10.0, description="the most the stage adds to a score")
    max_rise: int | None = Field(default=None, ge=0, le=1000, description="the most places a product may move up")


class Overrides(_Strict):
    """The settings a single request may change; the rest (models, timeouts, indexes) belong to the deployment.

    Those that set how much work a search does (candidates, rerank window, diversity depth) may be lowered by
    anyone and raised above the served value only with the admin token (serving.cost_limits).
    """

    lexical: LegOverrides = Field(default_factory=LegOverrides)
    dense: LegOverrides = Field(default_factory=LegOverrides)
    fusion: FusionOverrides = Field(default_factory=FusionOverrides)
    rerank: RerankOverrides = Field(default_factory=RerankOverrides)
    longtail: LongTailOverrides = Field(default_factory=LongTailOverrides)
    diversity: DiversityOverrides = Field(default_factory=DiversityOverrides)
    personalisation: PersonalisationOverrides = Field(default_factory=PersonalisationOverrides)

    def apply(self, settings: Settings) -> Settings:
        """``settings`` with the given fields replaced; raises ConfigError if the mix is invalid."""
        sections = {name: values for name, values in self.model_dump(exclude_none=True).items() if values}
        return settings.override(**sections) if sections else settings


def _limits(info: ValidationInfo) -> ServiceSettings:
    return (info.context or {}).get("limits") or ServiceSettings()


class SearchRequest(_Strict):
    query: str = Field(min_length=1, description="what the shopper typed")
    filters: Filters = Field(default_factory=Filters)
    size: int = Field(default=10, ge=0)
    from_: int = Field(default=0, ge=0, alias="from", description="offset of the first hit (paging)")
    explain: bool = Field(default=False, description="add what every stage said about each hit")

    @field_validator("explain", mode="before")
    @classmethod
    def _true_or_false(cls, value: Any) -> Any:
        """true or false (or their text, as Elasticsearch reads a flag); 1, "yes" and "on" are no answer here."""
        if isinstance(value, bool) or value in ("true", "false"):
            return value
        raise ValueError("expected true or false")

    stages: bool = Field(
        default=False,
        description="add each stage's ranking of this page (ids) and their products, "
        "to compare what BM25, fusion and the final ranking put here",
    )
    overrides: Overrides = Field(default_factory=Overrides)
    user_id: UserRef = Field(
        default=None,
        description="the signed-in shopper: their long-term profile personalises the ranking (signed, when the service "
        "has an identity key: the id, a dot and its HMAC-SHA256 in hex)",
    )
    session_id: ShopperRef = Field(
        default=None, description="the shopping session: its profile personalises the ranking (with user_id's)"
    )

    @field_validator("query")
    @classmethod
    def _query_length(cls, value: str, info: ValidationInfo) -> str:
        limit = _limits(info).max_query_length
        if len(value) > limit:
            raise ValueError(f"must be at most {limit} characters")
        return value

    @field_validator("size", "from_", mode="before")
    @classmethod
    def _not_a_boolean(cls, value: object) -> object:
        """pydantic reads true as 1: a size of true is a front end's mistake, refused as Elasticsearch refuses it."""
        if isinstance(value, bool):
            raise ValueError("expected a number, not a boolean")
        return value

    @field_validator("size")
    @classmethod
    def _size_limit(cls, value: int, info: ValidationInfo) -> int:
        limit = _limits(info).max_size
        if value > limit:
            raise ValueError(f"must be <= {limit}")
        return value

    @field_validator("from_")
    @classmethod
    def _window_limit(cls, value: int, info: ValidationInfo) -> int:
        limit = _limits(info).max_result_window
        if value + info.data.get("size", 0) > limit:
            raise ValueError(f"from + size must be <= {limit}")
        return value


# The stages whose own order a caller may compare with the final one; "final" is the page itself.
STAGE_LISTS = (Stage.LEXICAL, Stage.DENSE, Stage.FUSION)


class HitOut(BaseModel):
    id: str
    score: float
    long_tail: bool = Field(description="the product is outside the catalog's popular head")
    product: dict[str, Any]
    explanation: dict[str, Any] | None = None

    @classmethod
    def of(cls, hit: Hit, explain: bool) -> HitOut:
        return cls(
            id=hit.product.id,
            score=hit.candidate.score,
            long_tail=hit.long_tail,
            product=hit.product.to_record(),
            explanation=hit.explanation() if explain else None,
        )


def stage_lists(result: SearchResult, offset: int, size: int) -> dict[str, list[str]]:
    """The page's window of each stage's ranking; a stage that did not run has no list."""
    stages = result.ranking.stages
    lists: dict[str, list[str]] = {
        name: [c.product_id for c in stages[name][offset : offset + size]] for name in STAGE_LISTS if name in stages
    }
    lists["final"] = [hit.product.id for hit in result.hits]
    return lists


class SearchMeta(BaseModel):
    query_id: str = Field(description="this search's UBI query id: send it with the events about these results")


class InterleavingMeta(BaseModel):
    method: Literal["team_draft"] = "team_draft"
    a: str = Field(description="ranking A: the served settings")
    b: str = Field(description="ranking B: the name of the settings file service.interleave_with names")
    teams: list[Literal["A", "B"]] = Field(description="per hit, the ranking that placed it")


class FallbackBlock(BaseModel):
    reason: Literal["no_results", "few_results", "low_similarity"] = Field(
        description="why the search's own results were judged too weak (settings reco.fallback_*)"
    )
    source: Literal["similar"] = "similar"
    hits: list[HitOut] = Field(description="related products, none of them on the search's page")


class SearchResponse(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    query: str
    total: int = Field(description="candidates ranked for this query (the union of the legs' lists)")
    from_: int = Field(alias="from")
    size: int
    hits: list[HitOut]
    degraded: dict[str, str] = Field(
        description="stages that failed or ran out of time, each with a stable reason code: timeout, "
        "cluster_unavailable, circuit_open, profile_store_unavailable or error (the detail is in the service's "
        "log, under the request id)"
    )
    skipped: dict[str, str] = Field(description="stages that did not run by configuration, and why")
    code_anchor: str | None = Field(
        default=None,
        description="the product the query named by its code, whose vector the dense leg searched by "
        "(dense.code_anchors): why the dense leg's products are the ones like it",
    )
    timings_ms: dict[str, float]
    meta: SearchMeta | None = Field(default=None, description="the search's identity as the service logged it")
    stages: dict[str, list[str]] | None = Field(
        default=None, description="with stages=true: this page's ids in the order of lexical, dense, fusion and final"
    )
    stage_products: dict[str, HitOut] | None = Field(
        default=None,
        description="with stages=true: every product in a stage list, with its final score, "
        "long-tail flag and explanation",
    )
    interleaving: InterleavingMeta | None = Field(
        default=None,
        description="present when the hits are ranking A and B interleaved by team draft "
        "(service.interleave_with; header X-Search-Rerank-Interleave)",
    )
    fallback: FallbackBlock | None = Field(
        default=None, description="related products, when the search found none or few relevant ones"
    )

    @classmethod
    def of(
        cls,
        result: SearchResult,
        *,
        offset: int,
        size: int,
        explain: bool,
        query_id: str | None = None,
        stages: dict[str, list[str]] | None = None,
        stage_hits: list[Hit] | None = None,
        interleaving: dict[str, Any] | None = None,
        fallback: FallbackBlock | None = None,
    ) -> SearchResponse:
        hits = [HitOut.of(hit, explain) for hit in result.hits]
        ranking = result.ranking
        # model_validate: the field's name on the wire is "from", a keyword that cannot be a keyword argument.
        return cls.model_validate(
            {
                "query": result.query,
                "total": result.total,
                "from": offset,
                "size": size,
                "hits": hits,
                "degraded": ranking.degraded,
                "skipped": ranking.skipped,
                "code_anchor": ranking.anchor,
                "timings_ms": {k: round(v, 3) for k, v in ranking.timings_ms.items()},
                "meta": SearchMeta(query_id=query_id) if query_id is not None else None,
                "stages": stages,
                "stage_products": None
                if stage_hits is None
                else {hit.product.id: HitOut.of(hit, explain=True) for hit in stage_hits},
                "interleaving": None if interleaving is None else InterleavingMeta(**interleaving),
                "fallback": fallback,
            }
        )


class FieldError(BaseModel):
    field: str = Field(description="dotted path of the offending field in the request body, or the header's name")
    message: str


class ErrorResponse(BaseModel):
    error: str
    message: str | None = None
    fields: list[FieldError] | None = None
    reason: str | None = Field(default=None, description="a stable reason code, e.g. ubi_write_failed on a 503")
