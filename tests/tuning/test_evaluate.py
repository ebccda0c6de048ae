"""Evaluation ranks every configuration the way the service would search with that configuration's settings."""

import pytest

from search_rerank.core.retrieval import DENSE, LEXICAL
from search_rerank.evaluation.evaluate import (
    DEPTH,
    MEASURES,
    Config,
    config_settings,
    evaluate,
    long_tail_share,
    relevance_metrics,
)
from search_rerank.indexing.indexes import open_pipeline


def test_an_evaluated_configuration_scores_as_the_service_searches_with_its_settings(hybrid_settings, dataset):
    queries, qrels = dataset.split("dev")
    judged = {qid: grades for qid, grades in qrels.items() if qid in queries}
    config = Config("hybrid-linear+longtail", (LEXICAL, DENSE), "linear", longtail=True)
    pipeline = open_pipeline(hybrid_settings.override(lexical={"candidates": DEPTH}, dense={"candidates": DEPTH}))
    try:
        row = evaluate(pipeline, queries, qrels, configs=[config], progress=False).row(config.name)
        served = config_settings(pipeline.settings.offline(), config)
        run = {
            qid: [
                (h.product.id, h.candidate.score)
                for h in pipeline.run(queries[qid].text, size=DEPTH, settings=served).hits
            ]
            for qid in judged
        }
        popularity = pipeline.store.popularity()
    finally:
        pipeline.close()
    per_query = relevance_metrics(judged, run)
    for measure in map(str, MEASURES):
        mean = sum(scores[measure] for scores in per_query.values()) / len(judged)
        assert row.metrics[measure] == pytest.approx(mean, abs=1e-12)
    ids = {qid: [pid for pid, _ in hits] for qid, hits in run.items()}
    assert row.metrics["lt_share@10"] == long_tail_share(ids, popularity, served.longtail.head_fraction)
