"""The engine, whatever its release: Engine runs a QueryJob (one request's statement,
settings, parameters and external tables) through an engine adapter (engines/).

It checks the statement with the engine's own parser first (one statement, no INTO
OUTFILE, the output format), turns the engine's errors into ClickHouseErrors, runs
requests one at a time on engines that cannot run them at once (busy_for tells how long
the running one has held the engine), and on 26.x reports progress (ProgressReporter)
and cancels the read-only query of a client that went away (CancelOnClose).
"""

import re
import sys
import threading
import time
import uuid
from contextlib import nullcontext

from .engines import open_engine_api
from .engines.base import CheckFailed, Ending, EngineError, Plan
from .engines.streaming import JSON_ENVELOPE_FORMATS
from .errors import ClickHouseError
from .params import parse_bool
from .sessions import _CREATE_TEMPORARY
from .sql import leading_keyword, PARAM_PREFIX, quote_identifier, quote_string, split_insert, tsv_rows


# Statements whose result is sent in an output format (others answer with an
# empty text/plain body and no X-ClickHouse-Format header).
OUTPUT_STATEMENTS = frozenset({
    "SELECT", "WITH", "FROM", "SHOW", "DESCRIBE", "DESC", "EXISTS", "EXPLAIN",
    "CHECK", "KILL", "WATCH", "BACKUP", "RESTORE",
})


# 23.x also names subclasses (DB::ParsingException); the server says DB::Exception.
_ENGINE_ERROR = re.compile(r"Code: (\d+)\. DB::\w*Exception: ")
_FORMAT_CLAUSE = re.compile(r"\nFORMAT (\S+)(?=\n|$)")


# What formatQuery() appends to the parse errors it reports (24.x on; 23.x).
_SCOPES_OF_CHECK = (": In scope SELECT formatQuery(", ": While processing formatQuery(")


# Output formats whose output is the concatenation of their blocks' outputs (no prefix or
# suffix): the only ones the engine's streaming query writes right, a block at a time.
STREAMED_FORMATS = frozenset(name.lower() for name in (
    "TabSeparated", "TSV", "TabSeparatedRaw", "TSVRaw", "CSV", "Values", "JSONEachRow", "JSONLines", "NDJSON",
    "JSONCompactEachRow", "JSONStringsEachRow", "JSONCompactStringsEachRow", "RowBinary", "Native",
    "LineAsString", "RawBLOB",
    # (the header once, then the rows; the Raw variants, whose names may hold a newline, are sent whole)
    "TabSeparatedWithNames", "TSVWithNames", "TabSeparatedWithNamesAndTypes", "TSVWithNamesAndTypes",
    "CSVWithNames", "CSVWithNamesAndTypes")) | JSON_ENVELOPE_FORMATS
# (JSON, JSONCompact, JSONStrings, JSONCompactStrings: the meta once, the rows of every block, then the
# row count and statistics of the whole result; see engines/connection.py.  Not when the document
# would have sections that its blocks cannot tell: totals, extremes, rows_before_limit_at_least,
# rows_before_aggregation, rows skipped by the `offset` setting.  Words of the statement that may ask
# for them send the result whole; so do such settings, which the adapter probes on the connection.)
_JSON_SECTION_WORDS = re.compile(r"\b(?:LIMIT|OFFSET|FETCH|TOTALS|EXTREMES|ROWS_BEFORE_AGGREGATION)\b", re.I)


class QueryResult:
    def __init__(self, raw, output_format, elapsed_ns):
        self.data = raw.data
        self.rest = raw.rest  # further bytes of a result still being produced, or None
        self.output_format = output_format  # None for statements without output
        self.summary = {
            "read_rows": raw.read_rows,
            "read_bytes": raw.read_bytes,
            "written_rows": raw.written_rows,
            "written_bytes": raw.written_bytes,
            "total_rows_to_read": raw.read_rows,
            "result_rows": raw.result_rows,
            "result_bytes": raw.result_bytes,
            "elapsed_ns": elapsed_ns,
        }


