"""Request bodies sent compressed (``Content-Encoding``), inflated as Elasticsearch inflates them, within the limit.

Elasticsearch accepts compressed request bodies whatever its settings (since
5.0): its HTTP layer is Netty's, whose decompressor reads ``gzip`` and
``x-gzip``, and ``deflate`` and ``x-deflate`` either zlib-wrapped or raw,
and passes any other coding (``identity``, a misused ``UTF-8``) through as it
came. Its clients send gzip: the Python client with ``http_compress=True``,
the JS client with ``compression: true``. Read as they were, such bodies were
a 400 "not UTF-8".

The body's limit (``service.max_body_bytes``) applies to what it inflates to:
inflating stops one byte past it, so a small body that would inflate to
gigabytes (a zip bomb) costs no more than a body at the limit.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable

GZIP, DEFLATE = "gzip", "deflate"
CODINGS = {"gzip": GZIP, "x-gzip": GZIP, "deflate": DEFLATE, "x-deflate": DEFLATE}
"""The content codings inflated here, by their names in the header; Netty's, less brotli, snappy and zstd, which
it reads only with optional libraries and no Elasticsearch client sends."""


class TooLarge(Exception):
    """The body inflates past the limit."""


class Corrupt(Exception):
    """The body is not a whole stream of its coding."""


def coding_of(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The coding to inflate the body from (:data:`GZIP` or :data:`DEFLATE`), or None: there is none, or one this
    does not read, and the body is taken as it came (as Elasticsearch takes it)."""
    for name, value in headers:
        if name.lower() == b"content-encoding":
            return CODINGS.get(value.decode("latin-1").strip().lower())
    return None


def inflate(data: bytes, coding: str, limit: int) -> bytes:
    """``data`` inflated from ``coding``; :class:`TooLarge` past ``limit`` bytes (not inflated further),
    :class:`Corrupt` when it is not a whole stream. Concatenated gzip members are one body, as gzip reads them."""
    inflated = bytearray()
    while True:
        try:
            stream = zlib.decompressobj(window_bits(data, coding))
            inflated += stream.decompress(data, limit + 1 - len(inflated))
        except zlib.error:
            raise Corrupt(f"the {coding} stream is corrupt") from None
        if len(inflated) > limit:
            raise TooLarge(f"it inflates to more than {limit} bytes")
        if not stream.eof:
            raise Corrupt(f"the {coding} stream ends before it is complete")
        data = stream.unused_data
        if not data:
            return bytes(inflated)
        if coding != GZIP:
            raise Corrupt(f"there are bytes after the end of the {coding} stream")


def window_bits(data: bytes, coding: str) -> int:
    """zlib's ``wbits`` for the stream: gzip's header; for deflate, the zlib header when the first two bytes are
    one (its check bits make them a multiple of 31), else raw deflate, as Netty tells them apart."""
    if coding == GZIP:
        return 16 + zlib.MAX_WBITS
    zlib_wrapped = len(data) >= 2 and data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0
    return zlib.MAX_WBITS if zlib_wrapped else -zlib.MAX_WBITS
