"""The server side of a versioned build: one new index per version, and the alias that selects one.

Searches always go to the alias (``lexical.index``), so until the swap they
see the old index, complete; moving the alias is one ``_aliases`` request,
which the cluster applies atomically. Index versions are
``{alias}-{version stamp}``, the stamp of the index directory version they
were built with (:mod:`.versions`), whose manifest records the index; so a
rollback of the directory knows which index to move the alias back to, and
an index that no kept version records is what a killed build left behind.

:mod:`.indexes` drives the phases (start, fill through the returned
retriever, check, move the alias, prune) around the directory's own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ..backends.cluster import ClusterRetriever, cluster_retriever
from ..core.catalog_fields import CatalogFields
from ..core.errors import ConfigError
from ..core.settings import LexicalSettings

VERSION_SUFFIX = re.compile(r"-\d{8}-\d{6}-\d{6}$")


class Reindexer:
    """The index versions behind ``settings.index``, and the alias over them."""

    def __init__(self, settings: LexicalSettings, retriever: ClusterRetriever | None = None):
        self.alias = settings.index
        self.live = retriever if retriever is not None else cluster_retriever(settings)

    def versions(self) -> dict[str, set[str]]:
        """This alias's index versions, oldest first, each with the aliases on it."""
        found = self.live.aliases(f"{self.alias}-*")
        return {name: found[name] for name in sorted(found) if VERSION_SUFFIX.search(name[len(self.alias) :])}

    def current(self) -> list[str]:
        """The indices the alias points at now (none before the first build)."""
        found = self.live.aliases(self.alias) if self.live.exists(self.alias) else {}
        if self.alias in found:
            raise ConfigError(
                f"{self.alias!r} at {self.live.url} is an index, not an alias, so it cannot be "
                f"swapped: reindex under another lexical.index, or delete that index first"
            )
        return sorted(name for name, aliases in found.items() if self.alias in aliases)

    def start(self, stamp: str, catalog: CatalogFields | None = None) -> ClusterRetriever:
        """Create the version for ``stamp``, mapping ``catalog``'s fields; returns a retriever writing to it (and
        not yet searched by anyone)."""
        self.current()  # a plain index in the alias's place fails now, not after the whole load
        name = f"{self.alias}-{stamp}"
        self.live.create_index(name, catalog)
        return self.live.bound_to(name, catalog or CatalogFields())

    def point_to(self, indices: Iterable[str]) -> list[str]:
        """Make the alias select exactly ``indices`` in one atomic request; returns what it selected before.

        No indices removes the alias (undoing a first build's swap).
        """
        previous = self.current()
        wanted = sorted(indices)
        if wanted == previous:
            return previous
        for name in wanted:
            if not self.live.exists(name):
                raise ConfigError(
                    f"index {name!r} is gone from {self.live.url}; the alias {self.alias!r} was not moved"
                )
        actions = [{"remove": {"index": name, "alias": self.alias}} for name in previous if name not in wanted]
        actions += [{"add": {"index": name, "alias": self.alias}} for name in wanted if name not in previous]
        self.live.update_aliases(actions)
        return previous

    def prune(self, retain: Iterable[str]) -> list[str]:
        """Delete versions that are neither in ``retain`` nor behind the alias; returns them."""
        kept = set(retain)
        doomed = [name for name, aliases in self.versions().items() if name not in kept and self.alias not in aliases]
        for name in doomed:
            self.live.delete_index(name)
        return doomed

    def abandon(self, index: str) -> None:
        """Delete a new version that will not be swapped in (after a failed load or check)."""
        if index not in self.current():
            self.live.delete_index(index)
