"""The engine adapters: one per chdb generation, behind one interface.

Each chdb release exposes the ClickHouse engine through a different Python API;
every difference between them lives here (how a statement and an INSERT with
inline data run, what a session is, how a query is cancelled, whether a result
can be streamed), behind EngineAPI and EngineSession.  open_engine_api() picks
the adapter of the installed release:

  release            ClickHouse   adapter                 a request is
  chdb 1.4.1, 2.1.1  23.10, 24.8  OneShotEngineAPI        one clickhouse-local run
  chdb 3.7.2         25.8         ReopeningEngineAPI      engine opened, statements, engine closed
  chdb-core 26.9.0   26.9         ConnectionEngineAPI     a fresh connection

The release-independent layer above them is execution.Engine."""

import os
import sys
import tempfile

from .params import last_value
from .sql import (
    PARAM_PREFIX, escape_parameter, insert_from_file, leading_keyword, quote_bytes,
    quote_identifier, quote_string, tsv_rows,
)

# The statement of a formatQuery() check may be longer than the setting allows
# (it holds the checked statement as a literal); the statement checked inside
# is then limited by this value too, and the execution by the real one.
_CHECK_MAX_QUERY_SIZE = 1 << 30


# --- engine adapters ----------------------------------------------------------
#
# Each chdb release exposes the engine through a different Python API.  Every
# difference lives in this section, behind one interface (EngineAPI and
# EngineSession), and the rest of the server (Engine, the HTTP front) does not
# know which release runs.  They raise EngineError with the engine's own error
# text (CheckFailed for the parse checks), which Engine turns into
# ClickHouse's HTTP errors.
#
#   release            ClickHouse   adapter                 a request is
#   chdb 1.4.1, 2.1.1  23.10, 24.8  OneShotEngineAPI        one clickhouse-local run
#   chdb 3.7.2         25.8         ReopeningEngineAPI      engine opened, statements, engine closed
#   chdb-core 26.9.0   26.9         ConnectionEngineAPI     a fresh connection

class EngineError(Exception):
    """An error as the engine reported it: its text."""


class CheckFailed(EngineError):
    """A statement failed the parse check of formatQuery()."""


class EngineAPI:
    """The engine of one chdb release, bound to the data directory."""

    release = "chdb"  # package and version, e.g. "chdb-core 26.9.0"
    # Whether requests may run at once (each on its own connection); if not, the
    # front runs them one at a time.
    concurrent = False

    def kill_tagged(self, tag):
        """Cancel running queries whose log_comment is `tag` (engines that run queries at once)."""
        raise NotImplementedError

    def scalar_rows(self, sql):
        """Rows of a start-up query (TabSeparatedRaw, split into fields)."""
        raise NotImplementedError

    def session(self):
        """An EngineSession: the engine's side of one request."""
        raise NotImplementedError

    def named_session(self):
        """An EngineSession kept for an HTTP session's requests, or None if the
        engine cannot keep one open (the session is then replayed; see NamedSession)."""
        return None

    def close(self):
        raise NotImplementedError


class EngineSession:
    """The engine's side of one request: a fresh session, as in a server."""

    def statement_count(self, sql):
        """Statements in `sql`, or None if the API cannot tell."""
        raise NotImplementedError

    def format_query(self, sql):
        """The engine's formatQuery() of `sql` (None: cannot); CheckFailed if it fails."""
        raise NotImplementedError

    def read_only(self, sql):
        """Whether the engine classifies `sql` as read-only, or None if the API cannot tell."""
        return None

    def execute(self, plan):
        """Carry out a Plan; return a RawResult."""
        raise NotImplementedError

    def close(self):
        raise NotImplementedError


class Plan:
    """One request's work for the engine, in the order it is done."""

    def __init__(self, database, tables, settings, params, output_format,
                 statement=None, insert=None, insert_text=None):
        self.database = database  # `USE` it first, or None (engines with a `database` setting)
        self.tables = tables  # [ExternalTable]: temporary tables to create and fill
        self.settings = settings  # [(name, value)] to SET, in order
        self.params = params  # {name: value} for {name:Type} placeholders
        self.output_format = output_format  # used when the statement has no FORMAT clause
        self.statement = statement  # bytes: a statement without inline data, or None
        self.insert = insert  # (head, format, data) of an INSERT with inline data, or None
        self.insert_text = insert_text  # bytes: that INSERT's text up to its data
        # bytes statements (SET, USE) an HTTP session replays before the request's own
        # database and settings, on engines that cannot keep a session open (see ReplayedSession)
        self.session_steps = []
        self.stream_after = None  # see QueryJob.stream_after; None: the engine gives the whole result