class Engine:
    """The embedded ClickHouse engine bound to one data directory."""

    def __init__(self, data_dir):
        self.api = open_engine_api(data_dir)
        self.release = self.api.release
        self.concurrent = self.api.concurrent
        self.streams = self.api.streams
        self._lock = threading.Lock()  # held by the running query where queries run one at a time
        self._busy_since = None  # when the query holding it started
        self._running_lock = threading.Lock()
        self._running = set()  # query ids of the requests in the engine (or waiting for it)
        info = self.api.scalar_rows("SELECT version(), fqdn(), timezone()")[0]
        self.version, self.display_name, self.timezone = info
        self.version_tuple = tuple(int(part) for part in self.version.split(".")[:2])
        self.error_names = {int(code): name for code, name in self.api.scalar_rows(
            "SELECT number, errorCodeToName(number) FROM numbers(10000)"
            " WHERE errorCodeToName(number) != ''")}
        self.error_codes = {name: code for code, name in self.error_names.items()}
        self.setting_names = {row[0] for row in self.api.scalar_rows("SELECT name FROM system.settings")}
        self.default_http_compression = self.api.scalar_rows(
            "SELECT value FROM system.settings WHERE name = 'enable_http_compression'")[0][0] in ("1", "true")

    def close(self):
        with self._lock:
            self.api.close()

    def error(self, name, message):
        return ClickHouseError(self.error_codes[name], name, message)

    def from_engine(self, exc):
        """Turn an engine exception into a ClickHouseError.

        The engine's text already reads like ClickHouse's, but errors raised
        while applying settings come back nested ("Code: N. DB::Exception:
        Code: N. ... (version V). (NAME)"): unwrap them.  Parse checks lose
        the scope of the formatQuery() call that made them.
        """
        text = str(exc).strip()
        match = _ENGINE_ERROR.match(text)
        if not match:
            return self.error("UNKNOWN_EXCEPTION", text)
        code = int(match.group(1))
        name = self.error_names.get(code, "UNKNOWN_EXCEPTION")
        body = text[match.end():]
        nested = re.compile(rf"Code: {code}\. DB::\w*Exception: ")
        while nested.match(body):
            body = body[nested.match(body).end():]
        version_suffix = f" (version {self.version})"
        if body.endswith(version_suffix):
            body = body[:-len(version_suffix)]
        nested_suffix = f"{version_suffix}. ({name})"
        while body.endswith(nested_suffix):
            body = body[:-len(nested_suffix)]
        own_suffix = f" ({name})"
        if body.endswith(own_suffix):
            body = body[:-len(own_suffix)]
        if isinstance(exc, CheckFailed):
            cut = max(body.rfind(scope) for scope in _SCOPES_OF_CHECK)
            if cut >= 0:
                body = body[:cut]
        return ClickHouseError(code, name, body)

    def busy_for(self):
        """Seconds the one running query has held an engine that runs one query at a time (0: none)."""
        since = self._busy_since
        return 0 if since is None else time.monotonic() - since

    def _serialised(self):
        lock = self._lock

        class Held:
            def __enter__(inner):
                lock.acquire()
                self._busy_since = time.monotonic()

            def __exit__(inner, *exc):
                self._busy_since = None
                lock.release()

        return nullcontext() if self.concurrent else Held()

    def run(self, job, named=None, query_id=None, client_gone=None):
        """Run a QueryJob, in the HTTP session `named` (a NamedSession) if given.

        `query_id` is refused while a query of that id runs, as the server's
        process list does.  `client_gone()` tells whether the client has closed
        its connection; a read-only query is then cancelled if the request asks
        for it (cancel_http_readonly_queries_on_client_close), where the engine
        can cancel one (26.x).
        """
        if query_id is not None:
            with self._running_lock:
                if query_id in self._running:
                    raise self.error("QUERY_WITH_SAME_ID_IS_ALREADY_RUNNING",
                                     f"Query with id = {query_id} is already running.")
                self._running.add(query_id)
        def release():
            if query_id is not None:
                with self._running_lock:
                    self._running.discard(query_id)

        try:
            result = self._run_in_engine(job, named, client_gone)
        except BaseException:
            release()
            raise
        if result.rest is None:
            release()
        else:
            result.rest = self._then(result.rest, release)
        return result

    def _then(self, chunks, cleanup):
        """`chunks`, engine errors as ClickHouseErrors, and cleanup() once they end or are dropped."""
        return Ending(chunks, cleanup, self.from_engine)

    def _run_in_engine(self, job, named, client_gone):
        held = self._serialised()
        held.__enter__()
        handed_on = False
        try:
            try:
                if named is None:
                    session = self.api.session()
                else:
                    if named.kept is None and not named.replayed:
                        named.kept = self.api.named_session()
                        named.replayed = named.kept is None
                    session = named.kept or self.api.session()
            except EngineError as exc:
                raise self.from_engine(exc) from None
            try:
                result = self._run(session, job, named, client_gone)
                if result.rest is not None:
                    # The rest of the result comes from the engine as it is sent: the session
                    # (unless a kept one) closes, and the engine is free again for an engine
                    # that runs one query at a time, once it ends.
                    kept = named is not None and session is named.kept

                    def done():
                        try:
                            if not kept:
                                session.close()
                        finally:
                            held.__exit__(None, None, None)

                    result.rest = self._then(result.rest, done)
                    handed_on = True
                return result
            except EngineError as exc:
                raise self.from_engine(exc) from None
            finally:
                if not handed_on and (named is None or named.kept is None):
                    session.close()
        finally:
            if not handed_on:
                held.__exit__(None, None, None)

    def close_session(self, named):
        if named.kept is not None:
            with self._serialised():
                named.kept.close()
                named.kept = None

    def _analyze(self, session, sql):
        """Reject what the server's parser rejects; find the output format.

        Returns the normalized statement (the engine's formatQuery()), or
        None for an INSERT or a statement that cannot be normalized.
        """
        statements = session.statement_count(sql)  # None: the API cannot tell
        is_insert = leading_keyword(sql) == "INSERT"
        if statements == 1 and is_insert:
            return None
        try:
            normalized = session.format_query(sql)
        except CheckFailed:
            if statements == 1:
                return None  # let the execution report its own error
            raise  # the parse error (multi-statements, syntax) as the server's parser reports it
        if statements is not None and statements > 1:
            # Both parsers of the engine should agree; never run two statements.
            raise self.error("SYNTAX_ERROR", "Multi-statements are not allowed")
        if normalized and "\nINTO OUTFILE " in normalized:
            raise self.error("INTO_OUTFILE_NOT_ALLOWED", "INTO OUTFILE is not allowed")
        return None if is_insert else normalized

    def _run(self, session, job, named=None, client_gone=None):
        insert = split_insert(job.sql) if leading_keyword(job.sql) == "INSERT" else None
        normalized = None if insert else self._analyze(session, job.sql)
        replayed = named is not None and named.replayed
        if replayed and normalized and _CREATE_TEMPORARY.match(normalized):
            raise self.error("NOT_IMPLEMENTED", (
                f"A temporary table cannot outlive its request with this engine ({self.release}, ClickHouse "
                f"{self.version}): an HTTP session (session_id) keeps SET and USE only"))

        given = dict(job.settings)
        settings = [("readonly", "2")] if job.readonly else []
        database = None
        for name, value in job.settings:
            # Settings in 26.x; before, the HTTP handler's own parameters.
            if name in ("database", "default_format") and name not in self.setting_names:
                if name == "database" and value:
                    database = value
                continue
            settings.append((name, value))
        default_format = given.get("default_format") or "TabSeparated"
        plan = Plan(database, job.external_tables, settings, job.params, default_format)
        if insert:
            plan.insert = insert
            plan.insert_text = job.sql[:len(job.sql) - len(insert[2])]
        else:
            plan.statement = job.sql
        if replayed:
            plan.session_steps = list(named.steps)

        output_format = None
        if normalized is not None and leading_keyword(normalized.encode()) in OUTPUT_STATEMENTS:
            clause = _FORMAT_CLAUSE.findall(normalized)
            # The engine lets the `output_format`/`format` settings override
            # the FORMAT clause, which overrides `default_format`.
            output_format = (given.get("output_format") or given.get("format")
                             or (clause[-1].strip("`") if clause else default_format))
        # (The engine streams SELECT queries only.)
        if (self.streams and job.stream_after is not None and output_format is not None
                and output_format.lower() in STREAMED_FORMATS
                and leading_keyword(normalized.encode()) in ("SELECT", "WITH", "FROM")
                and not (output_format.lower() in JSON_ENVELOPE_FORMATS and _JSON_SECTION_WORDS.search(normalized))):
            plan.stream_after = job.stream_after
            plan.stream_format = output_format

        watch = reporter = None
        # The engine runs the query under an id of its own; the front finds it in
        # system.processes by a log_comment tag of its own, or, when the client set its own
        # log_comment (kept untouched), by that comment among the queries not yet running.
        tag = match = None
        wanted = job.progress is not None or (
            client_gone is not None and not insert
            and parse_bool(given.get("cancel_http_readonly_queries_on_client_close", "0"))
            and session.read_only(job.sql))
        if self.concurrent and wanted:
            if "log_comment" in given:
                match = _match_own_comment(self.api, given["log_comment"])
            else:
                tag = f"dev-clickhouse-{uuid.uuid4()}"
                match = f"Settings['log_comment'] = {quote_string(tag)}"
        if (client_gone is not None and match and not insert
                and parse_bool(given.get("cancel_http_readonly_queries_on_client_close", "0"))
                and session.read_only(job.sql)):
            watch = CancelOnClose(self.api, match, client_gone)
        if job.progress is not None and match:
            fmt = output_format
            reporter = ProgressReporter(self.api, match, job.progress_interval,
                                        lambda progress: job.progress(fmt, progress))
        if tag and (watch or reporter):
            plan.settings.append(("log_comment", tag))

        started = time.monotonic_ns()
        try:
            raw = session.execute(plan)
        except BaseException:
            if watch is not None:
                watch.stop()
            raise
        finally:
            if reporter is not None:
                reporter.stop()  # the headers end with the first byte of the body
        if watch is not None:
            if raw.rest is None:
                watch.stop()
            else:
                raw.rest = Ending(raw.rest, watch.stop)
        if replayed and not insert and leading_keyword(job.sql) in ("SET", "USE"):
            for name, value in job.params.items():  # what the statement's placeholders stand for
                named.steps.append(f"SET {quote_identifier(PARAM_PREFIX + name)} = {quote_string(value)}".encode())
            named.steps.append(job.sql)
        # A server times the query itself, not the HTTP handler applying the request's
        # database and settings: the engine's own figure for the statement where the API
        # gives one (26.x), else the whole request's work (older engines run the setup
        # and the statement as one program).
        elapsed_ns = raw.elapsed_ns if raw.elapsed_ns is not None else time.monotonic_ns() - started

        return QueryResult(raw, output_format, elapsed_ns)


