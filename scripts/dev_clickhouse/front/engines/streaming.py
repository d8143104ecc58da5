"""Results streamed as the engine produces them, for the engines whose connections have a
streaming query (chdb-core 26.x, chdb 3.x): StreamingSession, mixed into their sessions.
The first plan.stream_after bytes are held back (a short result goes out whole, with a
Content-Length); the rest is handed on chunk by chunk.  A WithNames/WithNamesAndTypes
header comes once, and a JSON-family result is joined into one document (_JsonEnvelope).
"""

import re
import time

from .base import EngineError, Ending, RawResult


class StreamingSession:
    """What a session needs for `_stream(plan)`: `conn` (`send_query`,
    `streaming_fetch_result`, `streaming_cancel_query`), and the engine's own

      _send_query(statement, fmt, params)  the streaming query started
      _probe(sql, fmt)                      a small query's whole output, on the same connection
      _watch_progress(callback)             progress reports to callback; False where the engine has none
      _unwatch_progress()
      _after_broken_stream()                what follows a stream that ended early
    """

    def _watch_progress(self, callback):
        return False

    def _unwatch_progress(self):
        pass

    def _adds_json_sections(self):
        """Whether the connection's settings change a JSON document in ways that its blocks
        cannot tell: sections (extremes, rows_before_limit_at_least, rows_before_aggregation)
        or rows skipped (offset).  A small query in JSONCompact shows them.  (Not getSetting():
        a query's own context reads 0 for `limit` and `offset`, which the query has applied.)"""
        try:
            probe = self._probe(_JSON_PROBE, "JSONCompact")
        except EngineError:
            return True  # (the statement reports the error of its settings itself)
        tail = probe[probe.find(_JsonEnvelope.END_OF_DATA, probe.find(_JsonEnvelope.DATA) + 1):]
        rows = _JSON_ROWS.search(tail)
        return not (set(_JSON_KEY.findall(tail)) <= {b"rows", b"statistics"} and rows and rows.group(1) == b"3")

    def _after_broken_stream(self):
        """What follows a streamed query that ended early (an error, a cancel) on this connection."""

    def _stream(self, plan, statement=None):
        """`statement` (the plan's own by default) through the engine's streaming query: its
        output is held back up to plan.stream_after bytes; a longer one is handed on as
        RawResult.rest, chunk by chunk."""
        statement = plan.statement if statement is None else statement
        name = (plan.stream_format or "").lower()
        envelope = None
        progress = {}  # the engine's last progress report of the query (JSON formats)
        watching = [False]

        def unwatch():
            if watching[0]:
                watching[0] = False
                self._unwatch_progress()
        if name in JSON_ENVELOPE_FORMATS:
            if self._adds_json_sections():
                return self._whole(plan)
            envelope = _JsonEnvelope()
            # The blocks' own read counts miss reads reported after the last block; the
            # engine's progress reports, where it gives them, end with the query's totals
            # and elapsed time.
            watching[0] = self._watch_progress(progress.update)
        started = time.monotonic_ns()
        try:
            stream = self._send_query(statement, plan.output_format, plan.params)
        except RuntimeError as exc:
            unwatch()
            raise EngineError(str(exc)) from None
        chunks, size = [], 0
        counts = [0, 0, 0, 0]  # storage rows and bytes read, result rows and bytes
        # The engine writes a WithNames/WithNamesAndTypes format's header at the start of
        # every chunk: the response has it once.
        failed = [False]  # whether the engine reported the query's error
        over = [False]  # whether the engine gave the end of the result
        header_lines = _header_lines(plan.stream_format)
        header = [None]

        def fetch():
            """The next bytes of the response; b"" at its end."""
            while True:
                if over[0]:
                    return b""  # (asking the engine again would wait for ever in chdb 3.7.2)
                try:
                    chunk = self.conn.streaming_fetch_result(stream)
                except RuntimeError as exc:
                    failed[0] = True
                    raise EngineError(str(exc)) from None
                data = chunk.bytes() if chunk is not None else b""
                if chunk is not None:  # (the last, empty, chunk may count reads of its own)
                    counts[0] += chunk.storage_rows_read()
                    counts[1] += chunk.storage_bytes_read()
                    counts[2] += chunk.rows_read()
                if not data:
                    over[0] = True
                    if envelope is not None and not envelope.ended:
                        elapsed = time.monotonic_ns() - started
                        unwatch()
                        data = envelope.end(progress.get("elapsed_ns") or elapsed,
                                            max(counts[0], progress.get("read_rows", 0)),
                                            max(counts[1], progress.get("read_bytes", 0)))
                        counts[3] += len(data)
                    return data
                if header_lines:
                    if header[0] is None:
                        header[0] = data[:_header_size(data, header_lines, plan.stream_format)]
                    elif data.startswith(header[0]):
                        data = data[len(header[0]):]
                    else:
                        raise EngineError("a streamed chunk does not start with the format's header")
                if envelope is not None:
                    data = envelope.part(data)
                if data:
                    counts[3] += len(data)
                    return data

        def cancel():
            # A query that failed or ended is over: cancelling it would wait for ever in chdb 3.7.2.
            if not (failed[0] or over[0]):
                try:
                    self.conn.streaming_cancel_query(stream)
                except RuntimeError:
                    pass
            unwatch()
            self._after_broken_stream()

        try:
            while size < plan.stream_after:
                data = fetch()
                if not data:
                    if not chunks and (header_lines or envelope is not None):
                        # No block at all (chdb 3.7.2 streams nothing for an empty result,
                        # not even a header or a JSON document): the engine's whole answer,
                        # which has them.
                        return self._whole(plan)
                    return RawResult(b"".join(chunks), counts[0], counts[1], 0, 0, counts[2], counts[3])
                chunks.append(data)
                size += len(data)
        except BaseException:
            cancel()
            raise

        def rest():
            while True:
                data = fetch()
                if not data:
                    return
                yield data

        raw = RawResult(b"".join(chunks), counts[0], counts[1], 0, 0, counts[2], counts[3])
        # An error, or the client gone: the query is cancelled.
        raw.rest = Ending(rest(), lambda: None if raw.rest.finished else cancel())
        return raw


