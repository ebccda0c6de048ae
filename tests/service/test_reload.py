"""POST /admin/reload: a rebuilt index is served without a restart, and no search is dropped on the way."""

import shutil
import threading
import time
from itertools import chain

import pytest

from search_rerank.core.product import Product
from search_rerank.data.loaders import iter_catalog
from search_rerank.indexing.indexes import build_index, open_pipeline
from search_rerank.indexing.versions import IndexVersions
from search_rerank.serving import create_app
from search_rerank.serving import ops as serving_ops
from search_rerank.serving.reload_broadcast import RELOAD_FILE_ENV, ReloadBroadcast

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
NEW_PRODUCT = Product(id="new-quokka", title="Quokka plush toy", brand="Wombatco", category="Toys > Plush", price=19.0)


class Sleeping:
    """A real leg that blocks until released, so a request can be held in flight."""

    def __init__(self, leg):
        self.leg, self.name = leg, leg.name
        self.entered, self.release = threading.Event(), threading.Event()

    def warm_up(self):
        self.leg.warm_up()

    def search(self, query, k, filters=None):
        self.entered.set()
        self.release.wait(30)
        return self.leg.search(query, k, filters)


@pytest.fixture
def own_settings(settings, tmp_path):
    """A copy of the index that a test may rebuild or break, with deadlines that a held request stays within."""
    index_dir = tmp_path / "idx"
    shutil.copytree(settings.index_dir, index_dir)
    return settings.model_copy(
        update={
            "index_dir": index_dir,
            "lexical": settings.lexical.model_copy(update={"timeout_s": 30.0}),
        }
    )


@pytest.fixture
def admin_token(monkeypatch):
    monkeypatch.setenv("SEARCH_RERANK_ADMIN_TOKEN", TOKEN)


@pytest.fixture
def admin_client(own_settings, admin_token):
    return create_app(own_settings).test_client()


def hit_ids(client, query, **filters):
    response = client.post("/search", json={"query": query, "size": 5, "filters": filters})
    assert response.status_code == 200
    return [hit["id"] for hit in response.get_json()["hits"]]


def test_reload_is_disabled_when_no_token_is_configured(client, monkeypatch):
    monkeypatch.delenv("SEARCH_RERANK_ADMIN_TOKEN", raising=False)
    response = client.post("/admin/reload", headers=AUTH)
    assert response.status_code == 403
    assert response.get_json()["error"] == "reload disabled"


def test_a_token_configured_with_a_trailing_newline_is_accepted_as_sent(own_settings, monkeypatch):
    monkeypatch.setenv("SEARCH_RERANK_ADMIN_TOKEN", TOKEN + "\n")  # a secret mounted from a file ends in one
    assert create_app(own_settings).test_client().post("/admin/reload", headers=AUTH).status_code == 200