class RawResult:
    """What the engine produced; counters the API does not report are 0."""

    def __init__(self, data, read_rows=0, read_bytes=0, written_rows=0, written_bytes=0,
                 result_rows=0, result_bytes=0, elapsed_ns=None):
        self.data = data
        # The statement's own elapsed time as the engine measured it, as a server
        # reports it (from the start of the query to its end, output included); None
        # when the API cannot tell it apart from the setup of the request.
        self.elapsed_ns = elapsed_ns
        self.read_rows = read_rows
        self.read_bytes = read_bytes
        self.written_rows = written_rows
        self.written_bytes = written_bytes
        self.result_rows = result_rows
        self.result_bytes = result_bytes
        # An iterator of the result's further bytes (the engine still runs the query), or None.
        self.rest = None


def engine_release():
    from importlib import metadata
    for package in ("chdb-core", "chdb"):
        try:
            return f"{package} {metadata.version(package)}"
        except metadata.PackageNotFoundError:
            continue
    return "chdb (version unknown)"


def open_engine_api(data_dir):
    """Import the engine and pick the adapter for its API."""
    # The engine drops scratch files (tmp/) into the working directory when
    # imported, and resolves relative file() paths against the working
    # directory at query time: keep the former in the data directory and make
    # the latter user_files/, like a server's user_files_path.
    user_files = os.path.join(data_dir, "user_files")
    os.makedirs(user_files, exist_ok=True)
    os.chdir(data_dir)
    from chdb import _chdb  # imported here, after the chdir
    if not hasattr(_chdb, "connect"):
        return OneShotEngineAPI(_chdb, data_dir, user_files)
    os.chdir(user_files)
    if hasattr(_chdb.connect, "send_insert"):
        return ConnectionEngineAPI(_chdb, data_dir)
    return ReopeningEngineAPI(_chdb, data_dir)


class _SpoolingSession(EngineSession):
    """Common part of the sessions of engines without query parameters or a
    streaming insert: inline INSERT data and external tables are written to
    files that the engine reads with `INSERT ... FROM INFILE`, which parses
    them exactly as inline data (binary-safe, same format settings);
    parameters are set with `SET param_<name>`."""

    def __init__(self):
        self._files = []

    def close(self):
        for path in self._files:
            try:
                os.unlink(path)
            except OSError:
                pass

    def _spill(self, data):
        fd, path = tempfile.mkstemp(prefix="insert-", suffix=".data")
        self._files.append(path)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        return path

    def statement_count(self, sql):
        return None  # these APIs cannot tell; format_query() refuses multi-statements

    def execute(self, plan):
        try:
            return self._execute(plan)
        except CheckFailed:
            raise
        except EngineError as exc:
            raise EngineError(self._as_inline(str(exc))) from None

    def _as_inline(self, text):
        """An error about a spilled file as the server reports inline data."""
        for path in self._files:
            text = (text.replace(f": (in file/uri {path})", "")
                    .replace(": While executing File: data for INSERT was parsed from file", "")
                    .replace(path, "(INSERT data)"))
        return text

    def _statements(self, plan, database):
        """(setup statements, last statement) carrying out `plan` in `database`."""
        steps = []
        home, database = database
        if home:
            steps.append(b"USE " + quote_identifier(home).encode())
        steps += plan.session_steps
        if database:
            steps.append(b"USE " + quote_identifier(database).encode())
        for table in plan.tables:
            name = quote_identifier(table.name)
            steps.append(f"CREATE TEMPORARY TABLE {name} ({table.structure})".encode())
            steps.append(insert_from_file(f"INSERT INTO {name}".encode(), self._spill(table.data), table.format,
                                          self.api.infile_takes_columns))
        for name, value in plan.settings:
            steps.append(f"SET {quote_identifier(name)} = {quote_string(value)}".encode())
        for name, value in plan.params.items():
            steps.append(f"SET {quote_identifier(PARAM_PREFIX + name)} = {quote_string(value)}".encode())
        if plan.insert:
            head, fmt, data = plan.insert
            last = insert_from_file(head, self._spill(data), fmt, self.api.infile_takes_columns)
        else:
            last = plan.statement
        return steps, last

    def _result(self, plan, result, storage=None):
        if plan.insert:
            # What the INSERT read from its file is what it wrote.
            rows, size = result.rows_read(), result.bytes_read()
            return RawResult(result.bytes(), rows, size, rows, size)
        read_rows, read_bytes = storage or (0, 0)
        return RawResult(result.bytes(), read_rows, read_bytes,
                         result_rows=result.rows_read(), result_bytes=result.bytes_read())


