import pytest

from search_rerank.core.errors import ConfigError, DataError
from search_rerank.core.product import Product
from search_rerank.data.dataset import Dataset, Query


def make_dataset() -> Dataset:
    return Dataset(
        name="tiny",
        products=[Product(id="p1", title="oak desk")],
        queries={"q1": Query("q1", "desk"), "q2": Query("q2", "chair"), "q3": Query("q3", "lamp")},
        qrels={"dev": {"q1": {"p1": 2}}, "test": {"q2": {"p1": 0}, "q3": {"p1": 1}}},
    )


def test_split_returns_only_queries_judged_in_that_split():
    queries, qrels = make_dataset().split("test")
    assert sorted(queries) == ["q2", "q3"]
    assert qrels == {"q2": {"p1": 0}, "q3": {"p1": 1}}


def test_split_unknown_name_lists_available_splits():
    with pytest.raises(ConfigError, match="no split 'train'; available: dev, test"):
        make_dataset().split("train")


def test_dataset_rejects_judged_query_without_query_text():
    with pytest.raises(DataError, match="'q9'"):
        Dataset(name="bad", products=[], queries={}, qrels={"test": {"q9": {"p1": 1}}})


def test_dataset_whose_split_judges_no_product_of_its_catalog_warns_naming_the_ids_of_both(caplog):
    """Judgments written by pandas from a column with a gap come out as 1.0, 2.0: not one of them would match
    and every figure would be 0, without a word."""
    Dataset(
        name="shop",
        products=[Product(id="1", title="oak desk"), Product(id="2", title="brass lamp")],
        queries={"q1": Query("q1", "desk")},
        qrels={"test": {"q1": {"1.0": 2, "2.0": 0}}},
    )
    assert "split 'test' judges none of the 2 products" in caplog.text and "['1.0', '2.0']" in caplog.text


def test_dataset_judging_relevant_products_its_catalog_lacks_warns_with_their_count(caplog):
    """A catalogue export older than the judgments: those products cannot be found, by any configuration."""
    Dataset(
        name="shop",
        products=[Product(id="1", title="oak desk"), Product(id="2", title="brass lamp")],
        queries={"q1": Query("q1", "desk")},
        qrels={"test": {"q1": {"1": 2, "777": 1, "888": 0}}},
    )
    assert "split 'test': 1 of the 2 products it judges relevant are not in the catalog (e.g. ['777'])" in caplog.text


def test_dataset_whose_judged_products_are_all_in_its_catalog_does_not_warn(caplog):
    make_dataset()
    assert caplog.text == ""


def test_query_meta_cannot_be_changed_after_creation():
    query = Query("q1", "desk", {"query_class": "Desks"})
    with pytest.raises(TypeError):
        query.meta["query_class"] = "Chairs"  # type: ignore[index]


def test_query_meta_is_a_copy_of_the_callers_dict():
    meta = {"kind": "head"}
    query = Query("q1", "desk", meta)
    meta["kind"] = "tail"
    assert query.meta["kind"] == "head"
