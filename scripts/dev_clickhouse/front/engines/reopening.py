"""The adapter of chdb 3.x (ClickHouse 25.8): every request opens the engine on the data
directory, runs its statements and closes it (see ReopeningEngineAPI), and starts from
the settings of a fresh engine (see FreshSettings).
"""

import os
import subprocess
import sys
import tempfile
import time

from .base import (
    _CHECK_MAX_QUERY_SIZE,
    CheckFailed,
    engine_release,
    EngineAPI,
    EngineError,
    probe_infile_columns,
    _SpoolingSession,
)
from ..sql import quote_bytes, quote_identifier, quote_string, tsv_rows
from .streaming import StreamingSession


class ReopeningEngineAPI(EngineAPI):
    """chdb 3.x (ClickHouse 25.8).

    A connection API, but all connections to a path share one session (a SET,
    a parameter or a temporary table would leak into the next request), and
    closing any of them shuts the engine down; `query()` takes no parameters
    and there is no streaming insert.  So each request opens the engine on
    the data directory, runs its statements one by one and closes it (about
    15 ms), which gives every request a fresh session as in a server.

    A streamed result (chdb 3.x has the streaming query of 26.x, without parameters,
    which are set with `SET param_<name>` before it) keeps the request's engine open
    until the result is out.

    (Holding the engine open and resetting the session instead is no option:
    parameters cannot be unset, and in this release `DROP ... SYNC` of a table
    that the running engine created never returns.)

    A fresh engine is not always a clean one, though: see FreshSettings.
    """

    streams = True

    def __init__(self, chdb_module, data_dir):
        self._connect = chdb_module.connect
        self.release = engine_release()
        self._conn_str = data_dir
        self._fresh = None
        # `implicit_select` is on in the embedded engine but off in a server.
        if self.scalar_rows("SELECT count() FROM system.settings WHERE name = 'implicit_select'") != [["0"]]:
            self._conn_str = f"{data_dir}?implicit_select=0"
        self._fresh = FreshSettings(self._conn_str[len(data_dir):])
        self.infile_takes_columns = probe_infile_columns(self)

    # Opening the engine now and then fails with nothing but "Error running
    # bgClickHouseLocal: ." (chdb 3.7.2's LocalServer::run() returned non-zero with
    # no message); seen once in a CI run, on a request that followed another's close.
    # Nothing of the request has run yet, so the open is tried again after a pause.
    OPEN_ATTEMPTS = 4
    OPEN_PAUSES = (0.05, 0.25, 1.0)

    def connect(self):
        conn = None
        for attempt in range(self.OPEN_ATTEMPTS):
            try:
                conn = self._connect(self._conn_str)
                break
            except RuntimeError as exc:
                if attempt + 1 == self.OPEN_ATTEMPTS or "Error running bgClickHouseLocal" not in str(exc):
                    raise EngineError(str(exc)) from None
                sys.stderr.write(f"engine: opening the engine failed ({str(exc).strip()}); "
                                 f"trying again ({attempt + 2} of {self.OPEN_ATTEMPTS})\n")
                time.sleep(self.OPEN_PAUSES[attempt])
        if self._fresh is not None:
            try:
                self._fresh.restore(conn, self.query)
            except EngineError:
                conn.close()
                raise
        return conn

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


class _ReopeningSession(StreamingSession, _SpoolingSession):
    """A request's engine, opened on the data directory; a streamed result keeps it
    open (and, the engine running one query at a time, the front's lock held) until the
    result is out, and cancels its query when the client goes."""

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
        self._last = last
        if plan.stream_after is not None and not plan.insert:
            return self._stream(plan, last)  # (its parameters are set above)
        return self._whole(plan)

    def _whole(self, plan):
        result = self.api.query(self.conn, self._last, plan.output_format)
        return self._result(plan, result, (result.storage_rows_read(), result.storage_bytes_read()))

    def _send_query(self, statement, fmt, params):
        return self.conn.send_query(statement, fmt)

    def _probe(self, sql, fmt):
        return self.api.query(self.conn, sql, fmt).bytes()

    def _after_broken_stream(self):
        pass  # the engine is closed with the request


class FreshSettings:
    """The settings an engine opened on an empty data directory starts with, and
    restore(), which gives a connection exactly those.

    Opening this engine (chdb 3.7.2) on a data directory applies the SETTINGS
    clause of every view left in its metadata_dropped/ to the settings that every
    connection of that engine starts with.  `CREATE OR REPLACE VIEW` leaves the
    replaced view there (as `_tmp_replace_...`) until the engine's background
    cleanup removes it, which a request that closes the engine right after its
    statement often cuts short; the file then stays, and every later opening of
    the engine applies the view's settings again.  Migration 0001's
    training_examples_with_annotations ends with `SETTINGS join_use_nulls = 1`
    and migration 0002 replaces it: once that happened, every later request ran
    with join_use_nulls = 1, and views created then got Nullable columns.
    Whether the file stayed depended on the timing of the engine's shutdown.

    So every connection is compared with the settings of a fresh engine (taken
    once, in a child process, on an empty temporary data directory with the same
    connection options), and each setting that differs is set back, before the
    request's own settings apply.
    """

    PROBE = (
        "import sys, tempfile\n"
        "from chdb import _chdb\n"
        "with tempfile.TemporaryDirectory() as data:\n"
        "    conn = _chdb.connect(data + sys.argv[1])\n"
        "    result = conn.query('SELECT name, value FROM system.settings WHERE changed', 'TabSeparatedRaw')\n"
        "    sys.stdout.buffer.write(result.bytes())\n"
        "    conn.close()\n"
    )

    def __init__(self, options):
        with tempfile.TemporaryDirectory(prefix="dev-clickhouse-fresh-") as scratch:
            # The engine writes scratch files (tmp/) into its working directory.
            done = subprocess.run([sys.executable, "-c", self.PROBE, options], cwd=scratch,
                                  capture_output=True, env=dict(os.environ))
        if done.returncode != 0:
            raise EngineError("cannot read the settings of a fresh engine: "
                              + done.stderr.decode("utf-8", "replace").strip())
        self.values = {name: value for name, value in tsv_rows(done.stdout)}
        self._reported = set()

    def restore(self, conn, query):
        """Set back every setting of `conn` that differs from a fresh engine's."""
        rows = tsv_rows(query(conn, "SELECT name, value FROM system.settings WHERE changed", "TabSeparatedRaw").bytes())
        now = {name: value for name, value in rows}
        wrong = sorted(name for name in now.keys() | self.values.keys() if now.get(name) != self.values.get(name))
        for name in wrong:
            fresh = self.values.get(name)
            query(conn, f"SET {quote_identifier(name)} = {'DEFAULT' if fresh is None else quote_string(fresh)}")
            if name not in self._reported:
                self._reported.add(name)
                sys.stderr.write(f"engine: setting {name} starts as {now.get(name, 'its default')!r} (a fresh engine: "
                                 f"{fresh or 'its default'!r}; see FreshSettings); set back for every request\n")
