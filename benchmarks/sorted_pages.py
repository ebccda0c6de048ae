"""Pages sorted by a field on the embedded index: what a page costs when many products share a value, and that
consecutive pages neither overlap nor skip.

Why: a page sorted by a keyword (a brand, "Name: A-Z") or by sales (the browse order of a search without words)
ends, as often as not, inside a run of products sharing one value: thousands of one brand, most of a catalogue at
zero sales. ``embedded_search.sorted_page`` reads the ties of a page's last value whole (up to ``MAX_SORT_TIES``),
or past that many the first of them by id, so that each page orders them alike. This times one page of each kind,
as a ratio to the first browse page (the cheapest, few ties) measured in the same run, and pages through each
sort to check that the pages put together are the whole sorted list.

The catalogue is synthetic and built here (no model): ``--products`` products, half of one brand and half of
another, the first ``--sellers`` with sales, the rest at zero, seven prices.

Writes benchmarks/results/sorted_pages.json and the "Sorted pages" section of docs/BENCHMARKS.md.

    python benchmarks/sorted_pages.py --products 20000 --sellers 500
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import tantivy

sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import ROOT, table, write_results, write_section  # noqa: E402

from search_rerank.backends.tantivy_index import SORT_FIELDS, TantivyRetriever  # noqa: E402
from search_rerank.core.product import Product  # noqa: E402
from search_rerank.core.settings import LexicalSettings  # noqa: E402
from search_rerank.serving.embedded_search import BROWSE_ORDER, MAX_SORT_TIES, FieldSort, sorted_page  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "sorted_pages.json"
PAGE = 20


def catalogue(products: int, sellers: int) -> list[Product]:
    return [
        Product(
            id=f"p{i:06d}",
            title=f"item {i % 97}",
            brand="Acme" if i % 2 else "Bolt",
            category=("Shop",),
            price=float(10 + i % 7),
            sales=i + 1 if i < sellers else 0,
        )
        for i in range(products)
    ]


def timed(leg: TantivyRetriever, sort: FieldSort, need: int, repeats: int) -> float:
    """The median milliseconds of one sorted page of ``need`` rows."""
    match = tantivy.Query.all_query()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        sorted_page(leg, match, None, sort, need)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def paged(leg: TantivyRetriever, sort: FieldSort, pages: int) -> tuple[int, int]:
    """(rows repeated, rows missing) when the first ``pages`` pages are put together, against one page as long."""
    match = tantivy.Query.all_query()
    whole = [pid for pid, _, _ in sorted_page(leg, match, None, sort, pages * PAGE)[0]]
    together: list[str] = []
    for page in range(pages):
        rows, _ = sorted_page(leg, match, None, sort, (page + 1) * PAGE)
        together += [pid for pid, _, _ in rows[page * PAGE :]]
    return len(together) - len(set(together)), len(set(whole) - set(together))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--products", type=int, default=20_000)
    ap.add_argument("--sellers", type=int, default=500, help="products with sales; the rest sell nothing")
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--pages", type=int, default=30, help="pages put together for the overlap check")
    args = ap.parse_args()

    leg = TantivyRetriever(Path(tempfile.mkdtemp()) / "lexical", LexicalSettings())
    leg.add(catalogue(args.products, args.sellers))
    cases = {
        "browse, first page": (BROWSE_ORDER, PAGE),
        "browse, the page after the sellers": (BROWSE_ORDER, args.sellers + PAGE),
        "brand, first page": (FieldSort(SORT_FIELDS["brand"], False), PAGE),
        "name A-Z, first page": (FieldSort(SORT_FIELDS["title"], False), PAGE),
        "price, first page": (FieldSort("price", False), PAGE),
    }
    timed(leg, BROWSE_ORDER, PAGE, 2)  # warm the searcher
    ms = {name: timed(leg, sort, need, args.repeats) for name, (sort, need) in cases.items()}
    base = ms["browse, first page"]
    checks = {name: paged(leg, sort, args.pages) for name, (sort, _) in cases.items() if "first page" in name}
    figures = {
        "products": args.products,
        "sellers": args.sellers,
        "max_sort_ties": MAX_SORT_TIES,
        "page": PAGE,
        "pages_checked": args.pages,
        "pages": {
            name: {
                "ms_median": round(ms[name], 2),
                "ratio_to_first_browse_page": round(ms[name] / base, 1),
                **({"rows_repeated": checks[name][0], "rows_missing": checks[name][1]} if name in checks else {}),
            }
            for name in cases
        },
    }
    write_results(RESULTS, figures)
    rows = [
        [
            name,
            f"{ms[name]:.1f}",
            f"{ms[name] / base:.1f}",
            *(checks[name] if name in checks else ("", "")),
        ]
        for name in cases
    ]
    body = f"""
Pages of {PAGE} sorted on the embedded index of a synthetic catalogue of {args.products:,} products (two brands,
half each; {args.sellers} with sales, the rest at zero; seven prices), each timed {args.repeats} times (median) by
`embedded_search.sorted_page`, as a ratio to the first browse page in the same run (the machine is shared: read
the ratios, the milliseconds are this run's). A page whose last value is shared by at most {MAX_SORT_TIES:,}
products reads those ties whole; past that (the zero-sales tail) it reads the first of them by id. The last two
columns put the first {args.pages} pages of each sort together, each asked as Elasticsearch asks it (`from` and
`size`), against one page as long: rows shown twice, rows never shown.

{table(["page", "ms (median)", "ratio to the first browse page", "rows repeated", "rows missing"], rows)}
"""
    write_section("sorted-pages", "Sorted pages: ties at a page's end", body)
    print(body)


if __name__ == "__main__":
    main()
