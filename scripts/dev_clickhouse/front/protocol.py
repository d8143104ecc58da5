"""ClickHouse's HTTP interface: Handler answers one request after another on a connection.

Parsing a request (URL, headers, authentication, settings, `param_*` values, multipart
forms and external tables), routing (/ping, /replicas_status, queries), and answering
(response headers, X-ClickHouse-Summary and progress headers, streamed bodies, error
bodies and the HTTP status of each error name).  The statement itself goes to
execution.Engine as a QueryJob; body codecs are in compression.py.
"""

import base64
import email.message
import random
import hmac
import json
import re
import select
import socket
import ssl
import sys
import time
import traceback
import uuid
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qsl, urlencode, urlsplit

from .compression import (
    BodyError,
    choose_response_encoding,
    compress_blocks,
    DBMS_DEFAULT_BUFFER_SIZE,
    decode_request_body,
    decompress_blocks,
    HTTP_ENCODERS,
    StreamEncoder,
)
from .engines.base import Ending
from .errors import ClickHouseError
from .execution import ExternalTable, QueryJob
from .params import first_value, last_value, parse_bool
from .sql import PARAM_PREFIX


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
TEXT_PLAIN = "text/plain; charset=UTF-8"
EXPOSED_HEADERS = ("X-ClickHouse-Query-Id,X-ClickHouse-Summary,X-ClickHouse-Server-Display-Name,"
                   "X-ClickHouse-Format,X-ClickHouse-Timezone,X-ClickHouse-Exception-Code")
# Since 25.11 a server names a random tag in every query's response (X-ClickHouse-Exception-Tag)
# and frames an error that comes after the start of the body with it, so that a client can
# tell the error from the rows: "\r\n__exception__\r\n<tag>\r\n<text>\n<length of text and
# newline> <tag>\r\n__exception__\r\n" (the frame the official clients parse: clickhouse-rs
# 0.15 `extract_exception_new`, clickhouse-connect 1.12 `extract_exception_with_tag`).
EXCEPTION_TAG_SINCE = (25, 11)
EXCEPTION_MARKER = b"__exception__"
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


def exception_tag():
    """A response's exception tag, as a server makes it: 16 random lowercase letters."""
    return "".join(random.choices("abcdefghijklmnopqrstuvwxyz", k=16))


def stream_error(text, headers):
    """The bytes that carry an error after the start of a response's body: its text and a
    newline, framed with the response's exception tag where it has one (25.11 and later)."""
    message = (text + "\n").encode()
    tag = next((value for name, value in headers if name == "X-ClickHouse-Exception-Tag"), None)
    if tag is None:
        return message
    tag = tag.encode()
    return (b"\r\n" + EXCEPTION_MARKER + b"\r\n" + tag + b"\r\n" + message
            + b"%d " % len(message) + tag + b"\r\n" + EXCEPTION_MARKER + b"\r\n")


class Response:
    def __init__(self, status, body=b"", content_type=TEXT_PLAIN, headers=()):
        self.status = status
        self.body = body
        self.stream = None  # further body bytes, as produced (sent chunked), or None
        self.encode = None  # what encodes each of them
        self.finish = None  # what ends their encoding (the last bytes of a compressed stream), or None
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
        if self.command == "HEAD" and response.stream is not None:
            # No body: whatever the result holds (the query, its session) is free before the answer is out.
            response.stream.close()
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
        """The body chunked, each part as the engine produces it (and, with HTTP compression,
        as the compressor hands it on).  An error after the start is written into the body
        (and the compressed stream is ended after it), and the response ends without its
        last chunk, so that no client takes it for a whole result."""
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
            if response.finish is not None:
                chunk(response.finish())
            self.wfile.write(b"0\r\n\r\n")
        except ClickHouseError as err:
            self.close_connection = True
            try:
                chunk(response.encode(stream_error(err.text(self.engine.version), response.headers)))
                if response.finish is not None:
                    chunk(response.finish())
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
        if named is None:
            return self._query_in_session(body, url_params, named)
        close = parse_bool(first_value(url_params, "close_session", "0"))
        try:
            response = self._query_in_session(body, url_params, named)
        except BaseException:
            self.sessions.release(user, named, close)
            raise
        if response.stream is None:
            self.sessions.release(user, named, close)
        else:  # the session stays locked while its result is sent, as in a server
            response.stream = Ending(response.stream, lambda: self.sessions.release(user, named, close))
        return response

    def _query_in_session(self, body, url_params, named):
        engine = self.engine

        query_id = first_value(url_params, "query_id", self.headers.get("X-ClickHouse-Query-Id", ""))
        query_id = "".join(c for c in query_id if c >= " " and c != "\x7f") or str(uuid.uuid4())
        settings = self._settings(url_params)
        timezone = last_value(settings, "session_timezone") or engine.timezone
        headers = [("X-ClickHouse-Query-Id", query_id), ("X-ClickHouse-Timezone", timezone)]
        if engine.version_tuple >= EXCEPTION_TAG_SINCE:
            headers.append(("X-ClickHouse-Exception-Tag", exception_tag()))

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
            # buffer_size bytes, 1 MiB), unless wait_end_of_query=1.
            if (self.request_version != "HTTP/1.0"
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
                if http_compression:
                    # One compressed stream across the parts (the held-back start, then the rest).
                    streamer = StreamEncoder(http_compression, level)

                    def encode_part(data):
                        return streamer.encode(compress_blocks(data) if native_compression else data)

                    response.body = encode_part(result.data)
                    response.encode = encode_part
                    response.finish = streamer.finish
            summary = {key: str(value) for key, value in result.summary.items()}
            response.headers.append(("X-ClickHouse-Summary", json.dumps(summary, separators=(",", ":"))))
        if http_compression and (response.body or response.stream is not None):
            response.headers.append(("Content-Encoding", http_compression))
        if parse_bool(last_value(settings, "add_http_cors_header", "0")) and self.headers.get("Origin"):
            response.headers.append(("Access-Control-Allow-Origin", "*"))
        exposed = EXPOSED_HEADERS
        if engine.version_tuple >= EXCEPTION_TAG_SINCE:
            exposed += ",X-ClickHouse-Exception-Tag"
        response.headers.append(("Access-Control-Expose-Headers", exposed))
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
