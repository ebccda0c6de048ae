"""Zero-downtime rebuilds of a server index: fill a new index, check it, then swap the alias to it.

Searches always go to the alias (``lexical.index``), so until the swap they see
the old index, complete; the swap is one ``_aliases`` request, which the
cluster applies atomically; and the previous versions are kept (``keep``) so
that ``rollback`` is again one alias swap, with no rebuild.

Index versions are ``{alias}-{UTC timestamp}``, so they sort by age by name.
The phases are separate methods (:meth:`Reindexer.start`, ``check``,
``swap``, ``prune``) so that a caller building more than this index, such as
a full ``index`` run that also writes a dense index, can check everything it
built before swapping anything, and swap the dense index's pointer right after.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Iterable

from .errors import ConfigError, StageError
from .es_backend import ClusterRetriever, cluster_retriever, version_name
from .product import Product
from .retrieval import LEXICAL
from .settings import LexicalSettings

VERSION_SUFFIX = re.compile(r"-\d{8}-\d{6}-\d{6}$")
DEFAULT_KEEP = 2


@dataclass
class ReindexReport:
    index: str
    products: int = 0
    previous: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    seconds: float = 0.0


class Reindexer:
    """One rebuild of the index behind ``settings.index``, phase by phase."""

    def __init__(self, settings: LexicalSettings, keep: int = DEFAULT_KEEP, retriever: ClusterRetriever | None = None):
        if keep < 0:
            raise ConfigError(f"keep={keep}: the number of old index versions to keep must be >= 0")
        self.alias = settings.index
        self.keep = keep
        self.live = retriever if retriever is not None else cluster_retriever(settings)
        self.target: ClusterRetriever | None = None

    def versions(self) -> dict[str, set[str]]:
        """This alias's index versions, oldest first, each with the aliases on it."""
        found = self.live.aliases(f"{self.alias}-*")
        return {name: found[name] for name in sorted(found) if VERSION_SUFFIX.search(name[len(self.alias):])}

    def current(self) -> list[str]:
        """The indices the alias points at now (none before the first reindex)."""
        found = self.live.aliases(self.alias) if self.live.exists(self.alias) else {}
        if self.alias in found:
            raise ConfigError(f"{self.alias!r} at {self.live.url} is an index, not an alias, so it cannot be "
                              f"swapped: reindex under another lexical.index, or delete that index first")
        return sorted(name for name, aliases in found.items() if self.alias in aliases)

    def start(self) -> ClusterRetriever:
        """Create the new version; returns a retriever writing to it (and not yet searched by anyone)."""
        self.current()  # a plain index in the alias's place fails now, not after the whole load
        name = version_name(self.alias)
        self.live.create_index(name)
        self.target = self.live.bound_to(name)
        return self.target

    def fill(self, products: Iterable[Product]) -> int:
        """Bulk the catalog into the new version; returns the number of distinct products."""
        return self._target().add(products)

    def check(self, expected: int, probe: Product | None) -> None:
        """Refuse to swap in an index that lacks documents or cannot find a product by its own title."""
        target = self._target()
        if expected == 0:
            raise ConfigError("the catalog is empty: nothing to index")
        found = target.count()
        if found != expected:
            raise StageError(LEXICAL, f"new index {target.index!r} holds {found} documents, expected {expected}; "
                                      f"the alias {self.alias!r} was not moved")
        if probe is not None and not any(c.product_id == probe.id for c in target.search(probe.title, 100)):
            raise StageError(LEXICAL, f"new index {target.index!r} does not find product {probe.id!r} by its "
                                      f"title {probe.title!r}; the alias {self.alias!r} was not moved")

    def swap(self) -> list[str]:
        """Point the alias at the new version only, in one atomic request; returns the versions it left."""
        target = self._target()
        previous = self.current()
        self._point_alias_to(target.index, previous)
        return previous

    def prune(self) -> list[str]:
        """Delete versions beyond the newest ``keep`` that the alias does not point at; returns them."""
        idle = [name for name, aliases in self.versions().items() if self.alias not in aliases]
        doomed = idle[:max(len(idle) - self.keep, 0)]
        for name in doomed:
            self.live.delete_index(name)
        return doomed

    def abandon(self) -> None:
        """Delete a new version that will not be swapped in (after a failed load or check)."""
        if self.target is not None and self.target.index not in self.current():
            self.live.delete_index(self.target.index)
        self.target = None

    def rollback(self) -> tuple[str, str]:
        """Point the alias back at the newest version older than the live one; returns (from, to)."""
        live = self.current()
        if len(live) != 1:
            raise ConfigError(f"alias {self.alias!r} points at {live or 'nothing'}; rollback needs exactly one index")
        older = [name for name in self.versions() if name < live[0]]
        if not older:
            raise ConfigError(f"no version of {self.alias!r} older than {live[0]!r} is kept: nothing to roll back to")
        self._point_alias_to(older[-1], live)
        return live[0], older[-1]

    def _point_alias_to(self, index: str, previous: list[str]) -> None:
        actions = [{"remove": {"index": name, "alias": self.alias}} for name in previous]
        actions.append({"add": {"index": index, "alias": self.alias}})
        self.live.update_aliases(actions)

    def _target(self) -> ClusterRetriever:
        if self.target is None:
            raise RuntimeError("start() the reindex first")
        return self.target


def reindex(products: Iterable[Product], settings: LexicalSettings, *, keep: int = DEFAULT_KEEP,
            retriever: ClusterRetriever | None = None) -> ReindexReport:
    """Build, check, swap and prune in one go.

    A failure before the swap deletes the new version and leaves the alias and
    the old versions as they were. ``retriever`` is a connection to reuse
    (default: one built from ``settings``).
    """
    started = time.perf_counter()
    reindexer = Reindexer(settings, keep=keep, retriever=retriever)
    target = reindexer.start()
    report = ReindexReport(index=target.index)
    last: list[Product] = []

    def remember_last(items: Iterable[Product]) -> Iterable[Product]:
        # The last record of an id is the one indexed, so the last product is a safe probe.
        for product in items:
            last[:] = [product]
            yield product

    try:
        report.products = reindexer.fill(remember_last(products))
        reindexer.check(report.products, last[0] if last else None)
        report.previous = reindexer.swap()
    except BaseException:
        reindexer.abandon()
        raise
    report.deleted = reindexer.prune()
    report.seconds = time.perf_counter() - started
    return report


def rollback(settings: LexicalSettings, retriever: ClusterRetriever | None = None) -> tuple[str, str]:
    return Reindexer(settings, retriever=retriever).rollback()
