"""No front-end body, however mangled, gets a 5xx or a glimpse of the service's insides: the compatibility suite's
bodies (bodies/*.json: ``_search``, ``_count`` of their query, each ``_msearch`` line, ReactiveSearch requests)
with one node each replaced by null, true, -1, 0, 1e308, 2**63, "NaN", "", 10,000 x's, [], {}, itself in a list
or an object, its text, or itself 200 lists deep; deleted; its key's case swapped or nested 200 deep; or given an
unknown sibling.

Every mutation of every body is about 59,000 requests per backend (a probe ran them all, and the defects it found
are the tests of test_body_edges.py); a seeded sample of them runs here on each backend. Each answer must be a
2xx, a 4xx or a 501, and an error must name its field (or the part not served), with no traceback, exception class
or address in it: the standard for bad input.
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Iterator
from typing import Any

import pytest
from compat_suite import Case, cases

SAMPLE = 1500
LEAKS = ("Traceback", "Exception", "http://", "127.0.0.1", 'File "', *(f"{name}Error" for name in ("Key", "Type")))
DEEP = 200
NAMING = ("field", "unsupported", "index")
"""What names the part of a request an error is about: a field's path, the feature not served, the index."""


def replacements(original: Any) -> list[Any]:
    nested = original
    for _ in range(DEEP):
        nested = [nested]
    text = original if isinstance(original, str) else json.dumps(original)
    return [None, True, -1, 0, 1e308, 2**63, "NaN", "", "x" * 10_000, [], {}, [original], {"x": original}, text, nested]


def nodes(node: Any, path: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from nodes(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from nodes(value, (*path, index))


def mutated(root: Any) -> Iterator[Any]:
    """Every mutation of ``root``, each a new copy."""
    for path, node in nodes(root):
        for value in replacements(node):
            yield _changed(root, path, lambda parent, last, v=value: parent.__setitem__(last, v), value)
        if isinstance(node, dict):
            yield _changed(root, (*path, "unknown_key"), lambda parent, last: parent.__setitem__(last, 1))
        if not path:
            continue
        yield _changed(root, path, lambda parent, last: parent.__delitem__(last))
        if isinstance(path[-1], str) and path[-1].swapcase() != path[-1]:
            yield _changed(root, path, _swap_case)
            yield _changed(root, path, _nest_key)


def _changed(root: Any, path: tuple, change: Any, whole: Any = None) -> Any:
    if not path:
        return whole
    clone = copy.deepcopy(root)
    parent = clone
    for step in path[:-1]:
        parent = parent[step]
    change(parent, path[-1])
    return clone


def _swap_case(parent: dict, last: str) -> None:
    items = list(parent.items())
    parent.clear()
    parent.update((key.swapcase() if key == last else key, value) for key, value in items)


def _nest_key(parent: dict, last: str) -> None:
    value = parent[last]
    for _ in range(DEEP - 1):
        value = {last: value}
    parent[last] = value


def requests(case: Case) -> Iterator[tuple[str, str, Any]]:
    """(path, content type, body) of each mutation of a case's request."""
    spec = case.spec
    if "body" in spec:
        for body in mutated(spec["body"]):
            yield "/products/_search", "application/json", body
        if isinstance(spec["body"].get("query"), dict):
            for body in mutated({"query": spec["body"]["query"]}):
                yield "/products/_count", "application/json", body
    elif "msearch" in spec:
        for lines in mutated(spec["msearch"]):
            ndjson = "".join(json.dumps(line) + "\n" for line in (lines if isinstance(lines, list) else [lines]))
            yield spec.get("path", "/_msearch"), "application/x-ndjson", ndjson
    else:
        for body in mutated(spec["reactivesearch"]):
            yield spec["path"], "application/json", body


def sample(seed: int) -> list[tuple[str, str, Any]]:
    every = [request for case in cases() for request in requests(case)]
    return random.Random(seed).sample(every, SAMPLE)


def errors(answer: Any, status: int) -> list[Any]:
    """The errors of an answer: its own, or each failed search's of a multi-search or a ReactiveSearch request."""
    if not isinstance(answer, dict):
        return [None] if status != 200 else []
    found = [answer.get("error")] if status != 200 else []
    items = answer.get("responses") if isinstance(answer.get("responses"), list) else answer.values()
    found += [item.get("error") for item in items if isinstance(item, dict) and item.get("status", 200) != 200]
    return found


@pytest.mark.parametrize("seed", [1])
def test_no_mutation_of_a_front_end_body_is_a_5xx_or_shows_the_services_insides(service, seed):
    failures = []
    for path, content_type, body in sample(seed):
        data = body if isinstance(body, str) else json.dumps(body)
        response = service.post(path, data=data, content_type=content_type)
        text = response.get_data(as_text=True)
        answer = response.get_json(silent=True)
        statuses = [response.status_code] + [
            item.get("status", 200)
            for item in (answer.get("responses") or [] if isinstance(answer, dict) else [])
            if isinstance(item, dict)
        ]
        unnamed = [
            error
            for error in errors(answer, response.status_code)
            if not isinstance(error, dict) or not any(error.get(key) for key in NAMING)
        ]
        leaks = [leak for leak in LEAKS if leak in text]
        if any(s >= 500 and s != 501 for s in statuses) or unnamed or leaks:
            failures.append((path, data[:300], response.status_code, leaks, text[:300]))
    assert not failures, f"{len(failures)} of {SAMPLE}: {failures[:5]}"
