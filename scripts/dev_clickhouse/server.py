"""Local ClickHouse HTTP server for development and tests.

The SQL engine is the real ClickHouse engine, embedded in-process through the
`chdb` module of the `chdb-core` package (ClickHouse 26.9), or of an older
`chdb` release (23.10, 24.8, 25.8; see "engine adapters" below).  This file
only implements the HTTP front: it follows ClickHouse's own HTTP handler (URL
`query` + body, settings and `param_*` URL parameters, multipart forms,
authentication, native and HTTP compression, error codes and statuses,
response headers) closely enough that ClickHouse clients such as the Rust
`clickhouse` crate and curl work against it unchanged.

How requests map onto the engine:

* Every request runs in a fresh engine session on the data directory.  URL
  settings are applied with `SET name = '<value>'` in that session, so they
  apply to this one query and vanish with it; the engine itself validates
  names and values (UNKNOWN_SETTING, parse errors, readonly rules).  HTTP
  sessions (`session_id`): see SessionStore and NamedSession (26.x keeps an
  engine connection per session; older engines replay its SET and USE
  statements).  `database` and `default_format` are settings in 26.x;
  for older engines they are the handler's own parameters (`USE`, the output
  format), as in servers of those versions.
* `param_<name>` values go to the engine's `params=` argument, or (engines
  without it) to `SET param_<name> = '<value>'`; they are never spliced into
  the statement.
* The request body is decoded whole before anything runs (Content-Encoding,
  then `decompress=1` blocks): every frame, member or stream that ClickHouse's
  readers take; a body that does not decode is refused with their error, and
  nothing of it is stored (see "decoding compressed streams whole").
* The statement is what ClickHouse would parse: the URL `query`, a line break
  and the (decompressed) request body.  Before it runs, the engine's own
  parser checks it (formatQuery): one statement only, no INTO OUTFILE, and
  its FORMAT clause.  For an INSERT with inline data, the data starts where
  ClickHouse's INSERT parser starts it (after `FORMAT <name>` and one line
  break, or at `VALUES`); the statement head and the data bytes reach the
  engine binary-safe: through its streaming insert (`send_insert`, 26.x) or
  as a file read with `INSERT ... FROM INFILE` (older engines).  (The
  engines' plain `query()` would end inline data at the first empty line, as
  their multi-statement client does.)
* Requests run at once on 26.x (a connection each; the engine releases the
  GIL and has one process list, so KILL QUERY works across requests); on older
  engines one at a time, behind one lock.  A SELECT result past the response
  buffer is sent as the engine produces it (26.x, see _ConnectionSession._stream).
* Relative paths of file() resolve in <data dir>/user_files, as in a server.

Run `python server.py --help` for the command line.
"""

import argparse
import base64
import bz2
import email.message
import gzip
import hmac
import json
import lzma
import os
import re
import select
import signal
import socket
import ssl
import struct
import sys
import tempfile
import threading
import time
import traceback
import uuid
import zlib
from contextlib import nullcontext
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlencode, urlsplit

import brotli
import lz4.block
import lz4.frame
import zstandard
from clickhouse_cityhash.cityhash import CityHash128

HOST = "127.0.0.1"
KEEP_ALIVE_TIMEOUT = 10  # seconds a connection may sit idle between requests
SHUTDOWN_GRACE = 10  # seconds the engine gets to shut down on SIGTERM
RECEIVE_TIMEOUT = 300  # seconds without progress while reading a request body

# URL parameters the HTTP handler consumes itself; they are not settings.
# `database` and `default_format` are real settings in the 26.x engine.
RESERVED_PARAMS = frozenset({
    "compress", "decompress", "user", "password", "quota_key", "query_id",
    "stacktrace", "role", "buffer_size", "wait_end_of_query", "session_id",
    "session_timeout", "session_check", "client_protocol_version",
    "close_session", "query",
})
# With multipart bodies, `<table>_format|_types|_structure` describe external
# tables unless they name a real setting (e.g. date_time_input_format).
EXTERNAL_TABLE_SUFFIXES = ("_format", "_types", "_structure")
PARAM_PREFIX = "param_"

# HTTP statuses by error name, as in ClickHouse's exceptionCodeToHTTPStatus.
STATUS_BY_ERROR = {
    401: ["REQUIRED_PASSWORD"],
    403: ["UNKNOWN_USER", "WRONG_PASSWORD", "AUTHENTICATION_FAILED",
          "SET_NON_GRANTED_ROLE", "ACCESS_DENIED"],
    400: ["BAD_ARGUMENTS", "CANNOT_COMPILE_REGEXP", "CANNOT_PARSE_TEXT",
          "CANNOT_PARSE_ESCAPE_SEQUENCE", "CANNOT_PARSE_QUOTED_STRING",
          "CANNOT_PARSE_DATE", "CANNOT_PARSE_DATETIME", "CANNOT_PARSE_NUMBER",
          "CANNOT_PARSE_DOMAIN_VALUE_FROM_STRING", "CANNOT_PARSE_IPV4",
          "CANNOT_PARSE_IPV6", "CANNOT_PARSE_INPUT_ASSERTION_FAILED",
          "CANNOT_PARSE_UUID", "DUPLICATE_COLUMN", "ILLEGAL_COLUMN",
          "UNKNOWN_ELEMENT_IN_AST", "UNKNOWN_TYPE_OF_AST_NODE",
          "THERE_IS_NO_COLUMN", "TOO_DEEP_AST", "TOO_BIG_AST",
          "UNEXPECTED_AST_STRUCTURE", "SYNTAX_ERROR", "INCORRECT_DATA",
          "TYPE_MISMATCH", "VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE"],
    404: ["UNKNOWN_TABLE", "UNKNOWN_FUNCTION", "UNKNOWN_IDENTIFIER",
          "UNKNOWN_TYPE", "UNKNOWN_STORAGE", "UNKNOWN_DATABASE",
          "UNKNOWN_SETTING", "UNKNOWN_DIRECTION_OF_SORTING",
          "UNKNOWN_AGGREGATE_FUNCTION", "UNKNOWN_FORMAT",
          "UNKNOWN_DATABASE_ENGINE", "UNKNOWN_TYPE_OF_QUERY", "UNKNOWN_ROLE"],
    413: ["QUERY_IS_TOO_LARGE"],
    501: ["NOT_IMPLEMENTED"],
    503: ["SOCKET_TIMEOUT", "CANNOT_OPEN_FILE", "CANNOT_SCHEDULE_TASK"],
    411: ["HTTP_LENGTH_REQUIRED"],
    408: ["TIMEOUT_EXCEEDED"],
    415: ["UNSUPPORTED_MEDIA_TYPE"],
}

# Appended by ClickHouse to authentication failures of the `default` user.
DEFAULT_USER_PASSWORD_HINT = (
    "\n\n"
    "If you use ClickHouse Cloud, the password can be reset at https://clickhouse.cloud/\n"
    "on the settings page for the corresponding service.\n\n"
    "If you have installed ClickHouse and forgot password you can reset it in the configuration file.\n"
    "The password for default user is typically located at /etc/clickhouse-server/users.d/default-password.xml\n"
    "and deleting this file will reset the password.\n"
    "See also /etc/clickhouse-server/users.xml on the server where ClickHouse is installed.\n\n"
)

NOT_FOUND_TEXT = (
    "There is no handle {path}\n\n"
    "Use / or /ping for health checks.\n"
    "Or /replicas_status for more sophisticated health checks.\n\n"
    "Send queries from your program with POST method or GET /?query=...\n\n"
    "Use clickhouse-client:\n\n"
    "For interactive data analysis:\n"
    "    clickhouse-client\n\n"
    "For batch query processing:\n"
    "    clickhouse-client --query='SELECT 1' > result\n"
    "    clickhouse-client < query > result\n"
)

