"""The compatibility suite (tests/compat/bodies: request bodies from real front ends' source and tests) run on
both backends, and each body's answer set beside a reference: the same body sent straight to a shop's own
index of the same catalog on osmem-server (an OpenSearch-compatible engine standing in for Elasticsearch),
mapped as front ends expect it.

Writes benchmarks/results/compat.json: per backend the counts ``bodies``, ``answered``, ``unsupported_501``,
``wrong``, ``server_errors`` and each body's outcome with its reasons; and per body the matrix of what the
reference returns against what the service returns (status, hits.total, facets, highlights, ``_source`` keys;
hits order aside). Also checks the suite's expectations against the reference, so that an expectation written
wrong shows up here. Its table goes into docs/BENCHMARKS.md.

    PYTHONPATH=. HF_HUB_OFFLINE=1 python benchmarks/compat.py
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "compat"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # the catalogue the suite searches

from compat_suite import (  # noqa: E402
    ANSWERED,
    SERVER_ERROR,
    UNSUPPORTED,
    WRONG,
    cases,
    embedded_app,
    hit_id,
    judge,
    opensearch_app,
    reference_index,
    run,
    searches,
    without_id_doc_values,
)
from report import ROOT, table, write_section  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "compat.json"
TIMEOUT_S = 30


def summary(status: int, answer: dict[str, Any]) -> dict[str, Any]:
    """What the matrix compares of one answer: status, total, facets, highlights, _source keys."""
    if status != 200:
        error = answer.get("error") if isinstance(answer, dict) else None
        reason = error.get("unsupported") or error.get("type") if isinstance(error, dict) else None
        return {"status": status, "error": reason}
    hits = answer["hits"]["hits"]
    return {
        "status": 200,
        "total": answer["hits"]["total"]["value"],
        "facets": facets(answer.get("aggregations") or {}),
        "highlighted_hits": sum(1 for hit in hits if hit.get("highlight")),
        "source_keys": sorted({key for hit in hits for key in hit.get("_source", {})}),
        "ids": sorted(str(hit_id(hit)) for hit in hits),
    }


def facets(node: Any, path: str = "") -> dict[str, dict[str, int]]:
    """Every bucket list under an aggregations tree, by path: {path: {key: doc_count}}."""
    out: dict[str, dict[str, int]] = {}
    if not isinstance(node, dict):
        return out
    for name, value in node.items():
        if not isinstance(value, dict):
            continue
        here = f"{path}>{name}" if path else name
        raw = value.get("buckets")
        if isinstance(raw, list):
            out[here] = {str(b["key"]): b["doc_count"] for b in raw}
        elif isinstance(raw, dict):
            out[here] = {key: b["doc_count"] for key, b in raw.items()}
        else:
            out.update(facets(value, here))
    return out


def compare(reference: dict[str, Any], proxy: dict[str, Any]) -> dict[str, str]:
    """Per aspect: 'same', 'differs', or '501' / 'n/a' where one side did not answer."""
    if proxy["status"] != 200:
        return {"answer": f"{proxy['status']} {proxy.get('error')}"}
    if reference["status"] != 200:
        return {"answer": f"reference {reference['status']} {reference.get('error')}"}
    aspects = {
        "total": "total",
        "hits": "ids",
        "facets": "facets",
        "highlights": "highlighted_hits",
        "_source": "source_keys",
    }
    return {name: "same" if reference[key] == proxy[key] else "differs" for name, key in aspects.items()}


def main() -> None:
    import osmem_server

    server = osmem_server.OsmemServer.start(japanese=False, addr="127.0.0.1:0", startup_timeout=30)
    root = Path(tempfile.mkdtemp(prefix="compat-"))
    suite = cases()
    report: dict[str, Any] = {"backends": {}, "reference": {}, "matrix": {}}
    try:
        reference = reference_index(server.url, "compat-reference")
        embedded, pipeline = embedded_app(root / "embedded")
        with opensearch_app(root / "opensearch", server.url) as opensearch:
            clients = {"embedded": embedded.test_client(), "opensearch": opensearch.test_client()}
            for backend, client in clients.items():
                outcomes = {case.name: run(client, case) for case in suite}
                counts = {
                    kind: sum(o.outcome == kind for o in outcomes.values())
                    for kind in (ANSWERED, UNSUPPORTED, WRONG, SERVER_ERROR)
                }
                report["backends"][backend] = {
                    "bodies": len(suite),
                    **counts,
                    "outcomes": {name: vars(o) for name, o in outcomes.items()},
                }
            for case in suite:
                rows = []
                asked = without_id_doc_values(case)  # what the reference can answer ids to
                for item, (body, direct_body) in enumerate(zip(searches(case), searches(asked), strict=True)):
                    direct = requests.post(f"{reference}/_search", json=direct_body, timeout=TIMEOUT_S)
                    answer = direct.json()
                    if direct.status_code == 200 and case.spec.get("expect"):
                        wrong = judge(asked, answer, item)
                        report["reference"].setdefault(case.name, []).append(wrong)
                    row = {"reference": summary(direct.status_code, answer)}
                    for backend, client in clients.items():
                        proxied = client.post("/products/_search", json=body)
                        row[backend] = summary(proxied.status_code, proxied.get_json())
                        row[f"{backend}_vs_reference"] = compare(row["reference"], row[backend])
                    rows.append(row)
                report["matrix"][case.name] = {"source": case.source, "feature": case.spec["feature"], "searches": rows}
        pipeline.close()
    finally:
        server.close()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    write_section("compat", "Front-end compatibility suite", markdown(report))
    print(markdown(report))


def markdown(report: dict[str, Any]) -> str:
    kinds = ["bodies", ANSWERED, UNSUPPORTED, WRONG, SERVER_ERROR]
    counts = table(["backend", *kinds], [[b, *(r[k] for k in kinds)] for b, r in report["backends"].items()])
    rows = []
    for name, entry in report["matrix"].items():
        first = entry["searches"][0]
        cells = [name, first["reference"].get("status")]
        for backend in report["backends"]:
            outcome = report["backends"][backend]["outcomes"][name]["outcome"]
            versus = first[f"{backend}_vs_reference"]
            cells.append(f"{outcome}: " + ", ".join(f"{k} {v}" for k, v in versus.items()))
        rows.append(cells)
    matrix = table(["body", "reference status", *report["backends"]], rows)
    return (
        "The request bodies of tests/compat/bodies (from the source and tests of Elastic Search UI, Searchkit,\n"
        "ReactiveSearch, Chorus' demo shop, Spryker, Magento and ElasticPress, and Elastic's retriever reference) on\n"
        "both backends, each also sent straight to a reference index of the same catalog on osmem-server, mapped as\n"
        "front ends expect (`brand.keyword`, `color.keyword`; Chorus' `supplier`, Spryker's `full-text` and nested\n"
        "`string-facet`, Magento's `_search` and `price_0_1`, ElasticPress's `post_type.raw` and `post_status`;\n"
        "Magento's bodies without `stored_fields` and\n"
        "`docvalue_fields` there, as osmem-server answers no `fields._id`).\n"
        "Per body (its first search for a multi-search): the service's outcome and, where both answered, whether\n"
        "hits.total, the hit set (order aside), facets, highlights and `_source` keys are the reference's (a whole\n"
        "`_source` is the product record, so its keys differ from the shop index's by design; see\n"
        "docs/COMPATIBILITY.md). Details in benchmarks/results/compat.json.\n\n"
        f"{counts}\n\n{matrix}\n"
    )


if __name__ == "__main__":
    main()
