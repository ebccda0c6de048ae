"""One ranking path: ``SearchPipeline.rank_from`` ranks retrieved legs exactly as a search does.

A hybrid index with the tiny cross-encoder and the long-tail stage on, so
that every stage runs on the lists compared.
"""

import json
import threading

import pytest

from search_rerank.core.filters import Filters
from search_rerank.core.fusion import CODE_ANCHOR
from search_rerank.core.identifiers import is_code
from search_rerank.core.personalise import NO_PROFILE
from search_rerank.core.pipeline import NO_HITS_ASKED, SearchPipeline
from search_rerank.core.profile import ShopperProfile, facet_values
from search_rerank.core.rerank import CrossEncoderReranker
from search_rerank.core.retrieval import DENSE, LEXICAL, Reranker, Stage
from search_rerank.core.settings import Settings
from search_rerank.data.generate import GeneratorConfig, generate
from search_rerank.data.loaders import iter_catalog
from search_rerank.indexing.indexes import build_index, open_pipeline

QUERIES = ("sofa", "oak table", "lamp")


@pytest.fixture(scope="module")
def settings(tmp_path_factory, tiny_bert_dir, tiny_cross_encoder_dir) -> Settings:
    root = tmp_path_factory.mktemp("rank-from")
    generate(root / "data", GeneratorConfig(products=300, queries=10, seed=4, workers=1), progress=False)
    settings = Settings(
        index_dir=root / "idx",
        lexical={"candidates": 30},
        dense={"model": str(tiny_bert_dir), "device": "cpu", "candidates": 30},
        rerank={"model": str(tiny_cross_encoder_dir), "device": "cpu", "window": 15, "require_card": False},
        longtail={"enabled": True},
    )
    build_index(iter_catalog(root / "data"), settings, progress=False)
    return settings.offline()


@pytest.fixture(scope="module")
def pipeline(settings):
    pipeline = open_pipeline(settings)
    pipeline.reranker = CrossEncoderReranker(settings.rerank)
    pipeline.warm_up()
    yield pipeline
    pipeline.close()


def ranked(candidates):
    return [(c.product_id, c.score) for c in candidates]


def test_rank_from_ranks_a_retrieval_as_the_search_does(pipeline, settings):
    for query in QUERIES:
        searched = pipeline.run(query, size=100, settings=settings).ranking
        from_retrieval = pipeline.rank_from(pipeline.retrieve(query, None, settings), settings)
        assert {Stage.FUSION, Stage.RERANK, Stage.LONGTAIL} <= set(from_retrieval.stages)
        assert ranked(from_retrieval.candidates) == ranked(searched.candidates)
        assert {name: ranked(hits) for name, hits in from_retrieval.stages.items()} == {
            name: ranked(hits) for name, hits in searched.stages.items()
        }


def test_a_search_asking_for_no_hits_counts_the_same_matches_without_ordering_them(pipeline, settings):
    for query in QUERIES:
        shown = pipeline.run(query, size=10, settings=settings)
        counted = pipeline.run(query, size=0, settings=settings)
        assert counted.hits == []
        assert counted.total == shown.total
        assert Stage.RERANK in shown.ranking.stages
        assert not {Stage.RERANK, Stage.LONGTAIL} & set(counted.ranking.stages)
        assert counted.ranking.skipped[Stage.RERANK] == NO_HITS_ASKED


def test_rank_from_a_deeper_retrieval_ranks_as_a_search_at_its_own_depth(pipeline, settings):
    deep = settings.override(lexical={"candidates": 80}, dense={"candidates": 80})
    shallow = settings.override(lexical={"candidates": 12}, dense={"candidates": 20})
    for query in QUERIES:
        retrieved = pipeline.retrieve(query, None, deep)
        ranking = pipeline.rank_from(retrieved, shallow)
        assert len(ranking.stages[LEXICAL]) == 12 and len(ranking.stages[DENSE]) == 20
        assert ranked(ranking.candidates) == ranked(pipeline.run(query, size=100, settings=shallow).ranking.candidates)


def test_rank_from_leaves_the_retrieved_lists_as_they_were(pipeline, settings):
    retrieved = pipeline.retrieve("sofa", None, settings)
    before = {name: ranked(hits) for name, hits in retrieved.stages.items()}
    pipeline.rank_from(retrieved, settings.override(lexical={"candidates": 5}))
    assert {name: ranked(hits) for name, hits in retrieved.stages.items()} == before
    assert retrieved.candidates == [] and set(retrieved.stages) == {LEXICAL, DENSE}


