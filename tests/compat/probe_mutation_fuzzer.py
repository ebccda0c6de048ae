"""A deterministic mutation fuzzer over the compatibility suite's front-end bodies (bodies/*.json).

Not a test module (nothing here is collected): :func:`fuzz_campaign` is what found the minimal cases kept in
test_probe_mutations.py. It walks each body's JSON tree (a ``_search`` body, a ``_count`` body made of its query,
each ``_msearch`` header and body line, a ReactiveSearch request), makes the mutations of :func:`mutations` at every
node, posts a seeded random sample of them with a Flask test client and records for each answer its status, whether
a 400/501 names a field, whether the body leaks internals (a traceback, an exception class, an address) and the
server-side exception logged for a 5xx (its type and the innermost ``search_rerank`` frame), and the time taken.

Run it by hand from a scratch test that has the ``embedded_client`` / ``opensearch_client`` fixtures::

    def test_fuzz(embedded_client):
        from probe_mutation_fuzzer import fuzz_campaign
        fuzz_campaign(embedded_client, "embedded", count=4000, seed=1, out="/tmp/fuzz-embedded.jsonl")
"""

from __future__ import annotations

import copy
import json
import logging
import random
import signal
import time
import traceback
from collections.abc import Iterator
from typing import Any

from compat_suite import cases

LEAKS = (
    "Traceback",
    "Exception",
    "http://",
    "127.0.0.1",
    "KeyError",
    "TypeError",
    "AttributeError",
    "ValueError",
    "IndexError",
    "RecursionError",
    "OverflowError",
    "ZeroDivisionError",
    "AssertionError",
    'File "',
)
DEEP = 200
_MISSING = object()


class Hang(BaseException):
    """Raised by the alarm when one request takes too long (a BaseException: Flask's handler does not catch it)."""


def value_mutations(original: Any) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = [
        ("null", None),
        ("true", True),
        ("-1", -1),
        ("0", 0),
        ("1e308", 1e308),
        ("2**63", 2**63),
        ("'NaN'", "NaN"),
        ("''", ""),
        ("x*10000", "x" * 10000),
        ("[]", []),
        ("{}", {}),
        ("[orig]", [original]),
        ("{x:orig}", {"x": original}),
        ("str(orig)", original if isinstance(original, str) else json.dumps(original)),
        ("list-nest-200", _nest_list(original)),
    ]
    return out


def _nest_list(value: Any) -> Any:
    for _ in range(DEEP):
        value = [value]
    return value


def _nest_key(key: str, value: Any) -> Any:
    for _ in range(DEEP - 1):
        value = {key: value}
    return value


def walk(node: Any, path: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, (*path, index))


def _parent(root: Any, path: tuple) -> Any:
    node = root
    for step in path[:-1]:
        node = node[step]
    return node


def mutate(root: Any, path: tuple, kind: str, payload: Any = None) -> Any:
    """A copy of ``root`` with the node at ``path`` mutated (``kind``: value, delete, sibling, case, nest-key)."""
    if not path:
        if kind == "value":
            return payload
        if kind == "sibling" and isinstance(root, dict):
            return {**root, "unknown_key": 1}
        return _MISSING
    clone = copy.deepcopy(root)
    parent = _parent(clone, path)
    last = path[-1]
    if kind == "value":
        parent[last] = payload
    elif kind == "delete":
        del parent[last]
    elif kind == "sibling":
        if not isinstance(parent, dict):
            return _MISSING
        parent["unknown_key"] = 1
    elif kind == "case":
        if not isinstance(last, str) or last.swapcase() == last:
            return _MISSING
        items = list(parent.items())
        parent.clear()
        parent.update((k.swapcase() if k == last else k, v) for k, v in items)
    elif kind == "nest-key":
        if not isinstance(last, str):
            return _MISSING
        parent[last] = _nest_key(last, parent[last])
    return clone


