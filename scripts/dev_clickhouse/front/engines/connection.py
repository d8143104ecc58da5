"""The adapter of chdb-core 26.x (ClickHouse 26.9): a fresh connection per request,
queries at once, streaming inserts and results, and an engine connection kept for each
HTTP session (see ConnectionEngineAPI, _KeptConnectionSession).
"""

import sys

from .base import CheckFailed, Ending, engine_release, EngineAPI, EngineError, EngineSession, RawResult
from ..params import last_value
from ..sql import PARAM_PREFIX, quote_identifier, quote_string, tsv_rows
from .streaming import StreamingSession


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
    streams = True

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


class _ConnectionSession(StreamingSession, EngineSession):
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
            sql.decode("utf-8")
        except UnicodeDecodeError:
            return None
        # The statement goes in hex: system.processes lists a query with its parameters
        # substituted, and a check holding the statement's text would show there, beside
        # the client's own queries, as another query with that text.
        try:
            result = self.conn.query("SELECT formatQuery(unhex({q:String}))", "RawBLOB",
                                     params={"q": sql.hex()})
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

    def _send_query(self, statement, fmt, params):
        return self.conn.send_query(statement, fmt, params=params or {})

    def _probe(self, sql, fmt):
        return self._query(sql, fmt).bytes()

    def _watch_progress(self, callback):
        self.conn.set_progress_callback(callback)
        return True

    def _unwatch_progress(self):
        try:
            self.conn.set_progress_callback(None)
        except (RuntimeError, TypeError) as exc:
            sys.stderr.write(f"cannot unset a progress callback: {exc}\n")


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
