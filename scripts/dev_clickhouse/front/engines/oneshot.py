"""The adapter of chdb 1.x and 2.x (ClickHouse 23.10, 24.8): every request is one
clickhouse-local run on the data directory (see OneShotEngineAPI).
"""

import os

from .base import (
    _CHECK_MAX_QUERY_SIZE,
    CheckFailed,
    engine_release,
    EngineAPI,
    EngineError,
    probe_infile_columns,
    RawResult,
    _SpoolingSession,
)
from ..sql import leading_keyword, quote_bytes, quote_identifier, quote_string, tsv_rows


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
