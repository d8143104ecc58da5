"""Local ClickHouse HTTP server for development and tests.

The SQL engine is the real ClickHouse engine, embedded in-process through the
`chdb` module of the `chdb-core` package.  This file only implements the HTTP
front: it follows ClickHouse's own HTTP handler (URL `query` + body, settings
and `param_*` URL parameters, multipart forms, authentication, native and
HTTP compression, error codes and statuses, response headers) closely enough
that ClickHouse clients such as the Rust `clickhouse` crate and curl work
against it unchanged.

How requests map onto the engine:

* Every request runs on a fresh engine connection to the data directory
  (connections are cheap, and each has its own session state).  URL settings
  are applied with `SET name = '<value>'` on that connection, so they apply to
  this one query and vanish with the connection; the engine itself validates
  names and values (UNKNOWN_SETTING, parse errors, readonly rules).  HTTP
  sessions (`session_id`) are accepted but not kept: each request starts from
  a clean session.
* `param_<name>` values go to the engine's `params=` argument; they are never
  spliced into the SQL text.
* The statement is what ClickHouse would parse: the URL `query`, a line break
  and the (decompressed) request body.  For an INSERT with inline data, the
  data starts where ClickHouse's INSERT parser starts it (after `FORMAT <name>`
  and one line break, or at `VALUES`); the statement head and the data bytes
  are handed to the engine's streaming insert (`send_insert`), which is
  binary-safe.  (The engine's plain `query()` would end inline data at the
  first empty line, as its multi-statement client does.)  Query parameters of
  such an INSERT are set with `SET param_<name> = '<value>'`, since the
  streaming insert takes no `params=`.
* All engine calls are serialised by one lock.
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
import signal
import ssl
import struct
import sys
import threading
import time
import traceback
import uuid
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlencode, urlsplit

import brotli
import lz4.block
import lz4.frame
import zstandard
from clickhouse_cityhash.cityhash import CityHash128

HOST = "127.0.0.1"
KEEP_ALIVE_TIMEOUT = 10  # seconds a connection may sit idle between requests
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
_ENGINE_ERROR = re.compile(r"Code: (\d+)\. DB::Exception: ")
_FORMAT_CLAUSE = re.compile(r"\nFORMAT (\S+)(?=\n|$)")
_SCOPE_OF_CHECK = ": In scope SELECT formatQuery("


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


def split_insert(sql):
    """(head, format, data) of an INSERT with inline data, else None.

    Follows ClickHouse's INSERT parser: inline data follows `FORMAT <name>`
    (after blanks and at most one line break) or starts at the first token
    after `VALUES`.  INSERT ... SELECT has no inline data.
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
        elif depth == 0 and token.lastgroup == "word" and previous not in (b"INTO", b"TABLE", b"FUNCTION", b"."):
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


def quote_string(value):
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def quote_identifier(name):
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def escape_parameter(value):
    """Query parameter values are read in TabSeparated (escaped) form."""
    return (value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
            .replace("\r", "\\r").replace("\0", "\\0"))


class QueryResult:
    def __init__(self, data, output_format, result, elapsed_ns):
        self.data = data
        self.output_format = output_format  # None for statements without output
        self.summary = {
            "read_rows": result.storage_rows_read(),
            "read_bytes": result.storage_bytes_read(),
            "written_rows": result.rows_written(),
            "written_bytes": result.bytes_written(),
            "total_rows_to_read": result.storage_rows_read(),
            "result_rows": result.rows_read(),
            "result_bytes": result.bytes_read(),
            "elapsed_ns": elapsed_ns,
        }


