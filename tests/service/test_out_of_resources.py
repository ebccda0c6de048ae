"""A worker out of file descriptors (a flood of connections holding theirs): the searches that fail for it are
503s to retry, not 500s, and asyncio's line for each failed ``accept()`` is logged once a while, not thousands of
times a second.

The service runs in a child process, which takes every descriptor it may open before it is asked: the searches are
asked from new threads, whose first read of the product store must open the file again, as under gunicorn.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest

from search_rerank.serving.logs import RepeatsFolded

OUT_OF_DESCRIPTORS = """
import json, os, resource, sys, threading
from search_rerank.core.settings import Settings
from search_rerank.indexing.indexes import open_pipeline
from search_rerank.serving.app import create_app

settings = Settings.model_validate_json(sys.stdin.read())
client = create_app(settings, open_pipeline(settings)).test_client()
BODY = {"query": {"match": {"title": "lamp"}}}

def asked(method, path, **kwargs):
    out = {}
    thread = threading.Thread(target=lambda: out.update(answer=client.open(path, method=method, **kwargs)))
    thread.start()
    thread.join()
    answer = out["answer"]
    return {"status": answer.status_code, "retry_after": answer.headers.get("Retry-After"), "body": answer.get_json()}

_, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
held = []
try:
    while True:
        held.append(os.open(os.devnull, os.O_RDONLY))
except OSError:
    pass
lines = "\\n".join(json.dumps(line) for line in ({}, BODY)) + "\\n"
answers = {
    "search": asked("POST", "/search", json={"query": "lamp"}),
    "es_search": asked("POST", "/products/_search", json=BODY),
    "msearch": asked("POST", "/_msearch", data=lines, content_type="application/x-ndjson"),
}
for fd in held:
    os.close(fd)
answers["search_after"] = asked("POST", "/search", json={"query": "lamp"})
print(json.dumps(answers))
"""


@pytest.fixture(scope="module")
def answers(index_settings) -> dict:
    """What the service answered with no descriptor left to open, and once they were let go."""
    done = subprocess.run(
        [sys.executable, "-c", OUT_OF_DESCRIPTORS],
        input=index_settings.model_dump_json(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_search_failing_for_want_of_file_descriptors_is_a_503_to_retry_naming_the_reason(answers):
    search = answers["search"]
    assert (search["status"], search["retry_after"]) == (503, "1")
    assert search["body"]["reason"] == "out_of_resources"


def test_an_elasticsearch_search_failing_so_is_a_503_in_elasticsearch_s_error_shape(answers):
    search = answers["es_search"]
    assert (search["status"], search["retry_after"]) == (503, "1")
    assert search["body"]["status"] == 503
    assert search["body"]["error"]["reason_code"] == "out_of_resources"


def test_a_multi_search_item_failing_so_is_a_503_item(answers):
    msearch = answers["msearch"]
    assert msearch["status"] == 200
    [item] = msearch["body"]["responses"]
    assert (item["status"], item["error"]["reason_code"]) == (503, "out_of_resources")


def test_searches_are_answered_again_once_descriptors_are_free(answers):
    assert answers["search_after"]["status"] == 200
    assert answers["search_after"]["body"]["hits"]


def line(message: str) -> logging.LogRecord:
    return logging.LogRecord("asyncio", logging.ERROR, __file__, 1, message, None, None)


def test_a_repeated_line_is_let_through_once_per_interval():
    folded = RepeatsFolded(interval_s=3600)
    assert [folded.filter(line("accept() failed")) for _ in range(5)] == [True, False, False, False, False]


def test_the_next_line_let_through_says_how_many_were_held_back():
    folded = RepeatsFolded(interval_s=3600)
    for _ in range(4):
        folded.filter(line("accept() failed"))
    folded.interval_s = 0
    record = line("accept() failed")
    assert folded.filter(record)
    assert "(3 more like it" in record.getMessage()


def test_a_different_line_is_not_held_back_by_another():
    folded = RepeatsFolded(interval_s=3600)
    assert folded.filter(line("accept() failed")) and folded.filter(line("Task exception was never retrieved"))


ASYNCIO_REPEATING = """
import logging, logging.config
from search_rerank.serving.logs import logging_config
logging.config.dictConfig(logging_config("info"))
for _ in range(100):
    logging.getLogger("asyncio").error("socket.accept() out of system resource")
"""


def test_the_service_s_logging_folds_asyncio_s_repeated_lines():
    done = subprocess.run([sys.executable, "-c", ASYNCIO_REPEATING], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert sum("out of system resource" in line for line in done.stderr.splitlines()) == 1
