"""The adapter of chdb-core 26.x (ClickHouse 26.9): a fresh connection per request,
queries at once, streaming inserts and results, and an engine connection kept for each
HTTP session (see ConnectionEngineAPI, _KeptConnectionSession).
"""

import re
import sys
import time

from .base import CheckFailed, Ending, engine_release, EngineAPI, EngineError, EngineSession, RawResult
from ..params import last_value
from ..sql import escape_parameter, PARAM_PREFIX, quote_identifier, quote_string, tsv_rows


class ConnectionEngineAPI(EngineAPI):
    """chdb-core 26.x (ClickHouse 26.9).

    Connections run queries in parallel (the engine releases the GIL; one
    process list, so KILL QUERY from one connection cancels a query of
    another): requests are not serialised.

    Independent connections to one engine, each its own session; `query()`
    takes `params=`; `send_insert()` streams binary-safe INSERT data; and
    `classify_query()` counts statements.  Each request gets a fresh
    connection; one more is held for the life of the process, because the
    engine shuts down when its last connection closes.  (The engine's plain
    `query()` would end inline INSERT data at the first empty line, as its
    multi-statement client does; `send_insert` does not.)
    """

    def __init__(self, chdb_module, data_dir):
        self._connect = chdb_module.connect
        self.release = engine_release()
        # `implicit_select` is on in the embedded engine but off in a server.
        self._conn_str = f"{data_dir}?implicit_select=0"
        self._anchor = self._connect(self._conn_str)

    concurrent = True

    def scalar_rows(self, sql):
        return tsv_rows(self._anchor.query(sql, "TabSeparatedRaw").bytes())

    def session(self):
        return _ConnectionSession(self._connect(self._conn_str))

    def named_session(self):
        return _KeptConnectionSession(self._connect(self._conn_str), self)

    def connect_raw(self):
        return self._connect(self._conn_str)

    def kill_matching(self, condition):
        """KILL QUERY (ASYNC) the running queries matching `condition`, from a connection of its own."""
        conn = self._connect(self._conn_str)
        try:
            conn.query(f"KILL QUERY WHERE {condition} ASYNC", "TabSeparated")
        finally:
            conn.close()

    def close(self):
        self._anchor.close()