def probe_infile_columns(api):
    """Whether `INSERT INTO t (columns) FROM INFILE` fills just those columns."""
    fd, path = tempfile.mkstemp(prefix="probe-", suffix=".data")
    with os.fdopen(fd, "wb") as out:
        out.write(b"7\n")
    try:
        return api.scalar_rows(
            "CREATE TEMPORARY TABLE dev_clickhouse_probe (a UInt8, b UInt8);\n"
            f"INSERT INTO dev_clickhouse_probe (b) FROM INFILE {quote_string(path)} FORMAT TabSeparated;\n"
            "SELECT a, b FROM dev_clickhouse_probe") == [["0", "7"]]
    except EngineError:
        return False
    finally:
        os.unlink(path)


class OneShotEngineAPI(EngineAPI):
    """chdb 1.x and 2.x (ClickHouse 23.10, 24.8).

    No connection object: each `_chdb.query(sql, format, path=data_dir)` is a
    whole clickhouse-local run on the data directory (15-30 ms), and nothing
    but what is on disk survives it.  A request is one run of several
    statements: `USE`, temporary tables, `SET`s, `SET param_<name>`s, then the
    statement.  Its SQL travels as a C string (no NUL), so inline INSERT data
    goes through files, and a statement holding a NUL byte is refused.

    These releases keep a "session" in the data directory: every SET is
    appended to <data dir>/set_statements and replayed at the start of each
    later run, and the database of the last USE is kept in
    <data dir>/default_database (a later run fails at once if it is gone).  A
    server's settings and database live for one query, so both files are
    removed around every run.

    The engine's own default database lives in memory: `_local` in 23.10,
    `default` in 24.8.  The server's `default` is an Atomic database on disk,
    made current with `USE` in every run; for 24.8 a config.xml in the
    working directory (the only place these releases read one from) renames
    the in-memory one to `_local`.
    """

    HOME = "default"
    CONFIG_MARK = "<!-- written by dev-clickhouse -->"

    def __init__(self, chdb_module, data_dir, user_files):
        self._chdb = chdb_module
        self._data_dir = data_dir
        self._session_files = [os.path.join(data_dir, name) for name in ("set_statements", "default_database")]
        self.release = engine_release()
        # The engine's default database, asked of a run without a data path
        # (still in the data directory, away from any config.xml).
        builtin_default = tsv_rows(self._run_raw(b"SELECT currentDatabase()", "TabSeparatedRaw", None))[0][0]
        os.chdir(user_files)
        self._config = os.path.join(user_files, "config.xml")
        self._config_text = None
        if builtin_default != "_local":
            self._config_text = (f"<clickhouse>{self.CONFIG_MARK}<default_database>_local</default_database>"
                                 "</clickhouse>\n")
            self._ensure_config()
        elif os.path.exists(self._config):
            with open(self._config) as existing:
                if self.CONFIG_MARK in existing.read():
                    os.unlink(self._config)
        self.run(f"CREATE DATABASE IF NOT EXISTS {quote_identifier(self.HOME)}".encode(), "TabSeparated")
        engine = self.scalar_rows(f"SELECT engine FROM system.databases WHERE name = {quote_string(self.HOME)}")
        if engine != [["Atomic"]]:
            raise RuntimeError(f"database {self.HOME} is {engine} in {data_dir}, not an Atomic database on disk")
        self.infile_takes_columns = probe_infile_columns(self)

    def _run_raw(self, sql, fmt, path):
        result = self._chdb.query(sql, fmt, path=path or "")
        if result.has_error():
            raise EngineError(result.error_message())
        return result.bytes()

    def _forget_session(self):
        for path in self._session_files:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass

    def _ensure_config(self):
        """(Re)write config.xml: it sits among the user's files."""
        try:
            with open(self._config) as existing:
                if existing.read() == self._config_text:
                    return
        except OSError:
            pass
        with open(self._config, "w") as out:
            out.write(self._config_text)

    def run(self, sql, fmt):
        if self._config_text:
            self._ensure_config()
        self._forget_session()
        try:
            result = self._chdb.query(sql, fmt, path=self._data_dir)
        finally:
            self._forget_session()
        if result.has_error():
            raise EngineError(result.error_message())
        return result

    def scalar_rows(self, sql):
        return tsv_rows(self.run(sql.encode(), "TabSeparatedRaw").bytes())

    def session(self):
        return _OneShotSession(self)

    def close(self):
        pass