# Statements whose result is sent in an output format (others answer with an
# empty text/plain body and no X-ClickHouse-Format header).
OUTPUT_STATEMENTS = frozenset({
    "SELECT", "WITH", "FROM", "SHOW", "DESCRIBE", "DESC", "EXISTS", "EXPLAIN",
    "CHECK", "KILL", "WATCH", "BACKUP", "RESTORE",
})

TEXT_PLAIN = "text/plain; charset=UTF-8"
EXPOSED_HEADERS = ("X-ClickHouse-Query-Id,X-ClickHouse-Summary,X-ClickHouse-Server-Display-Name,"
                   "X-ClickHouse-Format,X-ClickHouse-Timezone,X-ClickHouse-Exception-Code")
BINARY_FORMATS = frozenset({
    "rowbinary", "rowbinarywithnames", "rowbinarywithnamesandtypes",
    "rowbinarywithdefaults", "native", "parquet", "arrow", "arrowstream", "orc",
    "avro", "msgpack", "protobuf", "protobufsingle", "protobuflist", "capnproto",
    "bsoneachrow", "npy", "odbcdriver2", "rawblob",
})
NDJSON_FORMATS = frozenset({
    "jsoneachrow", "jsonlines", "ndjson", "jsonstringseachrow",
    "jsoneachrowwithprogress", "jsonstringseachrowwithprogress",
})


# --- errors -----------------------------------------------------------------

class ClickHouseError(Exception):
    """An error reported to the client the way ClickHouse reports it."""

    def __init__(self, code, name, message):
        super().__init__(message)
        self.code = code
        self.name = name
        self.message = message

    def text(self, version):
        # ClickHouse ends the message with a dot unless it already has one.
        dot = "" if self.message.endswith(".") else "."
        return f"Code: {self.code}. DB::Exception: {self.message}{dot} ({self.name}) (version {version})"


# --- the engine ---------------------------------------------------------------

_LEADING_NOISE = re.compile(rb"(?:\s+|--[^\n]*|#[^\n]*|/\*.*?\*/|\()*", re.S)
# 23.x also names subclasses (DB::ParsingException); the server says DB::Exception.
_ENGINE_ERROR = re.compile(r"Code: (\d+)\. DB::\w*Exception: ")
_FORMAT_CLAUSE = re.compile(r"\nFORMAT (\S+)(?=\n|$)")
# What formatQuery() appends to the parse errors it reports (24.x on; 23.x).
_SCOPES_OF_CHECK = (": In scope SELECT formatQuery(", ": While processing formatQuery(")
# The statement of a formatQuery() check may be longer than the setting allows
# (it holds the checked statement as a literal); the statement checked inside
# is then limited by this value too, and the execution by the real one.
_CHECK_MAX_QUERY_SIZE = 1 << 30


def leading_keyword(sql):
    """First keyword of a statement, skipping blanks, comments and '('."""
    rest = sql[_LEADING_NOISE.match(sql).end():]
    word = re.match(rb"[A-Za-z_]+", rest)
    return word.group(0).decode().upper() if word else ""


_TOKEN = re.compile(rb"""
    (?P<blank>\s+|--[^\n]*|\#[^\n]*|/\*.*?(?:\*/|\Z))
  | (?P<quoted>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.|"")*"|`(?:[^`\\]|\\.|``)*`)
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<other>.)
""", re.X | re.S)
# Words after which the next word names a table, not a clause.
_NAME_FOLLOWS = (b"INTO", b"TABLE", b"FUNCTION", b".")


def split_insert(sql):
    """(head, format, data) of an INSERT with inline data, else None.

    Follows ClickHouse's INSERT parser: inline data follows `FORMAT <name>`
    (after blanks and at most one line break) or starts at the first token
    after `VALUES`.  INSERT ... SELECT has no inline data.  `data` is always
    the tail of `sql`.
    """
    tokens = (m for m in _TOKEN.finditer(sql) if m.lastgroup != "blank")
    depth = 0
    previous = b""
    for token in tokens:
        text = token.group().upper()
        if text == b"(":
            depth += 1
        elif text == b")":
            depth -= 1
        # The table name directly follows INTO, TABLE, FUNCTION or a dot.
        elif depth == 0 and token.lastgroup == "word" and previous not in _NAME_FOLLOWS:
            if text == b"VALUES":
                data = next(tokens, None)
                return sql[:token.start()], "Values", sql[data.start():] if data else b""
            if text == b"FORMAT":
                name = next(tokens, None)
                if name is None or name.lastgroup not in ("word", "quoted"):
                    return None
                start = name.end()
                while sql[start:start + 1] in (b" ", b"\t", b"\f"):
                    start += 1
                start += sql[start:start + 1] == b"\r"
                start += sql[start:start + 1] == b"\n"
                fmt = name.group().decode()
                return sql[:token.start()], fmt.strip("`\""), sql[start:]
            if text in (b"SELECT", b"WITH", b"FROM"):
                return None
        previous = text
    return None


def _insert_head_parts(head):
    """(start of the SETTINGS clause or len(head), whether a column list follows the table)."""
    tokens = [m for m in _TOKEN.finditer(head) if m.lastgroup != "blank"]
    columns = False
    at = 0
    # INSERT INTO [TABLE] name[.name] | INSERT INTO FUNCTION name(...), then maybe (columns)
    while at < len(tokens) and tokens[at].group().upper() in (b"INSERT", b"INTO", b"TABLE"):
        at += 1
    if at < len(tokens) and tokens[at].group().upper() == b"FUNCTION":
        at += 2  # FUNCTION name
        depth = 0
        while at < len(tokens):
            depth += {b"(": 1, b")": -1}.get(tokens[at].group(), 0)
            at += 1
            if depth == 0:
                break
    else:
        at += 1
        while at + 1 < len(tokens) and tokens[at].group() == b".":
            at += 2
    columns = at < len(tokens) and tokens[at].group() == b"("
    depth = 0
    previous = b""
    for token in tokens:
        text = token.group().upper()
        if text == b"(":
            depth += 1
        elif text == b")":
            depth -= 1
        elif depth == 0 and text == b"SETTINGS" and previous not in _NAME_FOLLOWS:
            return token.start(), columns
        previous = text
    return len(head), columns


def insert_from_file(head, path, fmt, infile_takes_columns=True):
    """The INSERT `head` (up to its data) reading its data from file `path`.

    `INSERT ... FROM INFILE` parses the file as inline data.  Where it would
    ignore the statement's column list (23.x, 24.x: it reads all columns),
    `INSERT ... SELECT * FROM file()` reads it instead, the file's structure
    taken from the inserted columns.  FROM INFILE must come before the
    statement's SETTINGS clause.  Line breaks keep a line comment at the end
    of `head` from swallowing the rest.
    """
    cut, columns = _insert_head_parts(head)
    if columns and not infile_takes_columns:
        source = b"SELECT * FROM file(" + quote_string(path).encode() + b", " + quote_string(fmt).encode() + b")"
        return head[:cut] + b"\n" + head[cut:] + b"\n" + source
    return (head[:cut] + b"\nFROM INFILE " + quote_string(path).encode() + b"\n" + head[cut:]
            + b"\nFORMAT " + quote_identifier(fmt).encode())


def quote_string(value):
    return "'" + (value.replace("\\", "\\\\").replace("'", "\\'").replace("\0", "\\0")) + "'"


def quote_identifier(name):
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`").replace("\0", "\\0") + "`"


def quote_bytes(value):
    """A string literal holding `value` (any bytes; no NUL in the literal)."""
    return b"'" + value.replace(b"\\", b"\\\\").replace(b"'", b"\\'").replace(b"\0", b"\\0") + b"'"


def escape_parameter(value):
    """Query parameter values are read in TabSeparated (escaped) form."""
    return (value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
            .replace("\r", "\\r").replace("\0", "\\0"))