class _ConnectionSession(EngineSession):
    def __init__(self, conn):
        self.conn = conn

    def close(self):
        self.conn.close()

    def end_request(self):
        pass

    def _query(self, sql, fmt="TabSeparated", params=None):
        try:
            return self.conn.query(sql, fmt, params=params or {})
        except RuntimeError as exc:
            raise EngineError(str(exc)) from None

    def _insert(self, head, fmt, data):
        try:
            inserter = self.conn.send_insert(head, fmt)
        except RuntimeError as exc:
            raise EngineError(str(exc)) from None
        try:
            self.conn.insert_append(inserter, data)
            return self.conn.insert_done(inserter)
        except RuntimeError as exc:
            self.conn.insert_cancel(inserter)
            raise EngineError(str(exc)) from None

    def statement_count(self, sql):
        return self.conn.classify_query(sql)["statement_count"]

    def read_only(self, sql):
        return self.conn.classify_query(sql)["query_class"] == _KeptConnectionSession.READ_ONLY_CLASS

    def format_query(self, sql):
        try:
            text = sql.decode("utf-8")
        except UnicodeDecodeError:
            return None
        try:
            result = self.conn.query("SELECT formatQuery({q:String})", "RawBLOB",
                                     params={"q": escape_parameter(text)})
        except RuntimeError as exc:
            raise CheckFailed(str(exc)) from None
        return result.bytes().decode("utf-8", "replace")

    def execute(self, plan):
        for table in plan.tables:
            self._query(f"CREATE TEMPORARY TABLE {quote_identifier(table.name)} ({table.structure})")
            self._insert(f"INSERT INTO {quote_identifier(table.name)}", table.format, table.data)
        if plan.database:
            self._query(f"USE {quote_identifier(plan.database)}")
        for name, value in plan.settings:
            self._query(f"SET {quote_identifier(name)} = {quote_string(value)}")
        return self._statement(plan)

    def _statement(self, plan):
        if plan.stream_after is not None and not plan.insert:
            return self._stream(plan)
        return self._whole(plan)

    def _whole(self, plan):
        if plan.insert:
            # The streaming insert takes no `params=`.
            for name, value in plan.params.items():
                self._query(f"SET {quote_identifier(PARAM_PREFIX + name)} = {quote_string(value)}")
            result = self._insert(*plan.insert)
        else:
            result = self._query(plan.statement, plan.output_format, plan.params)
        return RawResult(result.bytes(), result.storage_rows_read(), result.storage_bytes_read(),
                         result.rows_written(), result.bytes_written(), result.rows_read(), result.bytes_read(),
                         elapsed_ns=int(result.elapsed() * 1e9))

    def _adds_json_sections(self):
        """Whether the connection's settings change a JSON document in ways that its blocks
        cannot tell: sections (extremes, rows_before_limit_at_least, rows_before_aggregation)
        or rows skipped (offset).  A small query in JSONCompact shows them.  (Not getSetting():
        a query's own context reads 0 for `limit` and `offset`, which the query has applied.)"""
        try:
            probe = self._query(_JSON_PROBE, "JSONCompact").bytes()
        except EngineError:
            return True  # (the statement reports the error of its settings itself)
        tail = probe[probe.find(_JsonEnvelope.END_OF_DATA, probe.find(_JsonEnvelope.DATA) + 1):]
        rows = _JSON_ROWS.search(tail)
        return not (set(_JSON_KEY.findall(tail)) <= {b"rows", b"statistics"} and rows and rows.group(1) == b"3")

    def _after_broken_stream(self):
        """What follows a streamed query that ended early (an error, a cancel) on this connection."""

    def _unwatch_progress(self):
        try:
            self.conn.set_progress_callback(None)
        except (RuntimeError, TypeError) as exc:
            sys.stderr.write(f"cannot unset a progress callback: {exc}\n")

    def _stream(self, plan):
        """The statement through the engine's streaming query: its output is held back up to
        plan.stream_after bytes; a longer one is handed on as RawResult.rest, chunk by chunk."""
        name = (plan.stream_format or "").lower()
        envelope = None
        progress = {}  # the engine's last progress report of the query (JSON formats)
        if name in JSON_ENVELOPE_FORMATS:
            if self._adds_json_sections():
                return self._whole(plan)
            envelope = _JsonEnvelope()
            # The blocks' own read counts miss reads reported after the last block; the
            # engine's progress reports end with the query's totals and elapsed time.
            self.conn.set_progress_callback(progress.update)
        started = time.monotonic_ns()
        try:
            stream = self.conn.send_query(plan.statement, plan.output_format, params=plan.params or {})
        except RuntimeError as exc:
            if envelope is not None:
                self._unwatch_progress()
            raise EngineError(str(exc)) from None
        chunks, size = [], 0
        counts = [0, 0, 0, 0]  # storage rows and bytes read, result rows and bytes
        # The engine writes a WithNames/WithNamesAndTypes format's header at the start of
        # every chunk: the response has it once.
        header_lines = _header_lines(plan.stream_format)
        header = [None]

        def fetch():
            """The next bytes of the response; b"" at its end."""
            while True:
                try:
                    chunk = self.conn.streaming_fetch_result(stream)
                except RuntimeError as exc:
                    raise EngineError(str(exc)) from None
                data = chunk.bytes() if chunk is not None else b""
                if chunk is not None:  # (the last, empty, chunk may count reads of its own)
                    counts[0] += chunk.storage_rows_read()
                    counts[1] += chunk.storage_bytes_read()
                    counts[2] += chunk.rows_read()
                if not data:
                    if envelope is not None and not envelope.ended:
                        elapsed = time.monotonic_ns() - started
                        self._unwatch_progress()
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
            try:
                self.conn.streaming_cancel_query(stream)
            except RuntimeError:
                pass
            if envelope is not None:
                self._unwatch_progress()
            self._after_broken_stream()

        try:
            while size < plan.stream_after:
                data = fetch()
                if not data:
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