class Engine:
    """The embedded ClickHouse engine bound to one data directory."""

    def __init__(self, data_dir):
        # The engine drops scratch files (tmp/) into the working directory when
        # imported, and resolves relative file() paths against the working
        # directory at query time: keep the former in the data directory and
        # make the latter user_files/, like a server's user_files_path.
        user_files = os.path.join(data_dir, "user_files")
        os.makedirs(user_files, exist_ok=True)
        os.chdir(data_dir)
        from chdb import _chdb  # imported here, after the chdir
        os.chdir(user_files)
        self._connect = _chdb.connect
        # `implicit_select` is on in the embedded engine but off in a server.
        self._conn_str = f"{data_dir}?implicit_select=0"
        self._lock = threading.Lock()
        # Held for the life of the process: the engine shuts down when its
        # last connection closes.
        self._anchor = self._connect(self._conn_str)
        info = self._scalar_rows("SELECT version(), fqdn(), timezone()")[0]
        self.version, self.display_name, self.timezone = info
        self.error_names = {int(code): name for code, name in self._scalar_rows(
            "SELECT number, errorCodeToName(number) FROM numbers(10000)"
            " WHERE errorCodeToName(number) != ''")}
        self.error_codes = {name: code for code, name in self.error_names.items()}
        self.setting_names = {row[0] for row in self._scalar_rows("SELECT name FROM system.settings")}
        self.default_http_compression = self._scalar_rows(
            "SELECT value FROM system.settings WHERE name = 'enable_http_compression'")[0][0] in ("1", "true")

    def _scalar_rows(self, sql):
        raw = self._anchor.query(sql, "TabSeparatedRaw").bytes().decode()
        return [line.split("\t") for line in raw.splitlines()]

    def close(self):
        with self._lock:
            self._anchor.close()

    def error(self, name, message):
        return ClickHouseError(self.error_codes[name], name, message)

    def from_engine(self, exc):
        """Turn an engine exception into a ClickHouseError.

        The engine's text already reads like ClickHouse's, but errors raised
        while applying settings come back nested ("Code: N. DB::Exception:
        Code: N. ... (version V). (NAME)"): unwrap them.
        """
        text = str(exc).strip()
        match = _ENGINE_ERROR.match(text)
        if not match:
            return self.error("UNKNOWN_EXCEPTION", text)
        code = int(match.group(1))
        name = self.error_names.get(code, "UNKNOWN_EXCEPTION")
        prefix = match.group(0)
        body = text[len(prefix):]
        while body.startswith(prefix):
            body = body[len(prefix):]
        version_suffix = f" (version {self.version})"
        if body.endswith(version_suffix):
            body = body[:-len(version_suffix)]
        nested_suffix = f"{version_suffix}. ({name})"
        while body.endswith(nested_suffix):
            body = body[:-len(nested_suffix)]
        own_suffix = f" ({name})"
        if body.endswith(own_suffix):
            body = body[:-len(own_suffix)]
        return ClickHouseError(code, name, body)

    def run(self, job):
        with self._lock:
            conn = self._connect(self._conn_str)
            try:
                return self._run(conn, job)
            finally:
                conn.close()

    def _query(self, conn, sql, fmt="TabSeparated", params=None):
        try:
            return conn.query(sql, fmt, params=params or {})
        except RuntimeError as exc:
            raise self.from_engine(exc) from None

    def _normalized(self, conn, sql):
        """The engine's own parse of a single statement (formatQuery).

        Raises the parse error (empty query, multi-statements, syntax) the way
        the server's parser reports it, without the wrapper's scope.
        """
        try:
            text = sql.decode("utf-8")
        except UnicodeDecodeError:
            return None
        try:
            res = conn.query("SELECT formatQuery({q:String})", "RawBLOB",
                             params={"q": escape_parameter(text)})
        except RuntimeError as exc:
            err = self.from_engine(exc)
            cut = err.message.rfind(_SCOPE_OF_CHECK)
            if cut >= 0:
                err.message = err.message[:cut]
            raise err from None
        return res.bytes().decode("utf-8", "replace")

    def _analyze(self, conn, sql):
        """Reject what the server's parser rejects; find the output format.

        Returns the normalized statement, or None for an INSERT or a statement
        that cannot be normalized.
        """
        statements = conn.classify_query(sql)["statement_count"]
        is_insert = leading_keyword(sql) == "INSERT"
        if statements == 1 and is_insert:
            return None
        try:
            normalized = self._normalized(conn, sql)
        except ClickHouseError:
            if statements == 1:
                return None  # let the execution report its own error
            raise
        if statements > 1:
            # Both parsers of the engine should agree; never run two statements.
            raise self.error("SYNTAX_ERROR", "Multi-statements are not allowed")
        if normalized and "\nINTO OUTFILE " in normalized:
            raise self.error("INTO_OUTFILE_NOT_ALLOWED", "INTO OUTFILE is not allowed")
        return None if is_insert else normalized

    def _insert(self, conn, head, fmt, data):
        try:
            inserter = conn.send_insert(head, fmt)
        except RuntimeError as exc:
            raise self.from_engine(exc) from None
        try:
            conn.insert_append(inserter, data)
            return conn.insert_done(inserter)
        except RuntimeError as exc:
            conn.insert_cancel(inserter)
            raise self.from_engine(exc) from None

    def _run(self, conn, job):
        insert = split_insert(job.sql) if leading_keyword(job.sql) == "INSERT" else None
        normalized = None if insert else self._analyze(conn, job.sql)
        for table in job.external_tables:
            self._query(conn, f"CREATE TEMPORARY TABLE {quote_identifier(table.name)} ({table.structure})")
            self._insert(conn, f"INSERT INTO {quote_identifier(table.name)}", table.format, table.data)
        if job.readonly:
            self._query(conn, "SET readonly = 2")
        for name, value in job.settings:
            self._query(conn, f"SET {quote_identifier(name)} = {quote_string(value)}")

        settings = dict(job.settings)
        default_format = settings.get("default_format") or "TabSeparated"
        started = time.monotonic_ns()
        if insert:
            for name, value in job.params.items():
                self._query(conn, f"SET {quote_identifier(PARAM_PREFIX + name)} = {quote_string(value)}")
            result = self._insert(conn, *insert)
        else:
            result = self._query(conn, job.sql, default_format, job.params)
        elapsed_ns = time.monotonic_ns() - started

        output_format = None
        if normalized is not None and leading_keyword(normalized.encode()) in OUTPUT_STATEMENTS:
            clause = _FORMAT_CLAUSE.findall(normalized)
            # The engine lets the `output_format`/`format` settings override
            # the FORMAT clause, which overrides `default_format`.
            output_format = (settings.get("output_format") or settings.get("format")
                             or (clause[-1].strip("`") if clause else default_format))
        return QueryResult(result.bytes(), output_format, result, elapsed_ns)


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


