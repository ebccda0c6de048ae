"""Product texts tokenised once at index time, so that a rerank request tokenises only its query.

Tokenising the (query, product text) pairs is about half of the cross-encoder's
time on a GPU (5.2 of 10.8 ms at a window of 100, issue 14), and all of it
repeats work: the product texts only change when the catalog does. A build
therefore stores each product's token ids beside the index version, and a
request assembles ``[CLS] query [SEP] text [SEP]`` from them with the
tokenizer's own pair truncation, giving the model the very input the tokenizer
would have built (the tests compare them).

The ids are only valid for the tokenizer that made them, so the version
records its identity (a digest of the tokenizer's vocabulary, normaliser and
special tokens, plus the longest pair the stored texts allow), and a reranker
whose tokenizer differs refuses them and tokenises as before, saying so once
in the log. A product whose text changed after the ids were stored (an
in-place update the serving worker has not reloaded) is caught by a checksum
of its text and tokenised on the spot.

Storage, in ``<version>/rerank_tokens/``: the ids of every text end to end
(uint16 when the vocabulary fits, else int32), each text's start offset, its
full token count (the pair truncation depends on it even past the stored
prefix) and text checksum, all ``.npy`` files opened memory-mapped, plus
``meta.json`` with the identity and the product ids in row order.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from .errors import stop_if_past
from .product import Product

log = logging.getLogger(__name__)

TOKENS_DIR = "rerank_tokens"
META_FILE = "meta.json"
PAIR_SPECIAL_TOKENS = 3  # [CLS] query [SEP] text [SEP]
STORED_MAX_LENGTH = 512  # rerank.max_length's upper bound: stored texts serve any configured length
FORMAT = 1


@dataclass(frozen=True)
class TokenizerIdentity:
    """What must match for stored ids to mean the same to a serving tokenizer; ``name`` is for people only."""

    name: str
    vocab_sha256: str
    max_length: int

    def refusal(self, serving: TokenizerIdentity | None) -> str | None:
        """Why ids stored with this identity cannot serve ``serving``; None when they can."""
        if serving is None:
            return "the reranker's tokenizer is not a fast (Rust) tokenizer, so its identity cannot be checked"
        if serving.vocab_sha256 != self.vocab_sha256:
            return (
                f"they were made by the tokenizer of {self.name!r} (sha256 {self.vocab_sha256[:12]}) and the "
                f"reranker's ({serving.name!r}, sha256 {serving.vocab_sha256[:12]}) differs"
            )
        if serving.max_length > self.max_length:
            return f"they hold pairs up to {self.max_length} tokens and the reranker reads {serving.max_length}"
        return None


def tokenizer_identity(tokenizer: Any, name: str, max_length: int) -> TokenizerIdentity | None:
    """The identity of a fast tokenizer: a digest of its definition without the per-call truncation and padding."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return None
    definition = json.loads(backend.to_str())
    definition.pop("truncation", None)
    definition.pop("padding", None)
    digest = hashlib.sha256(json.dumps(definition, sort_keys=True).encode()).hexdigest()
    return TokenizerIdentity(name=name, vocab_sha256=digest, max_length=max_length)


def text_checksum(text: str) -> int:
    return zlib.crc32(text.encode("utf-8"))


def tokenise_texts(tokenizer: Any, texts: Sequence[str]) -> list[list[int]]:
    """Each text's ids alone, no special tokens, untruncated: a pair's second half as the tokenizer makes it."""
    if not texts:
        return []
    encoded = tokenizer(
        list(texts),
        add_special_tokens=False,
        truncation=False,
        return_attention_mask=False,
        return_token_type_ids=False,
        verbose=False,
    )
    return [list(ids) for ids in encoded["input_ids"]]


@dataclass
class StoredText:
    """One product's ids, cut to the longest any pair can use, and its full length (truncation depends on it)."""

    ids: np.ndarray
    length: int