class _KeptConnectionSession(_ConnectionSession):
    """The engine's side of an HTTP session (`session_id`), 26.x: one connection
    kept for the life of the session, so that its SETs, USE and temporary
    tables reach the next request, as in a server's session context.

    A server applies a request's URL settings, `database`, parameters, external
    tables and the readonly mode of a GET to that query's context only.  Here
    they are applied to the kept connection and undone after the statement:
    each URL setting goes back to its value before the request unless the
    statement itself (a SET) changed it; external tables are dropped.  The
    readonly mode cannot be undone once set (READONLY), so a request in
    readonly mode runs a statement that the engine classifies as read-only on
    the session without it (the mode would not change its outcome), and
    anything else on a fresh connection with it, where the engine refuses it
    as a server does.  (Parameters of an INSERT with inline data are set with
    `SET param_<name>` and stay in the session.)
    """

    READ_ONLY_CLASS = 0

    def __init__(self, conn, api):
        super().__init__(conn)
        self.api = api

    def close(self):
        self.conn.close()

    def _values(self, names):
        if not names:
            return {}
        listed = ", ".join(quote_string(name) for name in names)
        rows = tsv_rows(self._query(f"SELECT name, value, changed FROM system.settings WHERE name IN ({listed})",
                                 "TabSeparatedRaw").bytes())
        return {name: (value, changed == "1") for name, value, changed in rows}

    def _after_broken_stream(self):
        # After a query that ended early (a stream cut short, a statement that failed after
        # its output began), the engine hands what its output format wrote to the next query
        # of the connection (a JSON document's tail, a Native block's bytes); a plain query
        # takes it away.
        try:
            self._query("SELECT 1")
        except EngineError as exc:
            sys.stderr.write(f"session: after a cancelled query: {exc}\n")

    def execute(self, plan):
        """The plan on the kept connection.  A streamed result (RawResult.rest) holds the
        request's settings and external tables until it ends: they are undone then."""
        settings = plan.settings
        readonly = last_value(settings, "readonly")
        if readonly is not None:
            if readonly != "0":
                text = plan.statement if plan.insert is None else plan.insert_text
                if self.conn.classify_query(text)["query_class"] != self.READ_ONLY_CLASS:
                    fresh = self.api.session()
                    try:
                        result = fresh.execute(plan)
                    except BaseException:
                        fresh.close()
                        raise
                    return _then(result, fresh.close)
            settings = [(name, value) for name, value in settings if name != "readonly"]
        names = list(dict.fromkeys(name for name, _ in settings))
        before = self._values(names)
        tables = []
        applied = None

        def undo():
            try:
                self._restore(names, before, applied)
            finally:
                for name in tables:
                    try:
                        self._query(f"DROP TEMPORARY TABLE IF EXISTS {quote_identifier(name)}")
                    except EngineError as exc:
                        sys.stderr.write(f"session: cannot drop external table {name}: {exc}\n")

        try:
            for table in plan.tables:
                self._query(f"CREATE TEMPORARY TABLE {quote_identifier(table.name)} ({table.structure})")
                tables.append(table.name)
                self._insert(f"INSERT INTO {quote_identifier(table.name)}", table.format, table.data)
            for name, value in settings:
                self._query(f"SET {quote_identifier(name)} = {quote_string(value)}")
            applied = self._values(names)
            result = self._statement(plan)
        except BaseException:
            # A statement that failed part-way leaves what its output format wrote so far for
            # the connection's next query (measured: a Native result's first bytes in front of
            # the settings read back below): take it away first.
            self._after_broken_stream()
            undo()
            raise
        return _then(result, undo)

    def _restore(self, names, before, applied):
        """Each URL setting back to its value before the request, unless the statement set it."""
        after = self._values(names)
        for name in names:
            if name not in before or (applied is not None and after.get(name) != applied.get(name)):
                continue  # unknown to the engine, or set by the statement itself
            value, changed = before[name]
            restore = quote_string(value) if changed else "DEFAULT"
            try:
                self._query(f"SET {quote_identifier(name)} = {restore}")
            except EngineError as exc:
                sys.stderr.write(f"session: cannot restore setting {name}: {exc}\n")


def _then(result, cleanup):
    """`result`, and cleanup() now, or once its streamed rest ends."""
    if result.rest is None:
        cleanup()
    else:
        result.rest = Ending(result.rest, cleanup)
    return result


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