class _OneShotSession(_SpoolingSession):
    UNFINISHED_DROP = "Code: 341. DB::Exception: Did not finish dropping the table with UUID "

    def __init__(self, api):
        super().__init__()
        self.api = api

    def format_query(self, sql):
        check = (f"SET max_query_size = {_CHECK_MAX_QUERY_SIZE};\n".encode()
                 + b"SELECT formatQuery(" + quote_bytes(sql) + b")")
        try:
            result = self.api.run(check, "RawBLOB")
        except EngineError as exc:
            raise CheckFailed(str(exc)) from None
        return result.bytes().decode("utf-8", "replace")

    def _execute(self, plan):
        if plan.insert:
            self.format_query(plan.insert_text)  # one statement, parsed as the engine would
        steps, last = self._statements(plan, (None, plan.database) if plan.database and not plan.session_steps
                                           else (self.api.HOME, plan.database))
        if b"\0" in last:  # (values of settings and parameters are escaped)
            raise EngineError("Code: 36. DB::Exception: This engine (chdb 1.x/2.x) takes no NUL byte "
                              "in the statement text")
        try:
            result = self.api.run(b";\n".join(steps + [last]), plan.output_format)
        except EngineError as exc:
            # DROP/DETACH ... SYNC waits for the table's data to go, which the
            # run's own shutdown cuts short; the table is gone all the same,
            # and its files go at the start of the next run.
            if not (plan.statement and leading_keyword(plan.statement) in ("DROP", "DETACH")
                    and str(exc).startswith(self.UNFINISHED_DROP)):
                raise
            return RawResult(b"")
        return self._result(plan, result)


class ReopeningEngineAPI(EngineAPI):
    """chdb 3.x (ClickHouse 25.8).

    A connection API, but all connections to a path share one session (a SET,
    a parameter or a temporary table would leak into the next request), and
    closing any of them shuts the engine down; `query()` takes no parameters
    and there is no streaming insert.  So each request opens the engine on
    the data directory, runs its statements one by one and closes it (about
    15 ms), which gives every request a fresh session as in a server.

    (Holding the engine open and resetting the session instead is no option:
    parameters cannot be unset, and in this release `DROP ... SYNC` of a table
    that the running engine created never returns.)
    """

    def __init__(self, chdb_module, data_dir):
        self._connect = chdb_module.connect
        self.release = engine_release()
        self._conn_str = data_dir
        # `implicit_select` is on in the embedded engine but off in a server.
        if self.scalar_rows("SELECT count() FROM system.settings WHERE name = 'implicit_select'") != [["0"]]:
            self._conn_str = f"{data_dir}?implicit_select=0"
        self.infile_takes_columns = probe_infile_columns(self)

    def connect(self):
        try:
            return self._connect(self._conn_str)
        except RuntimeError as exc:
            raise EngineError(str(exc)) from None

    @staticmethod
    def query(conn, sql, fmt="TabSeparated"):
        try:
            result = conn.query(sql, fmt)
        except RuntimeError as exc:
            raise EngineError(str(exc)) from None
        if result.has_error():
            raise EngineError(result.error_message())
        return result

    def scalar_rows(self, sql):
        conn = self.connect()
        try:
            return tsv_rows(self.query(conn, sql, "TabSeparatedRaw").bytes())
        finally:
            conn.close()

    def session(self):
        return _ReopeningSession(self)

    def close(self):
        pass