# --- ClickHouse compressed blocks (compress=1 / decompress=1) --------------------

CHECKSUM_SIZE = 16
BLOCK_HEADER = struct.Struct("<BII")  # method, compressed size incl. header, raw size
METHOD_NONE, METHOD_LZ4, METHOD_ZSTD = 0x02, 0x82, 0x90
COMPRESS_BLOCK_SIZE = 1 << 20
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


def decompress_blocks(engine, data, verify_checksums):
    out = []
    pos = 0
    while pos < len(data):
        if len(data) - pos < CHECKSUM_SIZE + BLOCK_HEADER.size:
            raise engine.error("CANNOT_READ_ALL_DATA", "Cannot read all data")
        checksum = data[pos:pos + CHECKSUM_SIZE]
        method, size, raw_size = BLOCK_HEADER.unpack_from(data, pos + CHECKSUM_SIZE)
        if size < BLOCK_HEADER.size or size > (1 << 30):
            raise engine.error("TOO_LARGE_SIZE_COMPRESSED",
                               f"Too large size_compressed_without_checksum: {size}. Most likely corrupted data.")
        block = data[pos + CHECKSUM_SIZE:pos + CHECKSUM_SIZE + size]
        if len(block) < size:
            raise engine.error("CANNOT_READ_ALL_DATA", "Cannot read all data")
        if verify_checksums and block_checksum(block) != checksum:
            raise engine.error("CHECKSUM_DOESNT_MATCH", (
                f"Checksum doesn't match: corrupted data. Reference: {checksum[::-1].hex()}. "
                f"Actual: {block_checksum(block)[::-1].hex()}. Size of compressed block: {size}"))
        payload = block[BLOCK_HEADER.size:]
        try:
            if method == METHOD_LZ4:
                out.append(lz4.block.decompress(payload, uncompressed_size=raw_size))
            elif method == METHOD_ZSTD:
                out.append(zstandard.ZstdDecompressor().decompress(payload, max_output_size=raw_size))
            elif method == METHOD_NONE:
                out.append(payload)
            else:
                raise engine.error("UNKNOWN_COMPRESSION_METHOD", f"Unknown compression method: {method}")
        except (lz4.block.LZ4BlockError, zstandard.ZstdError) as exc:
            raise engine.error("CANNOT_DECOMPRESS", f"Cannot decompress block: {exc}") from None
        pos += CHECKSUM_SIZE + size
    return b"".join(out)


# --- HTTP Content-Encoding -----------------------------------------------------------

def _zstd_decompress(data):
    with zstandard.ZstdDecompressor().stream_reader(data, read_across_frames=True) as reader:
        return reader.read()


# name -> (aliases accepted in Content-Encoding, encode(data, level), decode, error name)
HTTP_CODECS = {
    "zstd": (("zstd", "zst"), lambda d, lvl: zstandard.ZstdCompressor(level=lvl).compress(d),
             _zstd_decompress, "ZSTD_DECODER_FAILED"),
    "br": (("br", "brotli"), lambda d, lvl: brotli.compress(d, quality=min(max(lvl, 0), 11)),
           brotli.decompress, "BROTLI_READ_FAILED"),
    "lz4": (("lz4",), lambda d, lvl: lz4.frame.compress(d, compression_level=lvl),
            lz4.frame.decompress, "LZ4_DECODER_FAILED"),
    "gzip": (("gzip", "gz"), lambda d, lvl: gzip.compress(d, compresslevel=min(max(lvl, 0), 9), mtime=0),
             gzip.decompress, "ZLIB_INFLATE_FAILED"),
    "deflate": (("deflate",), lambda d, lvl: zlib.compress(d, min(max(lvl, 0), 9)),
                zlib.decompress, "ZLIB_INFLATE_FAILED"),
    "xz": (("xz", "lzma"), lambda d, lvl: lzma.compress(d, preset=min(max(lvl, 0), 9)),
           lzma.decompress, "LZMA_STREAM_DECODER_FAILED"),
    "bz2": (("bz2", "bzip2"), lambda d, lvl: bz2.compress(d, min(max(lvl, 1), 9)),
            bz2.decompress, "BZIP2_STREAM_DECODER_FAILED"),
}
# ClickHouse's preference when several are accepted (snappy is not offered here).
HTTP_PREFERENCE = ("zstd", "br", "lz4", "gzip", "deflate", "xz", "bz2")