def test_rank_from_leaves_out_the_dense_list_when_the_settings_disable_it(pipeline, settings):
    lexical_only = settings.override(dense={"enabled": False})
    ranking = pipeline.rank_from(pipeline.retrieve("sofa", None, settings), lexical_only)
    assert DENSE not in ranking.stages and ranking.skipped[DENSE] == "dense leg disabled in settings"
    assert ranked(ranking.candidates) == ranked(
        pipeline.run("sofa", size=100, settings=lexical_only).ranking.candidates
    )


def test_the_cross_encoder_is_a_reranker_the_pipeline_takes(pipeline):
    assert isinstance(pipeline.reranker, Reranker)


def test_stage_names_serialise_as_the_plain_strings_they_always_were(pipeline, settings):
    ranking = pipeline.run("sofa", size=5, settings=settings).ranking
    wire = json.loads(json.dumps({"stages": list(ranking.stages), "timings_ms": ranking.timings_ms}))
    assert wire["stages"] == ["lexical", "dense", "fusion", "rerank", "longtail"]
    assert set(wire["timings_ms"]) == {"lexical", "dense", "fusion", "rerank", "longtail", "total"}
    assert [str(stage) for stage in Stage] == [
        "lexical",
        "dense",
        "fusion",
        "rerank",
        "ltr",
        "longtail",
        "diversity",
        "personal",
    ]


def test_a_pipeline_refuses_a_leg_that_is_not_a_stage(pipeline, settings):
    with pytest.raises(ValueError, match="valid: \\['lexical', 'dense'\\]"):
        SearchPipeline(settings, {"sparse": pipeline.legs[LEXICAL]}, pipeline.store)


def brand_lover(pipeline, settings, query):
    """A warm profile that loves the brand of the lowest product in the top 10 (so it has room to rise)."""
    ranking = pipeline.rank_from(pipeline.retrieve(query, None, settings), settings)
    bottom = ranking.candidates[9].product_id
    brand = facet_values(pipeline.store.get([bottom])[bottom])["brand"][0]
    vector = pipeline.legs[DENSE].vectors_of([bottom])[bottom]
    return bottom, ShopperProfile(key="user:u", affinities={"brand": {brand: 1.0}}, vector=vector, events=5.0)


def test_rank_from_personalises_after_the_long_tail_stage_for_a_warm_profile(pipeline, settings):
    retrieved = pipeline.retrieve("sofa", None, settings)
    bottom, profile = brand_lover(pipeline, settings, "sofa")
    ranking = pipeline.rank_from(retrieved, settings, profile)
    assert list(ranking.stages)[-2:] == [Stage.LONGTAIL, Stage.PERSONAL]
    position = [c.product_id for c in ranking.candidates].index(bottom)
    assert position < 9 and ranking.candidates[position].features["personal"] > 0


def test_rank_from_without_a_profile_skips_personalisation_and_ranks_as_before(pipeline, settings):
    ranking = pipeline.rank_from(pipeline.retrieve("sofa", None, settings), settings)
    assert ranking.skipped[Stage.PERSONAL] == NO_PROFILE and Stage.PERSONAL not in ranking.stages
    assert ranked(ranking.candidates) == ranked(ranking.stages[Stage.LONGTAIL])


def test_rank_from_keeps_the_order_when_personalisation_fails(pipeline, settings):
    broken = ShopperProfile(key="user:u", affinities={"brand": None}, events=5.0)  # type: ignore[dict-item]
    ranking = pipeline.rank_from(pipeline.retrieve("sofa", None, settings), settings, broken)
    assert ranking.degraded[Stage.PERSONAL] == "error"
    assert ranked(ranking.candidates) == ranked(ranking.stages[Stage.LONGTAIL])


def test_run_passes_the_profile_to_the_personalisation_stage(pipeline, settings):
    bottom, profile = brand_lover(pipeline, settings, "lamp")
    result = pipeline.run("lamp", size=10, settings=settings, profile=profile)
    assert Stage.PERSONAL in result.ranking.stages
    assert bottom in [hit.product.id for hit in result.hits[:9]]


def test_product_facets_follow_an_in_place_update_of_the_record(pipeline):
    pid = next(iter(pipeline.store)).id
    product = pipeline.store.get([pid])[pid]
    assert pipeline.product_facets([pid])[pid]["brand"] == (product.brand.lower(),)
    pipeline.store.add([product.model_copy(update={"brand": "Renamed Brand"})])
    try:
        assert pipeline.product_facets([pid])[pid]["brand"] == ("renamed brand",)
    finally:
        pipeline.store.add([product])


def a_model_number(settings) -> str:
    titles = (product.title for product in iter_catalog(settings.index_dir.parent / "data"))
    return next(token for title in titles for token in title.split() if is_code(token))