def _match_own_comment(api, comment):
    """The system.processes condition finding a query about to start with the client's own
    log_comment: that comment, and none of the ids running with it now."""
    conn = api.connect_raw()
    try:
        ids = [row[0] for row in tsv_rows(conn.query(
            "SELECT query_id FROM system.processes "
            f"WHERE Settings['log_comment'] = {quote_string(comment)}", "TabSeparatedRaw").bytes())]
    finally:
        conn.close()
    running = ", ".join(quote_string(i) for i in ids)
    return (f"Settings['log_comment'] = {quote_string(comment)}"
            + (f" AND query_id NOT IN ({running})" if ids else ""))


class ProgressReporter:
    """While a query runs, report its progress (the engine's system.processes row, found by its
    log_comment tag) every `interval` seconds when it has changed, as the server's
    X-ClickHouse-Progress headers do; stop() returns once no report can come any more."""

    def __init__(self, api, tag, interval, report):
        self.api = api
        self.tag = tag
        self.interval = max(interval, 0.01)
        self.report = report
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def _watch(self):
        conn = None
        last = None
        try:
            while not self.done.wait(self.interval):
                if conn is None:
                    conn = self.api.connect_raw()
                rows = tsv_rows(conn.query(
                    "SELECT read_rows, read_bytes, written_rows, written_bytes, total_rows_approx, "
                    "toUInt64(elapsed * 1e9) FROM system.processes "
                    f"WHERE {self.tag}", "TabSeparatedRaw").bytes())
                if not rows:
                    continue
                read_rows, read_bytes, written_rows, written_bytes, total, elapsed = rows[0]
                if (read_rows, written_rows) == last or (read_rows, written_rows) == ("0", "0"):
                    continue
                last = (read_rows, written_rows)
                if self.done.is_set():
                    return
                self.report({"read_rows": read_rows, "read_bytes": read_bytes, "written_rows": written_rows,
                             "written_bytes": written_bytes, "total_rows_to_read": total,
                             "result_rows": "0", "result_bytes": "0", "elapsed_ns": elapsed})
        except Exception as exc:  # noqa: BLE001 (no more reports; the query goes on)
            sys.stderr.write(f"progress of a query: {exc}\n")
        finally:
            if conn is not None:
                conn.close()

    def stop(self):
        self.done.set()
        self.thread.join()