def choose_response_encoding(accept_encoding):
    # Substring matching, exactly like ClickHouse's chooseHTTPCompressionMethod.
    for name in HTTP_PREFERENCE:
        if name in accept_encoding:
            return name
    return None


def decode_request_body(engine, content_encoding, data):
    hint = content_encoding.strip().lower()
    if hint in ("", "none", "auto", "identity"):
        return data
    for aliases, _, decode, error_name in HTTP_CODECS.values():
        if hint in aliases:
            try:
                return decode(data)
            except Exception as exc:  # each codec raises its own error type
                raise engine.error(error_name, f"Cannot decompress request body ({hint}): {exc}") from None
    raise engine.error("BAD_ARGUMENTS", (
        f"Unknown compression method '{content_encoding}'. Only 'auto', 'none', 'gzip', 'deflate', "
        "'br', 'xz', 'zstd', 'lz4', 'bz2', 'snappy' are supported as compression methods"))


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
        self.send_response_only(response.status)
        self.send_header("Date", self.date_time_string())
        self.send_header("Connection", "Keep-Alive" if keep_alive else "close")
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("X-ClickHouse-Server-Display-Name", self.engine.display_name)
        if keep_alive:
            self.send_header("Keep-Alive", f"timeout={KEEP_ALIVE_TIMEOUT}, max=9999")
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)
        elapsed_ms = (time.monotonic() - started) * 1000
        sys.stderr.write(f"{self.log_date_time_string()} {self.command} {mask_secrets(self.path)} "
                         f"{response.status} {elapsed_ms:.1f}ms\n")

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

    def _error_response(self, err, encode=None, headers=()):
        body = (err.text(self.engine.version) + "\n").encode()
        status = next((status for status, names in STATUS_BY_ERROR.items() if err.name in names), 500)
        return Response(status, encode(body) if encode else body,
                        headers=[*headers, ("X-ClickHouse-Exception-Code", str(err.code))])

    # --- routing ---

    def do_GET(self):
        started = time.monotonic()
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
            self._authenticate(url_params)
        except ClickHouseError as err:
            return self._error_response(err)

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
                data = HTTP_CODECS[http_compression][1](data, level)
            return data

        try:
            result = engine.run(self._job(url_params, settings, body))
        except ClickHouseError as err:
            response = self._error_response(err, encode, headers)
        else:
            if result.output_format is None:
                response = Response(200, encode(result.data), headers=headers)
            else:
                content_type = content_type_for(result.output_format, dict(settings))
                response = Response(200, encode(result.data), content_type,
                                    [*headers, ("X-ClickHouse-Format", result.output_format)])
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

    def _settings(self, url_params):
        """URL parameters that are settings, in order, then the header aliases."""
        multipart = self._is_multipart()
        settings = []
        for name, value in url_params:
            if not name or name in RESERVED_PARAMS or name.startswith(PARAM_PREFIX):
                continue
            if multipart and name.endswith(EXTERNAL_TABLE_SUFFIXES) and name not in self.engine.setting_names:
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
            verify = not parse_bool(skip)
            body = decompress_blocks(engine, body, verify)

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


def serve(port, data_dir, password, parent_pid, tls=None):
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
    Handler.engine = Engine(data_dir)
    Handler.password = password

    def stop(*_):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if parent_pid:
        threading.Thread(target=watch_parent, args=(parent_pid, stop), daemon=True).start()
    sys.stderr.write(f"ClickHouse {Handler.engine.version} (chdb) on {scheme}://{HOST}:{port}/, data in {data_dir}\n")
    sys.stderr.flush()
    try:
        server.serve_forever()
    finally:
        server.server_close()
        Handler.engine.close()
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
    args = parser.parse_args()
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key go together")
    password = os.environ.get("RVBBIT_DEV_CLICKHOUSE_PASSWORD", "")
    tls = (args.tls_cert, args.tls_key) if args.tls_cert else None
    return serve(args.port, os.path.abspath(args.data_dir), password, args.parent_pid, tls)


if __name__ == "__main__":
    sys.exit(main())