def test_a_search_for_a_model_number_keeps_the_lexical_legs_order(pipeline, settings):
    code = a_model_number(settings)
    plain = settings.override(longtail={"enabled": False}, dense={"code_anchors": False})
    ranking = pipeline.run(code, size=100, settings=plain).ranking
    lexical = {c.product_id: c.score for c in ranking.stages[LEXICAL]}
    assert lexical, f"no lexical hit for {code!r}"
    fused = ranking.stages[Stage.FUSION]
    in_bm25_order = [lexical[c.product_id] for c in fused if c.product_id in lexical]
    assert in_bm25_order == sorted(in_bm25_order, reverse=True)  # ties in any order
    above_the_weakest = sum(score > min(lexical.values()) for score in lexical.values())
    assert all(c.product_id in lexical for c in fused[:above_the_weakest])  # no dense-only guess among them


def test_a_search_for_a_model_number_searches_the_dense_leg_around_the_product_it_names(pipeline, settings):
    code = a_model_number(settings)
    retrieved = pipeline.retrieve(code, None, settings)
    named = [
        c.product_id
        for c in retrieved.stages[LEXICAL]
        if code in pipeline.store.get([c.product_id])[c.product_id].title
    ]
    assert retrieved.anchor == named[0]
    dense = pipeline.legs[DENSE]
    around = dense.search_vector(dense.vectors_of([retrieved.anchor])[retrieved.anchor], settings.dense.candidates)
    assert [c.product_id for c in retrieved.stages[DENSE]] == [pid for pid, _ in around]


def test_a_search_around_a_model_numbers_product_is_fused_with_the_anchored_weights(pipeline, settings):
    ranking = pipeline.rank_from(pipeline.retrieve(a_model_number(settings), None, settings), settings)
    assert all(c.features[CODE_ANCHOR] == 1.0 for c in ranking.stages[Stage.FUSION])


def test_a_ranked_search_names_the_product_its_dense_leg_searched_around(pipeline, settings):
    code = a_model_number(settings)
    assert pipeline.run(code, settings=settings).ranking.anchor == pipeline.retrieve(code, None, settings).anchor


def test_a_model_number_no_product_writes_leaves_the_dense_leg_on_its_text(pipeline, settings):
    retrieved = pipeline.retrieve("zq-90817x", None, settings)
    assert retrieved.anchor is None
    assert [c.product_id for c in retrieved.stages[DENSE]] == [
        c.product_id for c in pipeline.legs[DENSE].search("zq-90817x", settings.dense.candidates)
    ]


def test_with_code_anchors_off_a_model_number_searches_the_dense_leg_by_its_text(pipeline, settings):
    retrieved = pipeline.retrieve(a_model_number(settings), None, settings.override(dense={"code_anchors": False}))
    assert retrieved.anchor is None


def test_the_dense_leg_around_a_model_numbers_product_keeps_to_the_searchs_filters(pipeline, settings):
    code = a_model_number(settings)
    anchor = pipeline.retrieve(code, None, settings).anchor
    category = pipeline.store.get([anchor])[anchor].category
    filters = Filters(category=tuple(category[:1]))
    retrieved = pipeline.retrieve(code, filters, settings)
    products = pipeline.store.get([c.product_id for c in retrieved.stages[DENSE]])
    assert retrieved.anchor == anchor and products
    assert all(p.category[:1] == category[:1] for p in products.values())


class HeldAround:
    """The dense leg, its search around a product held until ``release`` is set (a cluster that does not answer
    the check of a request's filters)."""

    def __init__(self, leg):
        self.leg = leg
        self.name = leg.name
        self.release = threading.Event()

    def search(self, query, k, filters=None):
        return self.leg.search(query, k, filters)

    def search_around(self, product_id, k, filters=None):
        self.release.wait(60)
        return self.leg.search_around(product_id, k, filters)

    def __getattr__(self, name):
        return getattr(self.leg, name)


def test_a_search_around_a_code_past_the_dense_legs_deadline_leaves_the_texts_list(pipeline, settings):
    held = HeldAround(pipeline.legs[DENSE])
    code = a_model_number(settings)
    try:
        retrieved = pipeline.with_legs({**pipeline.legs, DENSE: held}).retrieve(
            code, None, settings.override(dense={"timeout_s": 3.0})
        )
    finally:
        held.release.set()
    assert retrieved.anchor is None and retrieved.degraded == {}
    assert [c.product_id for c in retrieved.stages[DENSE]] == [
        c.product_id for c in pipeline.legs[DENSE].search(code, settings.dense.candidates)
    ]


def test_a_stage_error_names_the_stage_by_its_plain_name():
    from search_rerank.core.errors import StageError

    assert str(StageError(Stage.LEXICAL, "timed out")) == "stage 'lexical' failed: timed out"