def _rows(raw):
    return [line.split("\t") for line in raw.decode().splitlines()]


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
        builtin_default = _rows(self._run_raw(b"SELECT currentDatabase()", "TabSeparatedRaw", None))[0][0]
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
        return _rows(self.run(sql.encode(), "TabSeparatedRaw").bytes())

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
            return _rows(self.query(conn, sql, "TabSeparatedRaw").bytes())
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
        return _rows(self._anchor.query(sql, "TabSeparatedRaw").bytes())

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
        rows = _rows(self._query(f"SELECT name, value, changed FROM system.settings WHERE name IN ({listed})",
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


# --- engine (release-independent) -------------------------------------------------

def _ending(chunks, cleanup):
    try:
        yield from chunks
    finally:
        chunks.close()
        cleanup()


# Output formats whose output is the concatenation of their blocks' outputs (no prefix or
# suffix): the only ones the engine's streaming query writes right, a block at a time.
STREAMED_FORMATS = frozenset(name.lower() for name in (
    "TabSeparated", "TSV", "TabSeparatedRaw", "TSVRaw", "CSV", "Values", "JSONEachRow", "JSONLines", "NDJSON",
    "JSONCompactEachRow", "JSONStringsEachRow", "JSONCompactStringsEachRow", "RowBinary", "Native",
    "LineAsString", "RawBLOB"))


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
        try:
            for chunk in chunks:
                yield chunk
        except EngineError as exc:
            raise self.from_engine(exc) from None
        finally:
            chunks.close()
            cleanup()

    def _run_in_engine(self, job, named, client_gone):
        with self._serialised():
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
            handed_on = False
            try:
                result = self._run(session, job, named, client_gone)
                if result.rest is not None:  # (engines that run queries at once: no lock is held)
                    result.rest = self._then(result.rest, session.close)
                    handed_on = True
                return result
            except EngineError as exc:
                raise self.from_engine(exc) from None
            finally:
                if not handed_on and (named is None or named.kept is None):
                    session.close()

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
        if (self.concurrent and named is None and job.stream_after is not None and output_format is not None
                and output_format.lower() in STREAMED_FORMATS
                and leading_keyword(normalized.encode()) in ("SELECT", "WITH", "FROM")):
            plan.stream_after = job.stream_after

        watch = reporter = None
        # The engine runs the query under an id of its own; the front finds it by a tag.
        tag = f"dev-clickhouse-{uuid.uuid4()}" if self.concurrent and "log_comment" not in given else None
        if (client_gone is not None and tag and not insert
                and parse_bool(given.get("cancel_http_readonly_queries_on_client_close", "0"))
                and session.read_only(job.sql)):
            watch = CancelOnClose(self.api, tag, client_gone)
        if job.progress is not None and tag:
            fmt = output_format
            reporter = ProgressReporter(self.api, tag, job.progress_interval,
                                        lambda progress: job.progress(fmt, progress))
        if watch or reporter:
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
                raw.rest = _ending(raw.rest, watch.stop)
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
                rows = _rows(conn.query(
                    "SELECT read_rows, read_bytes, written_rows, written_bytes, total_rows_approx, "
                    "toUInt64(elapsed * 1e9) FROM system.processes "
                    f"WHERE Settings['log_comment'] = {quote_string(self.tag)}", "TabSeparatedRaw").bytes())
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
                    self.api.kill_tagged(self.tag)
                except Exception as exc:  # noqa: BLE001 (a failed cancel leaves the query running)
                    sys.stderr.write(f"cannot cancel the query of a closed connection: {exc}\n")
                return

    def stop(self):
        self.done.set()


_CREATE_TEMPORARY = re.compile(r"CREATE (?:OR REPLACE )?TEMPORARY TABLE ")


class NamedSession:
    """An HTTP session (`session_id`): the engine session its requests share.

    `kept` is the engine session kept open for it (26.x).  Engines that open a
    fresh engine for every request cannot keep one; their sessions are
    `replayed`: the SET and USE statements that succeeded in the session are
    run again before each later request of it (before its own database and
    settings, as a server applies those to the query's context), and a
    temporary table, which cannot be replayed, is refused.
    """

    def __init__(self, session_id, timeout):
        self.session_id = session_id
        self.timeout = timeout  # seconds, fixed when the session is made (as in a server)
        self.kept = None
        self.replayed = False
        self.steps = []
        self.in_use = False
        self.closes_at = None


class SessionStore:
    """Named sessions, as ClickHouse's NamedSessionsStorage keeps them."""

    DEFAULT_TIMEOUT = 60  # default_session_timeout
    MAX_TIMEOUT = 3600  # max_session_timeout

    def __init__(self, engine):
        self.engine = engine
        self._lock = threading.Lock()
        self._sessions = {}

    def parse_timeout(self, url_params):
        """The session_timeout parameter, as the HTTP handler's parseSessionTimeout reads it."""
        text = first_value(url_params, "session_timeout")
        if text is None:
            return self.DEFAULT_TIMEOUT
        if not re.fullmatch(r"[+-]?\d+", text) or int(text) >= 1 << 32 or int(text) <= -(1 << 32):
            raise self.engine.error("INVALID_SESSION_TIMEOUT", f"Invalid session timeout: '{text}'")
        timeout = int(text) % (1 << 32)  # an unsigned int
        if timeout > self.MAX_TIMEOUT:
            raise self.engine.error("INVALID_SESSION_TIMEOUT", (
                f"Session timeout '{text}' is larger than max_session_timeout: {self.MAX_TIMEOUT}. "
                "Maximum session timeout could be modified in configuration file."))
        return timeout

    def _expire(self, now):
        gone = [key for key, named in self._sessions.items()
                if not named.in_use and named.closes_at is not None and named.closes_at <= now]
        return [self._sessions.pop(key) for key in gone]

    def acquire(self, user, session_id, timeout, check):
        with self._lock:
            expired = self._expire(time.monotonic())
            named = self._sessions.get((user, session_id))
            if named is None:
                if check:
                    error = self.engine.error("SESSION_NOT_FOUND", f"Session {session_id} not found")
                else:
                    named = self._sessions[(user, session_id)] = NamedSession(session_id, timeout)
            elif named.in_use:
                error = self.engine.error("SESSION_IS_LOCKED",
                                          f"Session {session_id} is locked by a concurrent client")
                named = None
            if named is not None:
                named.in_use = True
                named.closes_at = None
        for old in expired:
            self.engine.close_session(old)
        if named is None:
            raise error
        return named

    def close_all(self):
        with self._lock:
            sessions, self._sessions = list(self._sessions.values()), {}
        for named in sessions:
            try:
                self.engine.close_session(named)
            except Exception as exc:  # noqa: BLE001 (shutting down)
                sys.stderr.write(f"session {named.session_id}: {exc}\n")

    def release(self, user, named, close):
        with self._lock:
            named.in_use = False
            if close:
                self._sessions.pop((user, named.session_id), None)
            else:
                named.closes_at = time.monotonic() + named.timeout
        if close:
            self.engine.close_session(named)


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


# --- decoding compressed streams whole -----------------------------------------------
#
# A request body is decoded completely, and before anything of it runs, the way
# ClickHouse's read buffers decode it: every frame, member or stream one after
# another where ClickHouse reads on after the end of one, an error where it
# does not, and an error for anything that is not part of the format (trailing
# bytes, a corrupt frame).  One deliberate difference: ClickHouse's LZ4 and
# zstd readers hand on what they decoded when the body ends inside a frame
# (an insert would store the rows decoded so far); here such a body is
# refused with the reader's error, since the rows after the cut are lost.

class BodyError(Exception):
    """A body that cannot be decoded: ClickHouse's error name and message."""

    def __init__(self, name, message):
        super().__init__(message)
        self.name = name
        self.message = message


class _Undecodable(Exception):
    """Raised by _frames(): the codec's own message, or None if the data ends inside a frame."""


def _frames(data, new_decoder, errors):
    """The output of all frames of `data`, decoded one after another.

    new_decoder() returns a decoder of one frame (decompress(), eof,
    unused_data); `errors` is what its decompress() raises on bad data.
    """
    out = []
    rest = data
    while rest:
        decoder = new_decoder()
        try:
            out.append(decoder.decompress(rest))
        except errors as exc:
            raise _Undecodable(str(exc)) from None
        if not decoder.eof:
            raise _Undecodable(None)
        rest = decoder.unused_data or b""
    return b"".join(out)


_ZLIB_ERRORS = {-2: "stream error", -3: "data error", -4: "insufficient memory", -5: "buffer error",
                -6: "incompatible version"}


def inflate(data, wbits):
    """gzip (wbits 31) or deflate (15): ZlibInflatingReadBuffer starts a new
    stream after each one (inflateReset), so members follow one another and
    anything else after one (garbage, zero padding) is bad data."""
    if not data:  # inflate() without input
        raise BodyError("ZLIB_INFLATE_FAILED", "inflate failed: buffer error")
    try:
        return _frames(data, lambda: zlib.decompressobj(wbits), zlib.error)
    except _Undecodable as exc:
        code = re.match(r"Error (-?\d+)", exc.args[0] or "")
        reason = _ZLIB_ERRORS.get(int(code.group(1)), "unknown error") if code else "buffer error"
        raise BodyError("ZLIB_INFLATE_FAILED", f"inflate failed: {reason}") from None


def lz4_frames(data):
    """LZ4 frames (and skippable frames) one after another, as LZ4F_decompress reads them."""
    try:
        return _frames(data, lz4.frame.LZ4FrameDecompressor, RuntimeError)
    except _Undecodable as exc:
        # python-lz4 says "LZ4F_decompress failed with code: ERROR_frameType_unknown".
        reason = exc.args[0].rpartition(": ")[2] if exc.args[0] else "the data ends inside a frame"
        raise BodyError("LZ4_DECODER_FAILED",
                        f"LZ4 decompression failed. LZ4F version: 100. Error: {reason}") from None


def zstd_frames(data):
    """zstd frames (and skippable frames) one after another, as ZSTD_decompressStream reads them."""
    try:
        return _frames(data, lambda: zstandard.ZstdDecompressor().decompressobj(), zstandard.ZstdError)
    except _Undecodable as exc:
        reason = (re.sub(r"^zstd decompressor error: ", "", exc.args[0]) if exc.args[0]
                  else "the data ends inside a frame")
        hint = (". You can increase the maximum window size with the 'zstd_window_log_max' setting in "
                "ClickHouse. Example: 'SET zstd_window_log_max = 31'" if "too much memory" in reason else "")
        version = ".".join(map(str, zstandard.ZSTD_VERSION))
        raise BodyError("ZSTD_DECODER_FAILED",
                        f"ZSTD stream decoding failed: error '{reason}'{hint}; ZSTD version: {version}") from None


def brotli_stream(data):
    """One brotli stream: BrotliReadBuffer reads no second one, nor anything after it."""
    try:
        return brotli.decompress(data)
    except brotli.error:
        raise BodyError("BROTLI_READ_FAILED", "brotli decode error") from None


_LZMA_ERRORS = {
    "Input format not supported by decoder": "LZMA_FORMAT_ERROR", "Corrupt input data": "LZMA_DATA_ERROR",
    "Invalid or unsupported options": "LZMA_OPTIONS_ERROR", "Memory usage limit exceeded": "LZMA_MEMLIMIT_ERROR",
    "Unsupported integrity check": "LZMA_UNSUPPORTED_CHECK", "Insufficient buffer space": "LZMA_BUF_ERROR",
}


def xz_streams(data):
    """xz streams one after another, with stream padding (zero bytes in fours)
    between and after them: lzma_stream_decoder(LZMA_CONCATENATED), 500 MiB
    memory limit, as LZMAInflatingReadBuffer reads them."""
    def error(name):
        return BodyError("LZMA_STREAM_DECODER_FAILED", f"lzma_stream_decoder failed: error code: error code {name}")

    out = []
    rest = data
    while True:
        decoder = lzma.LZMADecompressor(lzma.FORMAT_XZ, memlimit=500 << 20)
        try:
            out.append(decoder.decompress(rest))
        except lzma.LZMAError as exc:
            raise error(_LZMA_ERRORS.get(str(exc), str(exc))) from None
        if not decoder.eof:
            raise error("LZMA_BUF_ERROR")
        rest = decoder.unused_data
        padding = len(rest) - len(rest.lstrip(b"\0"))
        if padding % 4:
            raise error("LZMA_DATA_ERROR")
        rest = rest[padding:]
        if not rest:
            return b"".join(out)


def bzip2_stream(data):
    """One bzip2 stream: Bzip2ReadBuffer refuses anything after its end."""
    decoder = bz2.BZ2Decompressor()
    try:
        out = decoder.decompress(data)
    except OSError:
        code = -4 if re.match(rb"BZh[1-9]", data[:4]) else -5  # BZ_DATA_ERROR, BZ_DATA_ERROR_MAGIC
        raise BodyError("BZIP2_STREAM_DECODER_FAILED", f"bzip2 stream decoder failed: error code: {code}") from None
    if not decoder.eof:
        raise BodyError("UNEXPECTED_END_OF_FILE", "Unexpected end of bzip2 archive")
    if decoder.unused_data:
        raise BodyError("BZIP2_STREAM_DECODER_FAILED",
                        "bzip2 decoder finished, but input stream has not exceeded: error code: 4")
    return out


def snappy_raw(data):
    """One raw snappy block (the format of snappy_uncompress); ValueError if malformed."""
    size, shift, pos = 0, 0, 0
    while True:  # the uncompressed length, a varint
        if pos >= len(data) or shift > 28:
            raise ValueError("bad length")
        byte = data[pos]
        pos += 1
        size |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            break
    out = bytearray()
    while pos < len(data):
        tag = data[pos]
        pos += 1
        kind = tag & 3
        if kind == 0:  # a literal
            length = tag >> 2
            if length >= 60:
                extra = length - 59
                if pos + extra > len(data):
                    raise ValueError("truncated literal length")
                length = int.from_bytes(data[pos:pos + extra], "little")
                pos += extra
            length += 1
            if pos + length > len(data):
                raise ValueError("truncated literal")
            out += data[pos:pos + length]
            pos += length
        else:  # a copy of earlier output
            extra = (1, 2, 4)[kind - 1]
            if pos + extra > len(data):
                raise ValueError("truncated copy")
            if kind == 1:
                length = ((tag >> 2) & 7) + 4
                offset = ((tag >> 5) << 8) | data[pos]
            else:
                length = (tag >> 2) + 1
                offset = int.from_bytes(data[pos:pos + extra], "little")
            pos += extra
            if offset == 0 or offset > len(out):
                raise ValueError("bad copy offset")
            start = len(out) - offset
            if offset >= length:
                out += out[start:start + length]
            else:  # the copy overlaps its own output: a repeated pattern
                out += (out[start:] * (length // offset + 1))[:length]
        if len(out) > size:
            raise ValueError("output longer than announced")
    if len(out) != size:
        raise ValueError("output shorter than announced")
    return bytes(out)


DBMS_DEFAULT_BUFFER_SIZE = 1 << 20  # the buffer of HadoopSnappyReadBuffer


def hadoop_snappy(data):
    """Hadoop's snappy framing, as HadoopSnappyReadBuffer reads it: blocks of
    a big-endian uncompressed length and snappy chunks, each a big-endian
    compressed length and a raw snappy block, up to that length."""
    def error(status):
        return BodyError("SNAPPY_UNCOMPRESS_FAILED", f"hadoop snappy decode error: {status}")

    def length(at):  # the decoder keeps lengths in a signed 32-bit int
        if at + 4 > len(data):
            raise error("NEEDS_MORE_INPUT")
        return int.from_bytes(data[at:at + 4], "big", signed=True)

    out = []
    pos = 0
    while pos < len(data):
        block_length = length(pos)
        pos += 4
        produced = 0
        while produced < block_length:
            compressed_length = length(pos)
            pos += 4
            if compressed_length <= 0:
                raise error("INVALID_INPUT")
            if compressed_length > DBMS_DEFAULT_BUFFER_SIZE:
                raise BodyError("SNAPPY_UNCOMPRESS_FAILED", (
                    f"Too large snappy compressed block. buffer size: {DBMS_DEFAULT_BUFFER_SIZE}, "
                    f"compressed block size: {compressed_length}"))
            if pos + compressed_length > len(data):
                raise error("NEEDS_MORE_INPUT")
            try:
                chunk = snappy_raw(data[pos:pos + compressed_length])
            except ValueError:
                raise error("INVALID_INPUT") from None
            pos += compressed_length
            out.append(chunk)
            produced += len(chunk)
        if produced != block_length:
            raise error("INVALID_INPUT")
    return b"".join(out)



# --- ClickHouse compressed blocks (compress=1 / decompress=1) --------------------

CHECKSUM_SIZE = 16
BLOCK_HEADER = struct.Struct("<BII")  # method, compressed size incl. header, raw size
METHOD_NONE, METHOD_LZ4, METHOD_ZSTD = 0x02, 0x82, 0x90
# Method bytes of ClickHouse's other codecs (CompressionMethodByte): known to the
# server, not decoded here.
OTHER_METHODS = {0x91: "Multiple", 0x92: "Delta", 0x93: "T64", 0x94: "DoubleDelta", 0x95: "Gorilla",
                 0x96: "AES_128_GCM_SIV", 0x97: "AES_256_GCM_SIV", 0x98: "FPC", 0x99: "DeflateQpl",
                 0x9a: "GCD", 0x9b: "ZSTD_QPL"}
COMPRESS_BLOCK_SIZE = 1 << 20
MAX_COMPRESSED_SIZE = 1 << 30  # DBMS_MAX_COMPRESSED_SIZE
MASK64 = (1 << 64) - 1


def block_checksum(block):
    """CityHash128 v1.0.2 of header + payload, as ClickHouse stores it.

    ClickHouse writes the hash's (first, second) 64-bit halves little-endian;
    this binding returns them as one integer with `first` in the high bits.
    """
    value = CityHash128(block)
    return struct.pack("<QQ", value >> 64, value & MASK64)


def compress_blocks(data):
    out = []
    for start in range(0, len(data), COMPRESS_BLOCK_SIZE):
        raw = data[start:start + COMPRESS_BLOCK_SIZE]
        payload = lz4.block.compress(raw, store_size=False)
        block = BLOCK_HEADER.pack(METHOD_LZ4, BLOCK_HEADER.size + len(payload), len(raw)) + payload
        out += [block_checksum(block), block]
    return b"".join(out)


def decompress_blocks(data, verify_checksums):
    """Every block of a body in ClickHouse's compressed format, as the HTTP
    handler's CompressedReadBuffer reads it (all blocks of one method)."""
    out = []
    pos = 0
    method_of_body = None
    while pos < len(data):
        head = CHECKSUM_SIZE + BLOCK_HEADER.size
        if len(data) - pos < head:
            raise BodyError("CANNOT_READ_ALL_DATA",
                            f"Cannot read all data. Bytes read: {len(data) - pos}. Bytes expected: {head}.")
        checksum = data[pos:pos + CHECKSUM_SIZE]
        method, size, raw_size = BLOCK_HEADER.unpack_from(data, pos + CHECKSUM_SIZE)
        if method not in (METHOD_NONE, METHOD_LZ4, METHOD_ZSTD) and method not in OTHER_METHODS:
            raise BodyError("UNKNOWN_CODEC", f"Unknown codec family code: {method}")
        if method_of_body is not None and method != method_of_body:
            raise BodyError("CANNOT_DECOMPRESS", (
                f"Data compressed with different methods, given method byte 0x{method:02x}, "
                f"previous method byte 0x{method_of_body:02x}"))
        method_of_body = method
        if size > MAX_COMPRESSED_SIZE:
            raise BodyError("TOO_LARGE_SIZE_COMPRESSED",
                            f"Too large size_compressed_without_checksum: {size}. Most likely corrupted data.")
        if size < BLOCK_HEADER.size:
            raise BodyError("CORRUPTED_DATA", (
                f"Can't decompress data: the compressed data size ({size}, this should include header size) "
                f"is less than the header size ({BLOCK_HEADER.size})"))
        block = data[pos + CHECKSUM_SIZE:pos + CHECKSUM_SIZE + size]
        if len(block) < size:
            raise BodyError("CANNOT_READ_ALL_DATA", (
                f"Cannot read all data. Bytes read: {len(block) - BLOCK_HEADER.size}. "
                f"Bytes expected: {size - BLOCK_HEADER.size}."))
        if verify_checksums and block_checksum(block) != checksum:
            reference, actual = struct.unpack("<QQ", checksum), struct.unpack("<QQ", block_checksum(block))
            raise BodyError("CHECKSUM_DOESNT_MATCH", (
                f"Checksum doesn't match: corrupted data. Reference: {reference[0]:016x}{reference[1]:016x}. "
                f"Actual: {actual[0]:016x}{actual[1]:016x}. Size of compressed block: {size}"))
        payload = block[BLOCK_HEADER.size:]
        if method == METHOD_NONE:
            out.append(payload)  # the server takes the payload as it is
        elif method == METHOD_LZ4:
            try:
                raw = lz4.block.decompress(payload, uncompressed_size=raw_size)
            except lz4.block.LZ4BlockError:
                raw = None
            if raw is None or len(raw) != raw_size:
                raise BodyError("CANNOT_DECOMPRESS", "Cannot decompress LZ4-encoded data")
            out.append(raw)
        elif method == METHOD_ZSTD:
            try:
                raw = zstd_frames(payload)  # ZSTD_decompress reads every frame of the block
            except BodyError as exc:
                reason = re.search(r"error '(.*)'", exc.message).group(1)
                raise BodyError("CANNOT_DECOMPRESS", f"Cannot decompress ZSTD-encoded data: {reason}") from None
            if len(raw) > raw_size:
                raise BodyError("CANNOT_DECOMPRESS",
                                "Cannot decompress ZSTD-encoded data: Destination buffer is too small")
            if len(raw) < raw_size:
                raise BodyError("CANNOT_DECOMPRESS", (
                    f"Cannot decompress ZSTD-encoded data: the block decodes to {len(raw)} bytes, "
                    f"its header says {raw_size}"))
            out.append(raw)
        else:
            raise BodyError("NOT_IMPLEMENTED", (
                f"Blocks compressed with codec {OTHER_METHODS[method]} (method byte 0x{method:02x}) are not "
                "decoded by this local server: send LZ4, ZSTD or NONE blocks"))
        pos += CHECKSUM_SIZE + size
    return b"".join(out)


# --- HTTP Content-Encoding -----------------------------------------------------------

# name -> encode(data, level), for responses (Accept-Encoding)
HTTP_ENCODERS = {
    "zstd": lambda d, lvl: zstandard.ZstdCompressor(level=lvl).compress(d),
    "br": lambda d, lvl: brotli.compress(d, quality=min(max(lvl, 0), 11)),
    "lz4": lambda d, lvl: lz4.frame.compress(d, compression_level=lvl),
    "gzip": lambda d, lvl: gzip.compress(d, compresslevel=min(max(lvl, 0), 9), mtime=0),
    "deflate": lambda d, lvl: zlib.compress(d, min(max(lvl, 0), 9)),
    "xz": lambda d, lvl: lzma.compress(d, preset=min(max(lvl, 0), 9)),
    "bz2": lambda d, lvl: bz2.compress(d, min(max(lvl, 1), 9)),
}
# ClickHouse's preference when several are accepted (snappy is not offered here).
HTTP_PREFERENCE = ("zstd", "br", "lz4", "gzip", "deflate", "xz", "bz2")

# Content-Encoding of a request (lower-cased) -> decoder, as chooseCompressionMethod names them.
HTTP_DECODERS = {
    "gzip": lambda d: inflate(d, 31), "gz": lambda d: inflate(d, 31),
    "deflate": lambda d: inflate(d, 15),
    "br": brotli_stream, "brotli": brotli_stream,
    "xz": xz_streams, "lzma": xz_streams,
    "zstd": zstd_frames, "zst": zstd_frames,
    "lz4": lz4_frames,
    "bz2": bzip2_stream,
    "snappy": hadoop_snappy,
}
# Since ClickHouse 26.3 an empty compressed body is an empty body (26.4 for bzip2);
# before, the gzip, deflate, brotli, xz and bzip2 readers fail on it.
EMPTY_BODY_IS_EMPTY_SINCE = (26, 3)
EMPTY_BZIP2_BODY_IS_EMPTY_SINCE = (26, 4)
# Since 26.x `NONE` or `Auto` (any case) means no compression; before, only `none` and `auto`.
ANY_CASE_NONE_SINCE = (26, 0)


def choose_response_encoding(accept_encoding):
    # Substring matching, exactly like ClickHouse's chooseHTTPCompressionMethod.
    for name in HTTP_PREFERENCE:
        if name in accept_encoding:
            return name
    return None


def decode_request_body(engine, content_encoding, data):
    """The request body decoded whole (Content-Encoding), or ClickHouse's error."""
    method = content_encoding.lower()
    plain = ("", "auto", "none")
    if (method if engine.version_tuple >= ANY_CASE_NONE_SINCE else content_encoding) in plain:
        return data
    decode = HTTP_DECODERS.get(method)
    if decode is None:
        raise engine.error("NOT_IMPLEMENTED", (
            f"Unknown compression method '{content_encoding}'. Only 'auto', 'none', 'gzip', 'deflate', "
            "'br', 'xz', 'zstd', 'lz4', 'bz2', 'snappy' are supported as compression methods"))
    if not data and engine.version_tuple >= (
            EMPTY_BZIP2_BODY_IS_EMPTY_SINCE if method == "bz2" else EMPTY_BODY_IS_EMPTY_SINCE):
        return data
    try:
        return decode(data)
    except BodyError as exc:
        raise engine.error(exc.name, exc.message) from None


# --- request parsing ---------------------------------------------------------------------

def parse_bool(value):
    return value.strip().lower() in ("1", "true")


def last_value(pairs, name, default=None):
    values = [v for k, v in pairs if k == name]
    return values[-1] if values else default


def first_value(pairs, name, default=None):
    return next((v for k, v in pairs if k == name), default)


def parse_multipart(content_type, body):
    """Fields of a multipart/form-data body: [(name, filename or None, bytes)]."""
    header = email.message.Message()
    header["Content-Type"] = content_type
    boundary = header.get_param("boundary")
    if not boundary:
        raise ValueError("multipart body without boundary")
    delimiter = b"\r\n--" + boundary.encode()
    fields = []
    for part in (b"\r\n" + body).split(delimiter)[1:]:
        if part.startswith(b"--"):
            break
        head, _, value = part.partition(b"\r\n\r\n")
        part_headers = email.message.Message()
        for line in head.decode("utf-8", "replace").split("\r\n"):
            if ":" in line:
                key, _, val = line.partition(":")
                part_headers[key.strip()] = val.strip()
        name = part_headers.get_param("name", header="content-disposition")
        if name is not None:
            fields.append((str(name), part_headers.get_filename(), value))
    return fields


def mask_secrets(target):
    split = urlsplit(target)
    if not split.query:
        return target
    pairs = [(k, "***" if k == "password" else v) for k, v in parse_qsl(split.query, keep_blank_values=True)]
    return f"{split.path}?{urlencode(pairs)}"


def content_type_for(fmt, settings):
    name = fmt.lower()
    if name.startswith(("tabseparated", "tsv")):
        return "text/tab-separated-values; charset=UTF-8"
    if name.startswith("csv"):
        header = "present" if "withnames" in name else "absent"
        return f"text/csv; charset=UTF-8; header={header}"
    if name in NDJSON_FORMATS:
        if parse_bool(settings.get("output_format_json_array_of_rows", "0")):
            return "application/json; charset=UTF-8"
        return "application/x-ndjson; charset=UTF-8"
    if name.startswith("json"):
        return "application/json; charset=UTF-8"
    if name in BINARY_FORMATS:
        return "application/octet-stream"
    if name == "xml":
        return "application/xml; charset=UTF-8"
    if name in ("markdown", "md"):
        return "text/markdown; charset=UTF-8"
    if name == "prometheus":
        return "text/plain; version=0.0.4; charset=UTF-8"
    return TEXT_PLAIN


# --- HTTP front --------------------------------------------------------------------------

class Response:
    def __init__(self, status, body=b"", content_type=TEXT_PLAIN, headers=()):
        self.status = status
        self.body = body
        self.stream = None  # further body bytes, as produced (sent chunked), or None
        self.encode = None  # what encodes each of them
        self.headers = [("Content-Type", content_type), *headers]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    engine = None  # set by serve()
    password = ""

    # --- plumbing ---

    def handle_one_request(self):
        self.connection.settimeout(KEEP_ALIVE_TIMEOUT)
        super().handle_one_request()

    def log_message(self, format, *args):  # noqa: A002 - signature of the base class
        pass  # one line per request is written by _send

    def _send(self, response, started):
        keep_alive = not self.close_connection
        sent = self._headers_sent
        if sent:
            # Progress headers went first: the status line is out, and so are some headers.
            self._headers_buffer = []
        else:
            self.send_response_only(response.status)
            self.send_header("Date", self.date_time_string())
            self.send_header("Connection", "Keep-Alive" if keep_alive else "close")
        for name, value in response.headers:
            if name.lower() not in sent:
                self.send_header(name, value)
        if not sent:
            self.send_header("X-ClickHouse-Server-Display-Name", self.engine.display_name)
            if keep_alive:
                self.send_header("Keep-Alive", f"timeout={KEEP_ALIVE_TIMEOUT}, max=9999")
        if response.stream is not None:
            self._send_stream(response)
        else:
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            if self.command != "HEAD":
                try:
                    self.wfile.write(response.body)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client is gone (as a server, nothing more to do)
        elapsed_ms = (time.monotonic() - started) * 1000
        sys.stderr.write(f"{self.log_date_time_string()} {self.command} {mask_secrets(self.path)} "
                         f"{response.status} {elapsed_ms:.1f}ms\n")

    def _send_stream(self, response):
        """The body chunked, each part as the engine produces it.  An error after the
        start is written into the body, and the response ends without its last chunk, so
        that no client takes it for a whole result."""
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def chunk(data):
            if data:
                self.wfile.write(b"%X\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()

        try:
            if self.command == "HEAD":
                self.wfile.write(b"0\r\n\r\n")
                return
            chunk(response.body)
            for data in response.stream:
                chunk(response.encode(data))
            self.wfile.write(b"0\r\n\r\n")
        except ClickHouseError as err:
            self.close_connection = True
            try:
                chunk(response.encode((err.text(self.engine.version) + "\n").encode()))
            except (BrokenPipeError, ConnectionResetError):
                pass
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client is gone: the query is cancelled
        finally:
            response.stream.close()

    def _read_body(self):
        """The whole request body, or None when it has no length and is not chunked."""
        self.connection.settimeout(RECEIVE_TIMEOUT)
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline(65537).split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline(65537).strip():
                        pass  # trailer fields
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                if self.rfile.readline(3).strip():
                    raise ValueError("malformed chunk")
        length = self.headers.get("Content-Length")
        return None if length is None else self.rfile.read(int(length))

    def _progress_header(self, output_format, progress, headers, settings):
        """An X-ClickHouse-Progress header; the status line and the headers known before the
        query ends go first, as the server sends them (the status is then 200 whatever follows)."""
        lines = []
        if not self._headers_sent:
            self._headers_sent = {"date", "connection", "keep-alive", "x-clickhouse-server-display-name"}
            lines.append(f"{self.protocol_version} 200 OK")
            lines.append(f"Date: {self.date_time_string()}")
            lines.append("Connection: Keep-Alive")
            lines.append(f"Keep-Alive: timeout={KEEP_ALIVE_TIMEOUT}, max=9999")
            early = list(headers)
            if output_format is not None:
                early += [("Content-Type", content_type_for(output_format, dict(settings))),
                          ("X-ClickHouse-Format", output_format)]
            early.append(("X-ClickHouse-Server-Display-Name", self.engine.display_name))
            for name, value in early:
                lines.append(f"{name}: {value}")
                self._headers_sent.add(name.lower())
        lines.append("X-ClickHouse-Progress: " + json.dumps(progress, separators=(",", ":")))
        try:
            self.wfile.write(("\r\n".join(lines) + "\r\n").encode("latin-1", "replace"))
            self.wfile.flush()
        except OSError:
            pass  # the client is gone; the answer finds out

    def _client_gone(self):
        """Whether the client has closed its connection (it sends nothing while it waits for a response)."""
        sock = self.connection
        if isinstance(sock, ssl.SSLSocket):
            return False  # (no peeking under TLS)
        try:
            readable, _, _ = select.select([sock], [], [], 0)
            return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True

    def _error_response(self, err, encode=None, headers=()):
        body = (err.text(self.engine.version) + "\n").encode()
        status = next((status for status, names in STATUS_BY_ERROR.items() if err.name in names), 500)
        return Response(status, encode(body) if encode else body,
                        headers=[*headers, ("X-ClickHouse-Exception-Code", str(err.code))])

    # --- routing ---

    def do_GET(self):
        started = time.monotonic()
        self._headers_sent = set()  # (lower-case) names of headers sent with progress headers
        try:
            body = self._read_body()
        except (ValueError, OSError) as exc:
            self.close_connection = True
            response = self._error_response(
                self.engine.error("CANNOT_READ_ALL_DATA", f"Cannot read request body: {exc}"))
        else:
            try:
                response = self._route(body)
            except Exception as exc:  # a bug here must still produce an answer
                traceback.print_exc()
                self.close_connection = True
                response = self._error_response(
                    self.engine.error("STD_EXCEPTION", f"{type(exc).__name__}: {exc}"))
        self._send(response, started)

    do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_GET

    def _route(self, body):
        path = urlsplit(self.path).path
        has_params = "?" in self.path
        if self.command in ("GET", "HEAD") and not has_params and path in ("/", "/ping", "/replicas_status"):
            busy = self.engine.busy_for()
            if busy > self.busy_limit and path != "/":
                # This engine runs one query at a time: every other query waits for this one.
                return Response(503, (f"Engine busy: one query has run for {busy:.0f} s and every other query "
                                      f"waits for it ({self.engine.release} runs one query at a time).\n").encode())
            return Response(200, b"Ok.\n", "text/html; charset=UTF-8" if path == "/" else TEXT_PLAIN)
        if self.command == "OPTIONS":
            return Response(200)
        if self.command == "POST" or (self.command in ("GET", "HEAD") and has_params):
            return self._query(body)
        return Response(404, NOT_FOUND_TEXT.format(path=path).encode())

    # --- the query handler ---

    def _query(self, body):
        engine = self.engine
        if body is None:
            if self.command == "POST":
                return self._error_response(engine.error("HTTP_LENGTH_REQUIRED", (
                    "The Transfer-Encoding is not chunked and there is no Content-Length header "
                    "for a POST request")))
            body = b""
        url_params = parse_qsl(urlsplit(self.path).query, keep_blank_values=True, errors="replace")
        try:
            user = self._authenticate(url_params)
        except ClickHouseError as err:
            return self._error_response(err)
        # As the HTTP handler: a session is acquired after authentication, before the query id.
        named = None
        if any(name == "session_id" for name, _ in url_params):
            try:
                named = self.sessions.acquire(user, first_value(url_params, "session_id"),
                                              self.sessions.parse_timeout(url_params),
                                              first_value(url_params, "session_check", "") == "1")
            except ClickHouseError as err:
                return self._error_response(err)
        try:
            return self._query_in_session(body, url_params, named)
        finally:
            if named is not None:
                self.sessions.release(user, named, parse_bool(first_value(url_params, "close_session", "0")))

    def _query_in_session(self, body, url_params, named):
        engine = self.engine

        query_id = first_value(url_params, "query_id", self.headers.get("X-ClickHouse-Query-Id", ""))
        query_id = "".join(c for c in query_id if c >= " " and c != "\x7f") or str(uuid.uuid4())
        settings = self._settings(url_params)
        timezone = last_value(settings, "session_timezone") or engine.timezone
        headers = [("X-ClickHouse-Query-Id", query_id), ("X-ClickHouse-Timezone", timezone)]

        http_compression = None
        default_http_compression = "1" if engine.default_http_compression else "0"
        if parse_bool(last_value(settings, "enable_http_compression", default_http_compression)):
            http_compression = choose_response_encoding(self.headers.get("Accept-Encoding", ""))
        level_text = last_value(settings, "http_zlib_compression_level", "")
        level = int(level_text) if re.fullmatch(r"-?\d+", level_text) else 3  # the engine validates it
        native_compression = parse_bool(last_value(url_params, "compress", "0"))

        def encode(data):
            if native_compression:
                data = compress_blocks(data)
            if http_compression and data:
                data = HTTP_ENCODERS[http_compression](data, level)
            return data

        try:
            job = self._job(url_params, settings, body)
            # As the server, send the result as it is produced once it outgrows the buffer (at least
            # buffer_size bytes, 1 MiB), unless wait_end_of_query=1.  (Not with HTTP compression:
            # its encoders here take the whole body.)
            if (not http_compression and self.request_version != "HTTP/1.0"
                    and not parse_bool(first_value(url_params, "wait_end_of_query", "0"))):
                size = first_value(url_params, "buffer_size", "")
                job.stream_after = max(int(size) if size.isdigit() else 0, DBMS_DEFAULT_BUFFER_SIZE)
            if parse_bool(last_value(settings, "send_progress_in_http_headers", "0")):
                interval = last_value(settings, "http_headers_progress_interval_ms", "100")
                job.progress_interval = int(interval) / 1000 if interval.isdigit() else 0.1
                job.progress = lambda fmt, progress: self._progress_header(fmt, progress, headers, settings)
            result = engine.run(job, named, query_id, self._client_gone)
        except ClickHouseError as err:
            response = self._error_response(err, encode, headers)
        else:
            if result.output_format is None:
                response = Response(200, encode(result.data), headers=headers)
            else:
                content_type = content_type_for(result.output_format, dict(settings))
                response = Response(200, encode(result.data), content_type,
                                    [*headers, ("X-ClickHouse-Format", result.output_format)])
            if result.rest is not None:
                response.stream = result.rest
                response.encode = encode
            summary = {key: str(value) for key, value in result.summary.items()}
            response.headers.append(("X-ClickHouse-Summary", json.dumps(summary, separators=(",", ":"))))
        if http_compression and response.body:
            response.headers.append(("Content-Encoding", http_compression))
        if parse_bool(last_value(settings, "add_http_cors_header", "0")) and self.headers.get("Origin"):
            response.headers.append(("Access-Control-Allow-Origin", "*"))
        response.headers.append(("Access-Control-Expose-Headers", EXPOSED_HEADERS))
        return response

    def _authenticate(self, url_params):
        """Credentials checks of ClickHouse's authenticateUserByHTTP."""
        engine = self.engine
        user = self.headers.get("X-ClickHouse-User", "")
        password = self.headers.get("X-ClickHouse-Key", "")
        authorization = self.headers.get("Authorization")
        in_params = any(k in ("user", "password") for k, _ in url_params)

        def mixed(first, second):
            return engine.error("AUTHENTICATION_FAILED",
                                f"Invalid authentication: it is not allowed to use {first} and {second} simultaneously")

        if self.headers.get("X-ClickHouse-SSL-Certificate-Auth", "") == "on":
            raise engine.error("AUTHENTICATION_FAILED", (
                "Invalid authentication: SSL certificate authentication requires nonempty certificate's "
                "Common Name or Subject Alternative Name"))
        if user or password:
            source = "X-ClickHouse HTTP headers"
            if authorization is not None:
                raise mixed(source, "Authorization HTTP header")
            if in_params:
                raise mixed(source, "authentication via parameters")
        elif authorization is not None:
            source = "Authorization HTTP header"
            if in_params:
                raise mixed(source, "authentication via parameters")
            scheme, _, info = authorization.strip().partition(" ")
            if scheme.lower() != "basic":
                raise engine.error("AUTHENTICATION_FAILED",
                                   f"Invalid authentication: '{scheme}' HTTP Authorization scheme is not supported")
            try:
                user, _, password = base64.b64decode(info.strip()).decode().partition(":")
            except ValueError:
                raise engine.error("AUTHENTICATION_FAILED",
                                   "Invalid authentication: malformed Basic credentials") from None
        else:
            source = "authentication via parameters"
            user = first_value(url_params, "user", "default")
            password = first_value(url_params, "password", "")
        if not user:
            raise engine.error("AUTHENTICATION_FAILED", f"Got an empty user name from {source}")
        if user != "default" or not hmac.compare_digest(password.encode(), self.password.encode()):
            hint = DEFAULT_USER_PASSWORD_HINT if user == "default" else ""
            raise engine.error("AUTHENTICATION_FAILED", (
                f"{user}: Authentication failed: password is incorrect, or there is no user with such name.{hint}"))
        return user

    def _settings(self, url_params):
        """URL parameters that are settings, in order, then the header aliases."""
        multipart = self._is_multipart()
        settings = []
        for name, value in url_params:
            if not name or name in RESERVED_PARAMS or name.startswith(PARAM_PREFIX):
                continue
            if (multipart and name.endswith(EXTERNAL_TABLE_SUFFIXES) and name not in self.engine.setting_names
                    and name != "default_format"):  # the handler's own parameter before 26.x
                continue
            settings.append((name, value))
        for header, name in (("X-ClickHouse-Database", "database"), ("X-ClickHouse-Format", "default_format")):
            if self.headers.get(header):
                settings.append((name, self.headers[header]))
        return settings

    def _is_multipart(self):
        return self.headers.get("Content-Type", "").startswith("multipart/form-data")

    def _job(self, url_params, settings, body):
        engine = self.engine
        body = decode_request_body(engine, self.headers.get("Content-Encoding", ""), body)
        if parse_bool(last_value(url_params, "decompress", "0")):
            skip = last_value(settings, "http_native_compression_disable_checksumming_on_decompress", "0")
            try:
                body = decompress_blocks(body, verify_checksums=not parse_bool(skip))
            except BodyError as exc:
                raise engine.error(exc.name, exc.message) from None

        params = {}
        for name, value in url_params:
            if name.startswith(PARAM_PREFIX):
                params.setdefault(name[len(PARAM_PREFIX):], value)  # the first value wins
        external_tables = []
        if self._is_multipart():
            # The query comes from the form (and URL); file parts are external tables.
            try:
                fields = parse_multipart(self.headers["Content-Type"], body)
            except ValueError as exc:
                raise engine.error("BAD_ARGUMENTS", f"Cannot parse multipart/form-data: {exc}") from None
            form = [(name, value.decode("utf-8", "replace")) for name, filename, value in fields if filename is None]
            all_params = url_params + form
            sql = "".join(v for k, v in all_params if k == "query").encode()
            for name, value in form:
                if name.startswith(PARAM_PREFIX):
                    params.setdefault(name[len(PARAM_PREFIX):], value)
            for name, filename, data in fields:
                if filename is not None:
                    external_tables.append(self._external_table(all_params, name, data))
        else:
            url_query = first_value(url_params, "query", "")
            sql = (url_query + "\n").encode() + body if url_query else body
        return QueryJob(sql, params, settings, self.command != "POST", external_tables)

    def _external_table(self, params, name, data):
        structure = first_value(params, f"{name}_structure")
        types = first_value(params, f"{name}_types")
        if structure is None and types is not None:
            structure = ", ".join(f"_{i} {t.strip()}" for i, t in enumerate(types.split(","), 1))
        if structure is None:
            raise self.engine.error("BAD_ARGUMENTS", (
                f"Neither structure nor types have not been provided for external table {name}. "
                f"Use fields {name}_structure or {name}_types to do so."))
        return ExternalTable(name, structure, first_value(params, f"{name}_format", "TabSeparated"), data)


# --- process --------------------------------------------------------------------------------

def watch_parent(pid, stop):
    """Call stop() once process `pid` has exited (or is a zombie)."""
    while True:
        time.sleep(1)
        try:
            os.kill(pid, 0)
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                    break
        except ProcessLookupError:
            break
        except (PermissionError, FileNotFoundError):
            continue
    sys.stderr.write(f"parent process {pid} is gone, shutting down\n")
    stop()


def serve(port, data_dir, password, parent_pid, tls=None, busy_limit=60):
    try:
        server = ThreadingHTTPServer((HOST, port), Handler)
    except OSError as exc:
        sys.stderr.write(f"cannot listen on {HOST}:{port}: {exc.strerror}\n")
        return 1
    scheme = "http"
    if tls:
        # HTTPS, as ClickHouse's https_port: the handshake runs in the request's
        # thread (on first read), so a slow client never blocks accept().
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*tls)
        server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
        scheme = "https"
    server.daemon_threads = True
    # Engines before 26.x read an INSERT's data from standard input when the
    # statement carries none: give them nothing to read.
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    Handler.engine = Engine(data_dir)
    Handler.sessions = SessionStore(Handler.engine)
    Handler.busy_limit = busy_limit
    Handler.password = password

    def stop(*_):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if parent_pid:
        threading.Thread(target=watch_parent, args=(parent_pid, stop), daemon=True).start()
    sys.stderr.write(f"ClickHouse {Handler.engine.version} ({Handler.engine.release}) on {scheme}://{HOST}:{port}/, "
                     f"data in {data_dir}\n")
    sys.stderr.flush()
    try:
        server.serve_forever()
    finally:
        server.server_close()
        # A query still running (its client gone, not cancelled) would hold the engine's
        # shutdown up: it gets SHUTDOWN_GRACE seconds, then the process ends regardless.
        def overdue():
            sys.stderr.write(f"the engine did not shut down within {SHUTDOWN_GRACE} s; exiting\n")
            sys.stderr.flush()
            os._exit(0)

        timer = threading.Timer(SHUTDOWN_GRACE, overdue)
        timer.daemon = True
        timer.start()
        Handler.sessions.close_all()
        Handler.engine.close()
        timer.cancel()
    sys.stderr.write("stopped\n")
    return 0


def main():
    parser = argparse.ArgumentParser(
        description="Local ClickHouse HTTP server backed by chdb. The password of the `default` "
                    "user is read from RVBBIT_DEV_CLICKHOUSE_PASSWORD (unset or empty: no password), "
                    "so that it never shows in the process list.")
    parser.add_argument("--port", type=int, default=8123)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--parent-pid", type=int, default=0, help="exit when this process is gone")
    parser.add_argument("--tls-cert", help="serve HTTPS with this PEM certificate (needs --tls-key)")
    parser.add_argument("--tls-key", help="PEM private key of --tls-cert")
    parser.add_argument("--busy-limit", type=float, default=60,
                        help="engines that run one query at a time (chdb 1.x-3.x): /ping and /replicas_status "
                             "answer 503 while one query has held the engine longer than this (seconds)")
    args = parser.parse_args()
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key go together")
    password = os.environ.get("RVBBIT_DEV_CLICKHOUSE_PASSWORD", "")
    tls = (args.tls_cert, args.tls_key) if args.tls_cert else None
    return serve(args.port, os.path.abspath(args.data_dir), password, args.parent_pid, tls, args.busy_limit)


if __name__ == "__main__":
    sys.exit(main())
