"""The interface every engine adapter implements, and what they share.

EngineAPI is the engine of one chdb release bound to the data directory; EngineSession
its side of one request; Plan the request's work in the order it is done; RawResult
what the engine produced.  Adapters raise EngineError with the engine's own text
(CheckFailed for the parse check).  _SpoolingSession is the common part of the adapters
of releases without query parameters or a streaming insert (inline data through files).
"""

import os
import tempfile

from ..sql import insert_from_file, PARAM_PREFIX, quote_identifier, quote_string


# The statement of a formatQuery() check may be longer than the setting allows
# (it holds the checked statement as a literal); the statement checked inside
# is then limited by this value too, and the execution by the real one.
_CHECK_MAX_QUERY_SIZE = 1 << 30


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
    streams = False  # whether its sessions have _stream() (a streaming query)

    def kill_matching(self, condition):
        """Cancel running queries matching a system.processes `condition` (engines that run queries at once)."""
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
        self.stream_format = None  # the result's format when streamed (its header, or JSON's envelope, once)


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


class Ending:
    """An iterator over `chunks` followed by cleanup(): it runs once, when they are used up,
    fail or are closed, started or not (closing a generator that never started skips its
    finally clauses: a response that sends no body, as to HEAD, never starts its stream).
    `finished` tells whether the chunks ran out.  Errors of the engine (EngineError) pass
    through `translate` when given.  Closing it closes `chunks` first."""

    def __init__(self, chunks, cleanup, translate=None):
        self._chunks = iter(chunks)
        self._cleanup = cleanup
        self._translate = translate
        self.finished = False

    def __iter__(self):
        return self

    def __next__(self):
        try:
            return next(self._chunks)
        except StopIteration:
            self.finished = True
            self.close()
            raise
        except EngineError as exc:
            self.close()
            if self._translate is None:
                raise
            raise self._translate(exc) from None
        except BaseException:
            self.close()
            raise

    def close(self):
        cleanup, self._cleanup = self._cleanup, None
        if cleanup is None:
            return
        try:
            close = getattr(self._chunks, "close", None)
            if close is not None:
                close()
        finally:
            cleanup()


def engine_release():
    from importlib import metadata
    for package in ("chdb-core", "chdb"):
        try:
            return f"{package} {metadata.version(package)}"
        except metadata.PackageNotFoundError:
            continue
    return "chdb (version unknown)"


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