# Formats with a JSON envelope (meta, data, then rows and statistics) that the front streams.
JSON_ENVELOPE_FORMATS = frozenset(name.lower() for name in (
    "JSON", "JSONCompact", "JSONStrings", "JSONCompactStrings"))
_JSON_ROWS = re.compile(rb'\n\t"rows": (\d+)')
_JSON_KEY = re.compile(rb'\n\t"(\w+)":')
_JSON_PROBE = "SELECT number % 3 AS k, count() FROM numbers(3) GROUP BY k"  # (3 rows, an aggregation)
_JSON_STATISTICS = re.compile(
    rb'(\n\t"statistics":\n\t\{\n\t\t"elapsed": )[^,\n]*(,\n\t\t"rows_read": )\d+(,\n\t\t"bytes_read": )\d+')


class _JsonEnvelope:
    """A JSON-family result, streamed.  The engine's streaming query writes every block as a
    document of its own (meta, the block's rows, its row count and statistics); the response
    is one document, as the buffered one: the meta once, the rows of every block joined with
    the format's separator, then the end of the last block's document (the same keys in the
    same order) with the whole result's row count and statistics (rows_read, bytes_read and
    elapsed as the engine's last progress report of the query gives them)."""

    DATA = b'\n\t"data":\n\t[\n'
    END_OF_DATA = b"\n\t]"  # (rows are indented deeper, and their strings escape line breaks)

    def __init__(self):
        self.head = None
        self.tail = None
        self.rows = 0
        self.has_rows = False
        self.ended = False

    def part(self, data):
        """The bytes of one block's document that go into the response."""
        if self.head is None:
            at = data.find(self.DATA)
            if at < 0:
                raise EngineError("a streamed block is not a JSON document of its format")
            self.head = out = data[:at + len(self.DATA)]
        elif data.startswith(self.head):
            out = b""
        else:
            raise EngineError("a streamed block does not start with the meta of the first")
        end = data.find(self.END_OF_DATA, len(self.head))
        count = _JSON_ROWS.search(data, max(end, 0))
        if end < 0 or count is None:
            raise EngineError("a streamed block's JSON document has no end of data")
        self.rows += int(count.group(1))
        self.tail = data[end:]
        rows = data[len(self.head):end]
        if rows:
            out += (b",\n" if self.has_rows else b"") + rows
            self.has_rows = True
        return out

    def end(self, elapsed_ns, rows_read, bytes_read):
        """The end of the document, once the last block is in."""
        self.ended = True
        if self.tail is None:
            return b""
        tail = _JSON_ROWS.sub(b'\n\t"rows": %d' % self.rows, self.tail, count=1)
        elapsed = _float_text(elapsed_ns / 1e9).encode()
        return _JSON_STATISTICS.sub(lambda m: b"%s%s%s%d%s%d" % (m.group(1), elapsed, m.group(2), rows_read,
                                                                   m.group(3), bytes_read), tail, count=1)


def _float_text(value):
    """A Float64 as ClickHouse writes it (the shortest text that reads back the same, no
    ".0" on whole numbers), for values from 1e-4 to 1e15, where ClickHouse and Python's
    repr both write positional notation: a streamed result's elapsed seconds are there
    (past the 1 MiB held back).  Outside, positional notation too (ClickHouse writes, e.g.,
    0.00001234 but 1e-7)."""
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    text = repr(value)
    if "e" in text:
        text = f"{value:.20f}".rstrip("0")
    return text


def _header_lines(output_format):
    """How many lines a streamed format's header has (0: none)."""
    name = (output_format or "").lower()
    if name.endswith("withnamesandtypes"):
        return 2
    if name.endswith("withnames"):
        return 1
    return 0


def _header_size(data, lines, output_format):
    """The size of the first `lines` records of `data` (CSV quotes may hold newlines)."""
    csv = (output_format or "").lower().startswith("csv")
    quotes = 0
    for index, byte in enumerate(data):
        if csv and byte == 0x22:
            quotes += 1
        elif byte == 0x0A and quotes % 2 == 0:
            lines -= 1
            if lines == 0:
                return index + 1
    return len(data)