class PretokenisedTexts:
    """The stored ids of a version, memory-mapped; :meth:`get` answers only for an unchanged text."""

    def __init__(self, root: Path, identity: TokenizerIdentity, product_ids: list[str]):
        self.root = root
        self.identity = identity
        self.product_ids = product_ids
        self._rows = {pid: row for row, pid in enumerate(product_ids)}
        self.tokens = np.load(root / "tokens.npy", mmap_mode="r")
        self.offsets = np.load(root / "offsets.npy", mmap_mode="r")
        self.lengths = np.load(root / "lengths.npy", mmap_mode="r")
        self.checksums = np.load(root / "checksums.npy", mmap_mode="r")

    @classmethod
    def open(cls, root: Path) -> PretokenisedTexts | None:
        """The texts stored in ``root``, or None (logged) when there are none or they are unreadable."""
        meta_path = root / META_FILE
        if not meta_path.is_file():
            return None
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            if meta.get("format") != FORMAT:
                raise ValueError(f"format {meta.get('format')!r}, expected {FORMAT}")
            return cls(root, TokenizerIdentity(**meta["identity"]), list(meta["product_ids"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring the pre-tokenised texts in %s (%s); the reranker will tokenise them", root, exc)
            return None

    def __len__(self) -> int:
        return len(self.product_ids)

    def get(self, product_id: str, text: str) -> StoredText | None:
        """The stored ids of ``product_id`` if they were made from ``text``; None otherwise."""
        row = self._rows.get(product_id)
        if row is None or int(self.checksums[row]) != text_checksum(text):
            return None
        return StoredText(np.asarray(self.tokens[self.offsets[row] : self.offsets[row + 1]]), int(self.lengths[row]))


class TokenWriter:
    """Tokenises products as a build writes them, and saves the arrays of a version.

    Given the texts a version already stores (an in-place update), it keeps
    those of products that are neither deleted nor rewritten; ids from
    another tokenizer are not kept, and :attr:`complete` says so.
    """

    def __init__(
        self, tokenizer: Any, identity: TokenizerIdentity, base: PretokenisedTexts | None = None, fresh: bool = True
    ):
        self.tokenizer = tokenizer
        self.identity = identity
        self.cap = identity.max_length - PAIR_SPECIAL_TOKENS
        self._base = base if base is not None and base.identity == identity else None
        # Whether the products added (and the base) will be all there are; if not, the caller adds the rest.
        self.complete = fresh or self._base is not None
        self._dropped: set[str] = set()
        self._new: dict[str, tuple[np.ndarray, int, int]] = {}

    def add(self, products: Iterable[Product], chunk: int = 1024) -> None:
        """Tokenise (and keep) these products' texts, ``chunk`` at a time: a whole catalog may stream through."""
        it = iter(products)
        while batch := list(islice(it, chunk)):
            texts = [p.embedding_text() for p in batch]
            for product, text, ids in zip(batch, texts, tokenise_texts(self.tokenizer, texts)):
                self._new[product.id] = (np.asarray(ids[: self.cap], dtype=np.int64), len(ids), text_checksum(text))

    def delete(self, product_ids: Iterable[str]) -> None:
        for pid in product_ids:
            self._dropped.add(pid)
            self._new.pop(pid, None)

    def save(self, root: Path) -> None:
        """Write the arrays beside, then rename over: a reader that mapped the old ones keeps them."""
        rows: list[tuple[str, np.ndarray, int, int]] = []
        base = self._base
        if base is not None:
            for row, pid in enumerate(base.product_ids):
                if pid not in self._dropped and pid not in self._new:
                    stored = np.asarray(base.tokens[base.offsets[row] : base.offsets[row + 1]], dtype=np.int64)
                    rows.append((pid, stored, int(base.lengths[row]), int(base.checksums[row])))
        rows += [(pid, ids, length, checksum) for pid, (ids, length, checksum) in self._new.items()]
        dtype = np.uint16 if len(self.tokenizer) <= np.iinfo(np.uint16).max + 1 else np.int32
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        offsets[1:] = np.cumsum([len(r[1]) for r in rows])
        tmp = root.with_name(f".{root.name}.{os.getpid()}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        tokens = np.concatenate([r[1] for r in rows]) if rows else np.empty(0)
        np.save(tmp / "tokens.npy", tokens.astype(dtype))
        np.save(tmp / "offsets.npy", offsets)
        np.save(tmp / "lengths.npy", np.array([r[2] for r in rows], dtype=np.int32))
        np.save(tmp / "checksums.npy", np.array([r[3] for r in rows], dtype=np.uint32))
        meta = {"format": FORMAT, "identity": asdict(self.identity), "product_ids": [r[0] for r in rows]}
        (tmp / META_FILE).write_text(json.dumps(meta) + "\n", encoding="utf-8")
        old = root.with_name(f".{root.name}.{os.getpid()}.old")
        if root.exists():
            root.rename(old)
        tmp.rename(root)
        shutil.rmtree(old, ignore_errors=True)


def truncated_lengths(query_length: int, text_length: int, max_length: int) -> tuple[int, int]:
    """How many query and text tokens a pair keeps: the tokenizer's ``longest_first`` truncation.

    The shorter side keeps up to half the budget and the longer side the rest
    (ties count the text as the longer), exactly as the Rust tokenizers do.
    """
    budget = max_length - PAIR_SPECIAL_TOKENS
    if query_length + text_length <= budget:
        return query_length, text_length
    if query_length > text_length:
        kept_text = min(text_length, budget // 2)
        return budget - kept_text, kept_text
    kept_query = min(query_length, budget // 2)
    return kept_query, budget - kept_query


class PairEncoder:
    """Builds a cross-encoder's input from a query's ids and stored text ids, as the tokenizer's pair call would."""

    def __init__(self, tokenizer: Any, max_length: int, texts: PretokenisedTexts):
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.texts = texts
        self.cls_id, self.sep_id = int(tokenizer.cls_token_id), int(tokenizer.sep_token_id)
        self.pad_id = int(tokenizer.pad_token_id)

    def stored(self, items: Sequence[tuple[str, str]]) -> list[StoredText]:
        """Each (product id, text)'s ids: stored ones where the text is unchanged, the rest tokenised now."""
        found = [self.texts.get(pid, text) for pid, text in items]
        missing = [i for i, s in enumerate(found) if s is None]
        if missing:
            fresh = tokenise_texts(self.tokenizer, [items[i][1] for i in missing])
            for i, ids in zip(missing, fresh):
                found[i] = StoredText(np.asarray(ids, dtype=np.int64), len(ids))
        return [s for s in found if s is not None]

    def features(self, query_ids: Sequence[int], texts: Sequence[StoredText]) -> dict[str, Any]:
        """input_ids, token_type_ids and attention_mask for one batch, padded on the right to its longest pair."""
        import torch

        rows = []
        for text in texts:
            keep_query, keep_text = truncated_lengths(len(query_ids), text.length, self.max_length)
            rows.append((keep_query, np.asarray(text.ids[:keep_text], dtype=np.int64)))
        width = max(keep_query + len(ids) for keep_query, ids in rows) + PAIR_SPECIAL_TOKENS
        input_ids = np.full((len(rows), width), self.pad_id, dtype=np.int64)
        token_types = np.zeros((len(rows), width), dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        query = np.asarray(query_ids, dtype=np.int64)
        for r, (keep_query, ids) in enumerate(rows):
            second = keep_query + 2  # where the text starts, after [CLS] query [SEP]
            end = second + len(ids) + 1
            input_ids[r, 0] = self.cls_id
            input_ids[r, 1 : keep_query + 1] = query[:keep_query]
            input_ids[r, keep_query + 1] = self.sep_id
            input_ids[r, second : end - 1] = ids
            input_ids[r, end - 1] = self.sep_id
            token_types[r, second:end] = 1
            mask[r, :end] = 1
        return {
            "input_ids": torch.from_numpy(input_ids),
            "token_type_ids": torch.from_numpy(token_types),
            "attention_mask": torch.from_numpy(mask),
        }

    def logits(
        self,
        model: Any,
        query: str,
        items: Sequence[tuple[str, str]],
        batch_size: int,
        bf16: bool = False,
        deadline: float | None = None,
    ) -> np.ndarray:
        """The model's logit per (product id, text), in input order; batches hold pairs of similar length.

        ``bf16``: under CPU bf16 autocast (see :func:`.device.inference_bf16`); ``deadline`` (monotonic): no
        batch is started after it (see :func:`.errors.stop_if_past`)."""
        if not items:
            return np.empty(0)
        import torch

        query_ids = tokenise_texts(self.tokenizer, [query])[0]
        texts = self.stored(items)
        order = np.argsort([-t.length for t in texts], kind="stable")
        out = np.empty(len(texts), dtype=np.float64)
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            for start in range(0, len(order), batch_size):
                stop_if_past(deadline, "rerank")
                chosen = order[start : start + batch_size]
                features = self.features(query_ids, [texts[i] for i in chosen])
                features = {k: v.to(model.device) for k, v in features.items()}
                scores = model({**features, "modality": "text"})["scores"]
                out[chosen] = scores.float().reshape(-1).cpu().numpy()
        return out
