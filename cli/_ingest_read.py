"""Reading third-party JSON exports as people really have them (``docs/ingest.md``).

Atlas results arrive as a JSON array (the API), an API page (``{"count", "next",
"results": [...]}``), JSON lines (bulk downloads, streaming), or JSON lines whose lines are
themselves arrays or pages; probe metadata as an API page, a plain array, or the probe
archive's ``{"objects": [...]}``. Any of these may be compressed (gzip, bzip2, xz).

Invariants:

* The compression is told by the file's **magic bytes**, never by its name alone: a
  ``.json`` that is really gzip is read; a ``.gz`` that is plain text is read as text.
* JSON lines are streamed (one line in memory at a time): a daily bulk dump need not fit
  in memory. A whole-document form (array, pretty-printed object) is parsed at once.
* A line that is not JSON is yielded as ``None`` (the caller counts it ``malformed``) and
  its file and line are kept in :attr:`JsonRecords.bad_lines`; a document that is not JSON
  at all, a truncated or corrupt compressed stream, or bytes that are not UTF-8 raise
  :class:`InputError` naming the file (and the line and column when JSON says where).
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Final, cast

from chiploc.common.errors import InputError

__all__ = ["JsonRecords", "unwrap"]

#: Magic bytes -> the name of the compression (and how it is opened below).
_MAGIC: Final = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
)
#: Where a bad line is remembered (the count is exact; the places are the first few).
MAX_BAD_LINES_KEPT: Final = 5
#: Keys of a wrapper around records: the API's pages and the probe archive.
_WRAPPER_KEYS: Final = ("results", "objects")


def unwrap(doc: Any) -> list[Any]:
    """The records of one JSON value: an array's items (each item unwrapped once more, so
    an array of pages works), a page's ``results`` / ``objects``, or the value itself."""
    if isinstance(doc, list):
        out: list[Any] = []
        for item in doc:
            out.extend(_unwrap_page(item))
        return out
    return _unwrap_page(doc)


def _unwrap_page(doc: Any) -> list[Any]:
    if isinstance(doc, dict) and "type" not in doc and "prb_id" not in doc:
        for key in _WRAPPER_KEYS:
            inner = doc.get(key)
            if isinstance(inner, list):
                return list(inner)
    return [doc]


class JsonRecords:
    """The records of one file (or ``-``: standard input), in any form above; iterate once.

    ``compression`` and ``form`` say what was found (for the summary); ``bad_lines`` counts
    JSON-lines lines that did not parse, and ``bad_places`` names the first few."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.compression = "none"
        self.form = "?"
        self.bad_lines = 0
        self.bad_places: list[str] = []
        self._parsed_any = False
        self._lineno = 0

    # -- opening ---------------------------------------------------------------------

    def _open(self) -> io.BufferedReader:
        if self.name == "-":
            stdin = sys.stdin.buffer
            if isinstance(stdin, io.BufferedReader):
                return stdin
            return io.BufferedReader(cast(io.RawIOBase, stdin))  # peek() needs a buffer
        try:
            return Path(self.name).open("rb")
        except OSError as e:
            raise InputError(f"{self.name}: cannot read: {e}", reason="unreadable") from e

    def _text(self, buffered: io.BufferedReader) -> IO[str]:
        head = buffered.peek(8)[:8]
        stream: io.BufferedIOBase = buffered
        for magic, kind in _MAGIC:
            if head.startswith(magic):
                self.compression = kind
                # no OS resource of their own: the file under them is closed in __iter__
                if kind == "gzip":
                    stream = gzip.GzipFile(fileobj=buffered, mode="rb")
                elif kind == "bzip2":
                    stream = bz2.BZ2File(buffered, mode="rb")
                else:
                    stream = lzma.LZMAFile(buffered, mode="rb")  # noqa: SIM115
                break
        return io.TextIOWrapper(cast(IO[bytes], stream), encoding="utf-8-sig", newline=None)

    # -- reading ---------------------------------------------------------------------

    def _readline(self, text: IO[str]) -> str:
        line = text.readline()
        if line:
            self._lineno += 1
        return line

    def _nonblank(self, text: IO[str]) -> str:
        """The next line with content ('' at the end of the file)."""
        line = self._readline(text)
        while line and not line.strip():
            line = self._readline(text)
        return line

    def __iter__(self) -> Iterator[Any]:
        raw = self._open()
        self._lineno = 0
        try:
            text = self._text(raw)
            first = self._nonblank(text)
            if not first:
                raise InputError(f"{self.name}: empty file", reason="empty")
            if first.lstrip()[:1] in ("[", "{"):
                try:
                    doc = json.loads(first)
                except json.JSONDecodeError:  # a document over several lines
                    whole = self._document(first, text)
                    self.form = "JSON array" if isinstance(whole, list) else "JSON document"
                    yield from unwrap(whole)
                    return
                second = self._nonblank(text)
                if not second:  # one value: an array, an API page, the probe archive, a result
                    self.form = "JSON array" if isinstance(doc, list) else "JSON document"
                    yield from unwrap(doc)
                    return
                self.form = "JSON lines"
                self._parsed_any = True
                yield from unwrap(doc)
                first = second
            else:
                self.form = "JSON lines"
            yield from self._lines(first, text)
        except (OSError, EOFError, lzma.LZMAError, zlib.error) as e:
            raise InputError(
                f"{self.name}: {self.compression} stream broken near line {self._lineno}: {e}",
                reason="bad_compression",
            ) from e
        except UnicodeDecodeError as e:
            raise InputError(
                f"{self.name}: not UTF-8 text near line {self._lineno + 1} (compressed with "
                "something other than gzip, bzip2 or xz?)",
                reason="bad_encoding",
            ) from e
        finally:
            if self.name != "-":
                raw.close()

    def _document(self, first: str, text: IO[str]) -> Any:
        start = self._lineno
        body = first + text.read()
        try:
            return json.loads(body)
        except json.JSONDecodeError as e:
            raise InputError(
                f"{self.name}: line {start + e.lineno - 1} column {e.colno}: "
                f"not valid JSON ({e.msg})",
                reason="bad_json",
            ) from e

    def _lines(self, line: str, text: IO[str]) -> Iterator[Any]:
        while line:
            if line.strip():
                try:
                    doc = json.loads(line)
                except json.JSONDecodeError as e:
                    self.bad_lines += 1
                    if len(self.bad_places) < MAX_BAD_LINES_KEPT:
                        self.bad_places.append(f"{self.name}:{self._lineno} ({e.msg})")
                    yield None
                else:
                    self._parsed_any = True
                    yield from unwrap(doc)
            line = self._readline(text)
        if not self._parsed_any:
            where = f" (first bad line: {self.bad_places[0]})" if self.bad_places else ""
            raise InputError(
                f"{self.name}: neither a JSON array nor JSON lines{where}", reason="bad_json"
            )

    def describe(self) -> str:
        return self.form + ("" if self.compression == "none" else f", {self.compression}")