class CancelOnClose:
    """While a query runs, cancel it (KILL QUERY by its log_comment tag) once the client is gone."""

    POLL = 0.1

    def __init__(self, api, tag, client_gone):
        self.api = api
        self.tag = tag
        self.client_gone = client_gone
        self.done = threading.Event()
        threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self):
        while not self.done.wait(self.POLL):
            if self.client_gone():
                try:
                    self.api.kill_matching(self.tag)
                except Exception as exc:  # noqa: BLE001 (a failed cancel leaves the query running)
                    sys.stderr.write(f"cannot cancel the query of a closed connection: {exc}\n")
                return

    def stop(self):
        self.done.set()


class ExternalTable:
    def __init__(self, name, structure, fmt, data):
        self.name = name
        self.structure = structure
        self.format = fmt
        self.data = data


class QueryJob:
    def __init__(self, sql, params, settings, readonly, external_tables):
        self.sql = sql  # bytes: the statement, with any inline INSERT data
        self.params = params  # {name: value} for {name:Type} placeholders
        self.settings = settings  # [(name, value)] in request order
        self.readonly = readonly
        self.external_tables = external_tables
        # report(output_format, progress) for X-ClickHouse-Progress headers, with the
        # interval in seconds (send_progress_in_http_headers=1), or None.
        self.progress = None
        self.progress_interval = 0.1
        # Result bytes held back before the response starts (the rest is then sent as the
        # engine produces it), or None: the whole result first (wait_end_of_query=1).
        self.stream_after = None