def mutations(root: Any) -> Iterator[tuple[tuple, str, Any]]:
    """Each (path, label, mutated root) of ``root``."""
    for path, node in walk(root):
        for label, value in value_mutations(node):
            yield path, f"value={label}", ("value", value)
        if path:
            yield path, "delete", ("delete", None)
            if isinstance(path[-1], str):
                yield path, "swapcase-key", ("case", None)
                yield path, "nest-key-200", ("nest-key", None)
        if isinstance(node, dict):
            yield (*path, "unknown_key"), "add-sibling", ("sibling-of", None)


def _apply(root: Any, path: tuple, op: tuple) -> Any:
    kind, payload = op
    if kind == "sibling-of":
        target = path[:-1]
        if not target:
            return {**root, "unknown_key": 1}
        clone = copy.deepcopy(root)
        node = clone
        for step in target:
            node = node[step]
        node["unknown_key"] = 1
        return clone
    return mutate(root, path, kind, payload)


def requests_of(case) -> list[tuple[str, Any]]:
    """The (route, request) pairs a case makes mutable: route is search, count, msearch or reactivesearch."""
    spec = case.spec
    if "body" in spec:
        out = [("search", spec["body"])]
        if isinstance(spec["body"].get("query"), dict):
            out.append(("count", {"query": spec["body"]["query"]}))
        return out
    if "msearch" in spec:
        return [("msearch", spec["msearch"])]
    return [("reactivesearch", spec["reactivesearch"])]


def post(client, case, route: str, request: Any):
    if route == "search":
        return client.post("/products/_search", data=json.dumps(request), content_type="application/json")
    if route == "count":
        return client.post("/products/_count", data=json.dumps(request), content_type="application/json")
    if route == "msearch":
        lines = request if isinstance(request, list) else [request]
        ndjson = "".join(json.dumps(line) + "\n" for line in lines)
        return client.post(case.spec.get("path", "/_msearch"), data=ndjson, content_type="application/x-ndjson")
    return client.post(case.spec["path"], data=json.dumps(request), content_type="application/json")


