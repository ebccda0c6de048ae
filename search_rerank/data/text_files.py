"""Lines of the text files users bring (catalogs, judgments, click logs), as their editors number them.

Files come from spreadsheets, Windows tools and export jobs: a UTF-8
byte-order mark, CRLF line ends, gzip compression (``.gz``), and now and
then bytes that are not UTF-8 (a Latin-1 or Windows-1252 export). Each line
is decoded on its own, so such a byte is refused as a :class:`DataError`
naming its file and line, with the fix, instead of a codec error naming
neither; the file is never guessed into another encoding, which would put
wrong characters into the index without a word. The one exception is a
format whose files are Latin-1 by definition (Kaggle ships its Home Depot
files as ISO-8859-1): its loader asks for ``latin1_fallback``, and a line
that is not UTF-8 is then Latin-1 by the format's word, not by a guess.
"""

from __future__ import annotations

import codecs
import gzip
import zlib
from collections.abc import Iterator
from pathlib import Path

from ..core.errors import DataError

GZIP_SUFFIX = ".gz"
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
_UTF16 = "the file is UTF-16 (it starts with a UTF-16 byte-order mark); save it as UTF-8"
_C1_CONTROLS = "search_rerank.c1_controls"
"""The five bytes Windows-1252 leaves undefined, read as the Latin-1 control characters they are there (as the
WHATWG Encoding Standard decodes them): with it, a Latin-1 line decodes whatever its bytes."""


def _as_latin1(exc: UnicodeError) -> tuple[str, int]:
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    return exc.object[exc.start : exc.end].decode("latin-1"), exc.end


codecs.register_error(_C1_CONTROLS, _as_latin1)


def text_lines(path: str | Path, *, latin1_fallback: bool = False) -> Iterator[tuple[int, str]]:
    """Every line of the UTF-8 file ``path`` with its 1-based number, line end kept (csv needs it).

    A leading byte-order mark is dropped; ``.gz`` files are read through gzip;
    ``\\r\\n``, ``\\n`` and a lone ``\\r`` all end a line. A file that cannot
    be opened or decompressed, and a line that is not UTF-8, raise
    :class:`DataError`; with ``latin1_fallback`` such a line is read as
    Latin-1 instead, line by line, so that the same file re-saved as UTF-8
    (the fix the refusal suggests) reads the same. Latin-1 as browsers read
    it (the WHATWG Encoding Standard's windows-1252): bytes 0x80 to 0x9F are
    Windows' ``™ – — “ ” € …``, not control characters no text holds, since a
    file labelled ISO-8859-1 is nearly always a Windows export.
    """
    opener = gzip.open if Path(path).suffix.lower() == GZIP_SUFFIX else open
    number = 0
    try:
        with opener(path, "rb") as raw:
            for chunk in raw:
                for data in chunk.splitlines(keepends=True):
                    number += 1
                    if number == 1:
                        data = data.removeprefix(codecs.BOM_UTF8)
                        if data.startswith(_UTF16_BOMS):  # its NULs would be taken for a binary file's
                            raise DataError(path, number, _UTF16)
                    if b"\0" in data:  # no text holds one: read as UTF-8 it would be in an id or a title
                        raise DataError(
                            path, number, "holds a NUL byte: a binary file, or UTF-16 without its byte-order mark"
                        )
                    try:
                        text = data.decode("utf-8")
                    except UnicodeDecodeError as exc:
                        if not latin1_fallback:
                            raise DataError(path, number, _not_utf8(data, exc)) from None
                        text = data.decode("cp1252", errors=_C1_CONTROLS)
                    yield number, text
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(path, number + 1 if number else None, _cannot_read(exc, opener is gzip.open)) from None


def byte_blocks(path: str | Path, size: int = 1 << 16) -> Iterator[bytes]:
    """The bytes of ``path`` (through gzip for ``.gz``) in blocks of at most ``size``, for a format that decodes
    itself: an XML file declares its encoding (Latin-1 and UTF-16 are as valid as UTF-8) and may hold a whole
    feed on one line, which :func:`text_lines` would read into memory at once. Errors as :func:`text_lines`'."""
    gzipped = Path(path).suffix.lower() == GZIP_SUFFIX
    try:
        with (gzip.open if gzipped else open)(path, "rb") as raw:
            while block := raw.read(size):
                yield block
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(path, None, _cannot_read(exc, gzipped)) from None


def _cannot_read(exc: OSError | EOFError | zlib.error, gzipped: bool) -> str:
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return f"cannot read{' (a gzip file, cut short or damaged?)' if gzipped else ''}: {reason}"


def _not_utf8(data: bytes, exc: UnicodeDecodeError) -> str:
    return (
        f"not UTF-8: byte {data[exc.start]:#04x} at byte {exc.start + 1} of the line (a Latin-1 or "
        "Windows-1252 export?); save the file as UTF-8, e.g. iconv -f WINDOWS-1252 -t UTF-8 IN > OUT"
    )