class _ReopeningSession(_SpoolingSession):
    def __init__(self, api):
        super().__init__()
        self.api = api
        self.conn = api.connect()

    def close(self):
        try:
            self.conn.close()
        finally:
            super().close()

    def format_query(self, sql):
        # Runs before any SET of the request, so DEFAULT restores the session.
        self.api.query(self.conn, f"SET max_query_size = {_CHECK_MAX_QUERY_SIZE}")
        try:
            result = self.api.query(self.conn, b"SELECT formatQuery(" + quote_bytes(sql) + b")", "RawBLOB")
        except EngineError as exc:
            raise CheckFailed(str(exc)) from None
        finally:
            self.api.query(self.conn, "SET max_query_size = DEFAULT")
        return result.bytes().decode("utf-8", "replace")

    def _execute(self, plan):
        if plan.insert:
            self.format_query(plan.insert_text)  # one statement, parsed as the engine would
        steps, last = self._statements(plan, (None, plan.database))
        for step in steps:
            self.api.query(self.conn, step)
        result = self.api.query(self.conn, last, plan.output_format)
        return self._result(plan, result, (result.storage_rows_read(), result.storage_bytes_read()))


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

    def kill_tagged(self, tag):
        """KILL QUERY (ASYNC) the running queries whose log_comment is `tag`, from a connection of its own."""
        conn = self._connect(self._conn_str)
        try:
            conn.query(f"KILL QUERY WHERE Settings['log_comment'] = {quote_string(tag)} ASYNC", "TabSeparated")
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

    def _stream(self, plan):
        """The statement through the engine's streaming query: its output is held back up to
        plan.stream_after bytes; a longer one is handed on as RawResult.rest, chunk by chunk."""
        try:
            stream = self.conn.send_query(plan.statement, plan.output_format, params=plan.params or {})
        except RuntimeError as exc:
            raise EngineError(str(exc)) from None
        chunks, size = [], 0
        counts = [0, 0, 0, 0]  # storage rows and bytes read, result rows and bytes

        def fetch():
            try:
                chunk = self.conn.streaming_fetch_result(stream)
            except RuntimeError as exc:
                raise EngineError(str(exc)) from None
            data = chunk.bytes() if chunk is not None else b""
            if data:
                counts[0] += chunk.storage_rows_read()
                counts[1] += chunk.storage_bytes_read()
                counts[2] += chunk.rows_read()
                counts[3] += len(data)
            return data

        while size < plan.stream_after:
            data = fetch()
            if not data:
                return RawResult(b"".join(chunks), counts[0], counts[1], 0, 0, counts[2], counts[3])
            chunks.append(data)
            size += len(data)

        def rest():
            finished = False
            try:
                while True:
                    data = fetch()
                    if not data:
                        finished = True
                        return
                    yield data
            finally:
                if not finished:  # an error, or the client is gone
                    try:
                        self.conn.streaming_cancel_query(stream)
                    except RuntimeError:
                        pass

        raw = RawResult(b"".join(chunks), counts[0], counts[1], 0, 0, counts[2], counts[3])
        raw.rest = rest()
        return raw


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

    def execute(self, plan):
        settings = plan.settings
        readonly = last_value(settings, "readonly")
        if readonly is not None:
            if readonly != "0":
                text = plan.statement if plan.insert is None else plan.insert_text
                if self.conn.classify_query(text)["query_class"] != self.READ_ONLY_CLASS:
                    fresh = self.api.session()
                    try:
                        return fresh.execute(plan)
                    finally:
                        fresh.close()
            settings = [(name, value) for name, value in settings if name != "readonly"]
        names = list(dict.fromkeys(name for name, _ in settings))
        before = self._values(names)
        tables = []
        try:
            for table in plan.tables:
                self._query(f"CREATE TEMPORARY TABLE {quote_identifier(table.name)} ({table.structure})")
                tables.append(table.name)
                self._insert(f"INSERT INTO {quote_identifier(table.name)}", table.format, table.data)
            applied = None
            try:
                for name, value in settings:
                    self._query(f"SET {quote_identifier(name)} = {quote_string(value)}")
                applied = self._values(names)
                return self._statement(plan)
            finally:
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
        finally:
            for name in tables:
                try:
                    self._query(f"DROP TEMPORARY TABLE IF EXISTS {quote_identifier(name)}")
                except EngineError as exc:
                    sys.stderr.write(f"session: cannot drop external table {name}: {exc}\n")