def test_reload_is_disabled_when_the_token_configured_is_blank(own_settings, monkeypatch):
    monkeypatch.setenv("SEARCH_RERANK_ADMIN_TOKEN", "  ")
    response = create_app(own_settings).test_client().post("/admin/reload", headers={"Authorization": "Bearer   "})
    assert response.status_code == 403


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN + "x"}])
def test_reload_without_the_right_token_is_refused(admin_client, headers):
    response = admin_client.post("/admin/reload", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_reload_serves_a_rebuilt_index(admin_client, own_settings, catalog_dir):
    assert hit_ids(admin_client, "quokka plush toy", brand="Wombatco") == []
    build_index(chain(iter_catalog(catalog_dir), [NEW_PRODUCT]), own_settings, progress=False)
    assert hit_ids(admin_client, "quokka plush toy", brand="Wombatco") == []
    response = admin_client.post("/admin/reload", headers=AUTH)
    assert response.status_code == 200 and response.get_json()["products"] == 301
    assert hit_ids(admin_client, "quokka plush toy", brand="Wombatco") == ["new-quokka"]
    assert admin_client.get("/ready").get_json()["counts"]["products"] == 301


def test_ready_names_the_build_being_served_until_a_reload_serves_the_next(own_settings, admin_token, catalog_dir):
    """It read the pointer's version: a build not yet reloaded was reported served, so a deploy script polling
    /ready took it as live before any worker served it."""
    uncached = own_settings.model_copy(update={"service": own_settings.service.model_copy(update={"ready_cache_s": 0})})
    client = create_app(uncached).test_client()
    served = client.get("/ready").get_json()["built"]
    build_index(chain(iter_catalog(catalog_dir), [NEW_PRODUCT]), own_settings, progress=False)
    assert client.get("/ready").get_json()["built"] == served
    reloaded = client.post("/admin/reload", headers=AUTH).get_json()["built"]
    assert reloaded != served and client.get("/ready").get_json()["built"] == reloaded


def test_the_other_workers_of_the_server_follow_a_reload(own_settings, catalog_dir, admin_token, monkeypatch, tmp_path):
    monkeypatch.setenv(RELOAD_FILE_ENV, str(tmp_path / "reload" / "generation"))
    (tmp_path / "reload").mkdir()
    asked, other = (create_app(own_settings).test_client() for _ in range(2))
    build_index(chain(iter_catalog(catalog_dir), [NEW_PRODUCT]), own_settings, progress=False)
    assert asked.post("/admin/reload", headers=AUTH).get_json()["other_workers"] is True
    deadline = time.monotonic() + 300  # the reload on a loaded CI machine: wait on it, not on the clock
    while not hit_ids(other, "quokka", brand="Wombatco") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert hit_ids(other, "quokka", brand="Wombatco") == ["new-quokka"]


def current_version_without_its_dense_index(settings) -> str:
    """Point the index at a new version that the settings cannot serve (built without the dense leg they use),
    as an index command run with other settings does; the name of the version served before."""
    versions = IndexVersions(settings.index_dir)
    before = versions.current()
    name, path = versions.create()
    shutil.copytree(versions.path(before), path, dirs_exist_ok=True)
    shutil.rmtree(path / "dense")
    versions.point_to(name)
    return before


def test_a_worker_booted_onto_a_version_it_cannot_serve_serves_the_version_the_other_workers_serve(
    own_settings, monkeypatch, tmp_path
):
    """It exited as a start that cannot succeed does, and gunicorn's master shut the whole server down (a worker
    replaced at max_requests, after a timeout or a crash, while the others served)."""
    monkeypatch.setenv(RELOAD_FILE_ENV, str(tmp_path / "reload" / "generation"))
    (tmp_path / "reload").mkdir()
    serving = create_app(own_settings).test_client()
    served = serving.get("/ready").get_json()["built"]
    current_version_without_its_dense_index(own_settings)
    booted = create_app(own_settings).test_client()
    assert booted.get("/ready").get_json()["built"] == served
    assert hit_ids(booted, "oak table") == hit_ids(serving, "oak table") != []


def test_a_server_starting_onto_a_version_it_cannot_serve_does_not_start(own_settings, monkeypatch, tmp_path):
    monkeypatch.setenv(RELOAD_FILE_ENV, str(tmp_path / "reload" / "generation"))
    (tmp_path / "reload").mkdir()
    current_version_without_its_dense_index(own_settings)
    with pytest.raises(SystemExit, match="no dense index"):
        create_app(own_settings)


def test_a_worker_still_loading_when_another_announces_a_reload_follows_it(
    own_settings, catalog_dir, admin_token, monkeypatch, tmp_path
):
    monkeypatch.setenv(RELOAD_FILE_ENV, str(tmp_path / "reload" / "generation"))
    (tmp_path / "reload").mkdir()
    asked = create_app(own_settings).test_client()

    def open_then_reload_elsewhere(*args):
        pipeline = open_pipeline(*args)  # the old indexes, then a reindex and a reload before this worker is up
        monkeypatch.setattr(serving_ops, "open_pipeline", open_pipeline)  # the reload's own opening, as it is
        build_index(chain(iter_catalog(catalog_dir), [NEW_PRODUCT]), own_settings, progress=False)
        assert asked.post("/admin/reload", headers=AUTH).get_json()["other_workers"] is True
        return pipeline

    monkeypatch.setattr(serving_ops, "open_pipeline", open_then_reload_elsewhere)
    loading = create_app(own_settings).test_client()
    deadline = time.monotonic() + 300  # the reload on a loaded CI machine: wait on it, not on the clock
    while not hit_ids(loading, "quokka", brand="Wombatco") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert hit_ids(loading, "quokka", brand="Wombatco") == ["new-quokka"]


def test_a_worker_follows_a_reload_announced_after_it_could_not_read_the_announcements(tmp_path):
    """The watcher's thread died on the first file it could not read (no file descriptor left): that worker then
    followed no reload for good."""
    path = tmp_path / "generation"
    reloaded = threading.Event()
    ReloadBroadcast(path, reloaded.set, interval_s=0.05).start()
    path.mkdir()  # reading it fails with an OSError, as it does with no file descriptor left
    time.sleep(0.5)
    path.rmdir()
    path.write_text("1 2\n", encoding="utf-8")
    assert reloaded.wait(timeout=120)


def test_a_failed_reload_keeps_serving_the_old_indexes(admin_client, own_settings):
    before = hit_ids(admin_client, "oak table")
    shutil.rmtree(IndexVersions(own_settings.index_dir).serving_dir() / "dense")
    response = admin_client.post("/admin/reload", headers=AUTH)
    assert response.status_code == 500
    body = response.get_json()
    assert body["error"] == "reload failed" and "still serving the previous indexes" in body["message"]
    assert "no dense index" not in body["message"] and str(own_settings.index_dir) not in body["message"]
    assert "Error" not in body["message"]  # nor the exception's class
    assert hit_ids(admin_client, "oak table") == before


@pytest.mark.parametrize("lost", ["products.sqlite", "lexical"])
def test_a_reload_onto_a_version_whose_files_were_deleted_keeps_serving_the_old_indexes(
    admin_client, own_settings, lost
):
    """Opened, the product store and the embedded index each made an empty one in the place of the deleted
    files, and the reload answered "reloaded" with 0 products: every search then found nothing."""
    before = hit_ids(admin_client, "oak table")
    served = IndexVersions(own_settings.index_dir).serving_dir()
    for path in served.glob(f"{lost}*"):
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    response = admin_client.post("/admin/reload", headers=AUTH)
    assert response.status_code == 500 and "still serving the previous indexes" in response.get_json()["message"]
    assert hit_ids(admin_client, "oak table") == before and before
    assert not (served / "products.sqlite").exists() or lost != "products.sqlite"


@pytest.fixture
def held_search(own_settings, admin_token):
    """An app whose serving pipeline's lexical leg blocks, and a search started on it, held in flight."""
    pipeline = open_pipeline(own_settings)
    sleeping = pipeline.legs["lexical"] = Sleeping(pipeline.legs["lexical"])
    app = create_app(own_settings, pipeline)
    answer = {}
    thread = threading.Thread(
        target=lambda: answer.update(response=app.test_client().post("/search", json={"query": "oak table", "size": 5}))
    )
    thread.start()
    assert sleeping.entered.wait(10)
    yield app, sleeping, thread, answer
    sleeping.release.set()
    thread.join(30)


def test_a_search_in_flight_during_a_reload_finishes_on_the_old_pipeline(held_search):
    app, sleeping, thread, answer = held_search
    client = app.test_client()
    assert client.post("/admin/reload", headers=AUTH).status_code == 200
    assert hit_ids(client, "lamp")  # a new request runs on the new pipeline, not behind the held one
    assert app.extensions["search_rerank"].draining == 1
    sleeping.release.set()
    thread.join(30)
    assert answer["response"].status_code == 200
    assert answer["response"].get_json()["degraded"] == {}
    assert app.extensions["search_rerank"].draining == 0


def test_a_replaced_pipeline_still_busy_after_the_grace_period_is_closed(held_search):
    app, sleeping, thread, answer = held_search
    live = app.extensions["search_rerank"]
    live.grace_s = 0.2
    app.test_client().post("/admin/reload", headers=AUTH)
    deadline = time.monotonic() + 120  # the grace timer's thread on a loaded machine: wait on the closing itself
    while live.draining and time.monotonic() < deadline:
        time.sleep(0.05)
    assert thread.is_alive() and live.draining == 0