class Capture(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


def where(exc_info) -> tuple[str, str]:
    """The exception's type and its innermost frame in search_rerank (file:line function)."""
    _type, exc, tb = exc_info
    frames = traceback.extract_tb(tb)
    ours = [f for f in frames if "search_rerank/" in f.filename] or frames
    inner = ours[-1] if ours else None
    place = f"{inner.filename.split('search_rerank/', 1)[-1]}:{inner.lineno} {inner.name}" if inner else "?"
    return f"{type(exc).__name__}: {str(exc)[:160]}", place


def judge_answer(status: int, text: str, body: Any, mutated_key: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {"status": status, "leaks": [m for m in LEAKS if m in text]}
    items: list[Any] = []
    if isinstance(body, dict):
        if isinstance(body.get("responses"), list):
            items = body["responses"]
        elif "error" not in body and "hits" not in body:
            items = [v for v in body.values() if isinstance(v, dict) and "status" in v]
    item_statuses = [i.get("status", 200) for i in items if isinstance(i, dict)]
    out["item_statuses"] = sorted(set(item_statuses))
    errors = [body.get("error")] if isinstance(body, dict) and status != 200 else []
    errors += [i.get("error") for i in items if isinstance(i, dict) and i.get("status", 200) != 200]
    names = []
    for error in errors:
        if not isinstance(error, dict):
            names.append(None)
            continue
        names.append(
            error.get("field") or error.get("unsupported") or ((error.get("root_cause") or [{}])[0] or {}).get("field")
        )
    out["error_names"] = names
    out["reasons"] = [str((e or {}).get("reason"))[:200] if isinstance(e, dict) else str(e)[:200] for e in errors]
    out["unnamed"] = any(n in (None, "") for n in names)
    out["five_xx"] = status >= 500 and status != 501 or any(s >= 500 and s != 501 for s in item_statuses)
    return out


def fuzz_campaign(
    client,
    backend: str,
    count: int = 4000,
    seed: int = 1,
    out: str | None = None,
    slow_s: float = 5.0,
    hang_s: int = 30,
) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    universe = []
    for case in cases():
        for route, request in requests_of(case):
            for path, label, op in mutations(request):
                universe.append((case, route, request, path, label, op))
    sample = rng.sample(universe, min(count, len(universe)))
    capture = Capture()
    root = logging.getLogger()
    root.addHandler(capture)
    results = []

    def on_alarm(signum, frame):
        raise Hang()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    sink = open(out, "w", encoding="utf-8") if out else None
    try:
        for n, (case, route, request, path, label, op) in enumerate(sample):
            mutated = _apply(request, path, op)
            if mutated is _MISSING:
                continue
            capture.records.clear()
            started = time.perf_counter()
            signal.alarm(hang_s)
            try:
                response = post(client, case, route, mutated)
                status, text = response.status_code, response.get_data(as_text=True)
            except Hang:
                status, text = -1, "HANG"
            except Exception as exc:  # noqa: BLE001 - the test client raised: record it
                status, text = -2, f"client raised {type(exc).__name__}: {exc}"
            finally:
                signal.alarm(0)
            seconds = time.perf_counter() - started
            try:
                body = json.loads(text)
            except ValueError:
                body = None
            key = next((p for p in reversed(path) if isinstance(p, str)), None)
            verdict = judge_answer(status, text, body, key)
            exceptions = []
            for record in capture.records:
                if record.exc_info and record.exc_info[1] is not None:
                    exceptions.append(where(record.exc_info))
                elif record.levelno >= logging.WARNING and record.name.startswith("search_rerank"):
                    exceptions.append((f"log {record.name}: {record.getMessage()[:200]}", ""))
            row = {
                "backend": backend,
                "case": case.name,
                "route": route,
                "path": ".".join(str(p) for p in path),
                "mutation": label,
                "seconds": round(seconds, 3),
                "slow": seconds > slow_s,
                "exceptions": exceptions,
                **verdict,
            }
            if status < 0:
                row["five_xx"] = True
                row["client"] = text[:300]
            results.append(row)
            if sink:
                sink.write(json.dumps(row) + "\n")
                if n % 200 == 0:
                    sink.flush()
    finally:
        signal.signal(signal.SIGALRM, previous)
        root.removeHandler(capture)
        if sink:
            sink.close()
    return results


def _uri_values() -> list[tuple[str, str]]:
    long = "a" * 20000
    return [
        ("size", "-1"),
        ("size", "abc"),
        ("size", "1e3"),
        ("size", "10.5"),
        ("size", str(2**63)),
        ("size", ""),
        ("size", "NaN"),
        ("size", "Infinity"),
        ("size", "10"),
        ("size", " 10"),
        ("size", "0x10"),
        ("from", "abc"),
        ("from", "-1"),
        ("from", str(2**63)),
        ("from", "1e308"),
        ("from", ""),
        ("typed_keys", "maybe"),
        ("typed_keys", ""),
        ("typed_keys", "TRUE"),
        ("rest_total_hits_as_int", "maybe"),
        ("track_total_hits", "maybe"),
        ("track_total_hits", "-5"),
        ("track_total_hits", str(2**63)),
        ("filter_path", ""),
        ("filter_path", ","),
        ("filter_path", "*"),
        ("filter_path", "**"),
        ("filter_path", "-"),
        ("filter_path", "-*"),
        ("filter_path", "hits..hits"),
        ("filter_path", "." * 1000),
        ("filter_path", "*." * 500),
        ("filter_path", long),
        ("filter_path", "hits.hits._source.*.*.*.*"),
        ("filter_path", "\\"),
        ("filter_path", "a,\u00e9,\U0001f600"),
        ("q", "title:("),
        ("q", "a:b:c"),
        ("q", "*:*"),
        ("q", "\\"),
        ("q", "\u00e9\U0001f600"),
        ("q", long),
        ("q", "title:[1 TO"),
        ("q", "price:[a TO b]"),
        ("q", "price:>abc"),
        ("q", "(((((((((("),
        ("q", ")"),
        ("q", "title:/[/"),
        ("q", "title:/a{1000000}/"),
        ("q", "title:a~99"),
        ("q", "title:a^abc"),
        ("q", 'title:"a b"~abc'),
        ("q", "_exists_:"),
        ("q", "price:{* TO *}"),
        ("q", "NOT"),
        ("q", "AND OR"),
        ("q", "+-+-"),
        ("q", "title:*"),
        ("q", "*"),
        ("q", "?"),
        ("q", "price:1e400"),
        ("q", "created_at:[now-1x TO now]"),
        ("q", "title:" + "(" * 5000),
        ("q", "a" * 300 + "~2"),
        ("q", "\x00"),
        ("q", "title:a AND (b OR"),
        ("df", ""),
        ("df", "nope"),
        ("default_operator", "xor"),
        ("analyze_wildcard", "maybe"),
        ("lenient", "maybe"),
        ("sort", "price:sideways"),
        ("sort", ":"),
        ("sort", "nope:asc"),
        ("sort", "price:asc:desc"),
        ("sort", ""),
        ("_source", "false"),
        ("_source", ""),
        ("_source_includes", ","),
        ("_source_excludes", "*"),
        ("timeout", "abc"),
        ("timeout", "-1"),
        ("terminate_after", "-1"),
        ("terminate_after", "abc"),
        ("search_type", "nope"),
        ("request_cache", "maybe"),
        ("allow_no_indices", "maybe"),
        ("ignore_unavailable", "maybe"),
        ("expand_wildcards", "nope"),
        ("preference", long),
        ("routing", ""),
        ("explain", "maybe"),
        ("version", "maybe"),
        ("seq_no_primary_term", "maybe"),
        ("stored_fields", "*"),
        ("docvalue_fields", "price"),
        ("scroll", "1m"),
        ("scroll", "abc"),
        ("batched_reduce_size", "1"),
        ("max_concurrent_shard_requests", "0"),
        ("pre_filter_shard_size", "-1"),
        ("max_concurrent_searches", "abc"),
        ("ccs_minimize_roundtrips", "maybe"),
        ("allow_partial_search_results", "maybe"),
        ("track_scores", "maybe"),
        ("error_trace", "true"),
        ("pretty", "true"),
        ("human", "maybe"),
        ("source", "{"),
        ("source", '{"size": -1}'),
        ("source_content_type", "text/plain"),
        ("q", "title:sofa&size=-1"),
    ]


def uri_campaign(client, backend: str) -> list[dict[str, Any]]:
    """Each URI parameter mutation on _search, _count and _msearch."""
    from urllib.parse import quote

    capture = Capture()
    root = logging.getLogger()
    root.addHandler(capture)
    results = []
    try:
        for route in ("/products/_search", "/products/_count", "/_msearch"):
            for name, value in _uri_values():
                capture.records.clear()
                url = f"{route}?{name}={quote(value, safe='')}"
                started = time.perf_counter()
                if route == "/_msearch":
                    response = client.post(
                        url,
                        data='{"index":"products"}\n{"query":{"match_all":{}}}\n',
                        content_type="application/x-ndjson",
                    )
                else:
                    response = client.get(url)
                seconds = time.perf_counter() - started
                text = response.get_data(as_text=True)
                body = response.get_json(silent=True)
                exceptions = [where(r.exc_info) for r in capture.records if r.exc_info and r.exc_info[1]]
                results.append(
                    {
                        "backend": backend,
                        "route": route,
                        "param": name,
                        "value": value[:80],
                        "seconds": round(seconds, 3),
                        "exceptions": exceptions,
                        **judge_answer(response.status_code, text, body, name),
                    }
                )
    finally:
        root.removeHandler(capture)
    return results
