"""Tests of the local ClickHouse HTTP server (scripts/dev-clickhouse).

Run with the virtualenv's Python (the one scripts/dev-clickhouse installs):
    .dev/venv/bin/python scripts/dev_clickhouse/test_server.py
    .dev/venv-23.10/bin/python scripts/dev_clickhouse/test_server.py --engine 23.10
(pytest collects the same tests; the engine then comes from the variable
RVBBIT_DEV_CLICKHOUSE_ENGINE.)  Without an engine the servers run in this
Python's own virtualenv; with one, in that engine's virtualenv.  Servers are
started through `scripts/dev-clickhouse serve --parent-pid <this process>`, on
free ports and temporary data directories, so none outlives the test run.
"""

import base64
import brotli
import bz2
import gzip
import http.client
import json
import lzma
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse
import uuid
import zlib

import lz4.block
import lz4.frame
import zstandard
from clickhouse_cityhash.cityhash import CityHash128

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "dev-clickhouse")
ERROR_BODY = re.compile(r"^Code: (\d+)\. DB::Exception: .*\((\w+)\) \(version \d+(\.\d+)+\)\n$", re.S)
# The ClickHouse version to test (scripts/dev-clickhouse --engine), or None:
# the engine of this Python's virtualenv.
ENGINE = os.environ.get("RVBBIT_DEV_CLICKHOUSE_ENGINE") or None


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """A server process started with `dev-clickhouse serve`."""

    def __init__(self, data_dir, password="", parent_pid=None, extra_args=()):
        self.port = free_port()
        self.data_dir = data_dir
        self.log_path = os.path.join(os.path.dirname(data_dir), f"server-{self.port}.log")
        env = dict(os.environ, RVBBIT_DEV_CLICKHOUSE_PASSWORD=password)
        engine = ["--engine", ENGINE] if ENGINE else ["--venv", sys.prefix]
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [SCRIPT, "serve", *engine, "--port", str(self.port), "--data-dir", data_dir,
                 "--parent-pid", str(parent_pid or os.getpid()), *extra_args],
                env=env, stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + 60
        while True:
            try:
                if self.request("GET", "/ping")[0] == 200:
                    return
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("server did not start: " + self.log())
            time.sleep(0.1)

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=20)

    def log(self):
        with open(self.log_path, encoding="utf-8", errors="replace") as log:
            return log.read()

    def connection(self):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def request(self, method, path, body=None, headers=None, connection=None):
        conn = connection or self.connection()
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            if connection is None:
                conn.close()

    def query(self, sql, method="POST", headers=None, **params):
        path = "/?" + urllib.parse.urlencode(params) if params else "/"
        return self.request(method, path, sql.encode() if isinstance(sql, str) else sql, headers)

    def ok(self, sql, **params):
        status, _, body = self.query(sql, **params)
        assert status == 200, body
        return body

    def version(self):
        return tuple(int(part) for part in self.ok("SELECT version()").decode().split(".")[:2])


def native_compress(data, corrupt=False):
    """One ClickHouse compressed block: checksum, method 0x82 (LZ4), sizes, LZ4 block."""
    payload = lz4.block.compress(data, store_size=False)
    block = struct.pack("<BII", 0x82, 9 + len(payload), len(data)) + payload
    value = CityHash128(block)
    checksum = struct.pack("<QQ", value >> 64, value & ((1 << 64) - 1))
    if corrupt:
        checksum = bytes([checksum[0] ^ 1]) + checksum[1:]
    return checksum + block


def native_decompress(data):
    out, pos = [], 0
    while pos < len(data):
        checksum = data[pos:pos + 16]
        method, size, raw_size = struct.unpack_from("<BII", data, pos + 16)
        block = data[pos + 16:pos + 16 + size]
        value = CityHash128(block)
        assert checksum == struct.pack("<QQ", value >> 64, value & ((1 << 64) - 1)), "bad checksum"
        assert method == 0x82
        out.append(lz4.block.decompress(block[9:], uncompressed_size=raw_size))
        pos += 16 + size
    return b"".join(out)


def native_block(data, method=0x82):
    """One ClickHouse compressed block of `data`: LZ4 (0x82) or ZSTD (0x90)."""
    if method == 0x82:
        payload = lz4.block.compress(data, store_size=False)
    else:
        payload = zstandard.ZstdCompressor().compress(data)
    block = struct.pack("<BII", method, 9 + len(payload), len(data)) + payload
    value = CityHash128(block)
    return struct.pack("<QQ", value >> 64, value & ((1 << 64) - 1)) + block


def hadoop_snappy(data, repeat=0):
    """`data` in Hadoop's snappy framing: one block of one raw snappy chunk, made of
    literals (uncompressed but valid) and then `repeat` bytes copied from `len(data)`
    bytes back (copies that overlap their own output when repeat > len(data))."""
    total = size = len(data) + repeat
    raw = bytearray()
    while True:  # varint of the uncompressed size
        raw.append((size & 0x7F) | (0x80 if size > 0x7F else 0))
        size >>= 7
        if not size:
            break
    for start in range(0, len(data), 1 << 16):
        chunk = data[start:start + (1 << 16)]
        raw += bytes([61 << 2]) + (len(chunk) - 1).to_bytes(2, "little") + chunk
    while repeat:
        length = min(repeat, 64)
        raw += bytes([(length - 1) << 2 | 2]) + len(data).to_bytes(2, "little")
        repeat -= length
    return struct.pack(">II", total, len(raw)) + raw


def row_binary_string(value):
    out = bytearray()
    length = len(value)
    while True:  # LEB128 length
        byte = length & 0x7F
        length >>= 7
        out.append(byte | (0x80 if length else 0))
        if not length:
            return bytes(out) + value


class ServerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="dev-clickhouse-test-")
        cls.server = Server(os.path.join(cls.tmp, "data"))
        cls.version = cls.server.version()
        sys.stderr.write(f"ClickHouse {'.'.join(map(str, cls.version))} "
                         f"({cls.server.ok('SELECT version()').decode().strip()}) ")

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def assert_error(self, response, status, code, name):
        got_status, headers, body = response
        self.assertEqual(got_status, status, body)
        self.assertEqual(headers.get("X-ClickHouse-Exception-Code"), str(code))
        match = ERROR_BODY.match(body.decode())
        self.assertIsNotNone(match, body)
        self.assertEqual((int(match.group(1)), match.group(2)), (code, name))
        return body.decode()

    # --- basics ---

    def test_ping_and_root(self):
        for path in ("/ping", "/", "/replicas_status"):
            status, _, body = self.server.request("GET", path)
            self.assertEqual((status, body), (200, b"Ok.\n"))
        status, _, body = self.server.request("GET", "/nowhere")
        self.assertEqual(status, 404)
        self.assertTrue(body.startswith(b"There is no handle /nowhere"))

    def test_query_in_url_body_and_both(self):
        self.assertEqual(self.server.request("GET", "/?query=SELECT%201")[2], b"1\n")
        self.assertEqual(self.server.ok("SELECT 2"), b"2\n")
        # The URL part comes first, then a line break, then the body.
        self.assertEqual(self.server.ok("+ 3, 'x'", query="SELECT 1"), b"4\tx\n")

    def test_response_headers(self):
        status, headers, body = self.server.query("SELECT number FROM numbers(3) FORMAT JSONEachRow",
                                                  query_id="my-query")
        self.assertEqual(status, 200)
        self.assertEqual(headers["X-ClickHouse-Query-Id"], "my-query")
        self.assertEqual(headers["X-ClickHouse-Format"], "JSONEachRow")
        self.assertEqual(headers["Content-Type"], "application/x-ndjson; charset=UTF-8")
        self.assertTrue(headers["X-ClickHouse-Timezone"])
        self.assertTrue(headers["X-ClickHouse-Server-Display-Name"])
        summary = json.loads(headers["X-ClickHouse-Summary"])
        self.assertEqual(summary["result_rows"], "3")
        self.assertEqual(set(summary), {"read_rows", "read_bytes", "written_rows", "written_bytes",
                                        "total_rows_to_read", "result_rows", "result_bytes", "elapsed_ns"})
        self.assertEqual(int(headers["Content-Length"]), len(body))
        uuid.UUID(self.server.query("SELECT 1")[1]["X-ClickHouse-Query-Id"])

    def test_elapsed_ns_is_the_statements_time(self):
        # The statement sleeps 0.3 s (three rows of 0.1 s): elapsed_ns must cover it,
        # whichever way the engine reports it, with the request's settings applied.
        status, headers, _ = self.server.query("SELECT sleepEachRow(0.1) FROM numbers(3) FORMAT Null",
                                               max_block_size="1", database="system")
        self.assertEqual(status, 200)
        elapsed = int(json.loads(headers["X-ClickHouse-Summary"])["elapsed_ns"])
        self.assertGreaterEqual(elapsed, 300_000_000)
        self.assertLess(elapsed, 60_000_000_000)

    def test_output_formats(self):
        cases = [
            ("SELECT 1", {}, {}, "TabSeparated", "text/tab-separated-values; charset=UTF-8", b"1\n"),
            ("SELECT 1 AS x", {"default_format": "JSONCompact"}, {}, "JSONCompact",
             "application/json; charset=UTF-8", None),
            ("SELECT 1", {}, {"X-ClickHouse-Format": "CSVWithNames"}, "CSVWithNames",
             "text/csv; charset=UTF-8; header=present", b'"1"\n1\n'),
            ("SELECT 1 FORMAT CSV", {"default_format": "JSON"}, {}, "CSV",
             "text/csv; charset=UTF-8; header=absent", b"1\n"),
            ("SELECT toUInt8(7) FORMAT RowBinary", {}, {}, "RowBinary", "application/octet-stream", b"\x07"),
        ]
        for sql, params, headers, fmt, content_type, expected in cases:
            with self.subTest(sql=sql, params=params, headers=headers):
                path = "/?" + urllib.parse.urlencode(params) if params else "/"
                status, got, body = self.server.request("POST", path, sql.encode(), headers)
                self.assertEqual(status, 200, body)
                self.assertEqual(got["X-ClickHouse-Format"], fmt)
                self.assertEqual(got["Content-Type"], content_type)
                if expected is not None:
                    self.assertEqual(body, expected)
        _, headers, body = self.server.query("CREATE TEMPORARY TABLE tmp_fmt (a UInt8)")
        self.assertNotIn("X-ClickHouse-Format", headers)
        self.assertEqual((headers["Content-Type"], body), ("text/plain; charset=UTF-8", b""))

    def test_get_is_readonly(self):
        response = self.server.request("GET", "/?" + urllib.parse.urlencode(
            {"query": "CREATE TABLE ro (a UInt8) ENGINE = Memory"}))
        self.assert_error(response, 500, 164, "READONLY")
        self.server.ok("CREATE TABLE ro_target (a UInt8) ENGINE = Memory")
        response = self.server.request("GET", "/?query=INSERT+INTO+ro_target+FORMAT+TSV", b"1\n")
        self.assert_error(response, 500, 164, "READONLY")

    # --- parameters, database, settings ---

    def test_query_parameters_in_url(self):
        value = "it's a \\ \"test\"\twith\nlines"
        escaped = value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
        body = self.server.ok("SELECT {v:String} AS v, {n:UInt32} + 1 AS n FORMAT JSONEachRow",
                              param_v=escaped, param_n="41")
        self.assertEqual(json.loads(body), {"v": value, "n": 42})

    def test_query_parameters_in_multipart_form(self):
        boundary = "----boundary" + uuid.uuid4().hex
        fields = [("query", "SELECT {a:UInt8} + 1, {s:String}"), ("param_a", "41"), ("param_s", "x y")]
        body = "".join(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
                       for name, value in fields) + f"--{boundary}--\r\n"
        status, _, got = self.server.request(
            "POST", "/", body.encode(), {"Content-Type": f"multipart/form-data; boundary={boundary}"})
        self.assertEqual((status, got), (200, b"42\tx y\n"))
        # `default_format` is no external table's format (the Rust crate sends both).
        status, headers, got = self.server.request(
            "POST", "/?default_format=JSONCompactEachRow", body.encode(),
            {"Content-Type": f"multipart/form-data; boundary={boundary}"})
        self.assertEqual((status, got, headers["X-ClickHouse-Format"]), (200, b'[42, "x y"]\n', "JSONCompactEachRow"))

    def test_external_table_in_multipart_form(self):
        boundary = "b" + uuid.uuid4().hex
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"query\"\r\n\r\n"
                "SELECT sum(a), max(b) FROM ext\r\n"
                f"--{boundary}\r\nContent-Disposition: form-data; name=\"ext\"; filename=\"ext.tsv\"\r\n"
                "Content-Type: application/octet-stream\r\n\r\n1\tx\n2\ty\n\r\n"
                f"--{boundary}--\r\n")
        status, _, got = self.server.request(
            "POST", "/?ext_structure=a+UInt32%2C+b+String", body.encode(),
            {"Content-Type": f"multipart/form-data; boundary={boundary}"})
        self.assertEqual((status, got), (200, b"3\ty\n"))

    def test_database(self):
        self.assertEqual(self.server.ok("SELECT currentDatabase()"), b"default\n")
        self.server.ok("CREATE DATABASE IF NOT EXISTS db_param")
        self.server.ok("CREATE TABLE IF NOT EXISTS db_param.t (a UInt8) ENGINE = Memory")
        self.assertEqual(self.server.ok("SELECT currentDatabase(), count() FROM t", database="db_param"),
                         b"db_param\t0\n")
        status, _, body = self.server.query("SELECT currentDatabase()", headers={"X-ClickHouse-Database": "db_param"})
        self.assertEqual((status, body), (200, b"db_param\n"))
        self.assert_error(self.server.query("SELECT 1", database="no_such_db"), 404, 81, "UNKNOWN_DATABASE")

    def test_settings_apply_to_one_query_only(self):
        default = self.server.ok("SELECT getSetting('max_threads')")
        self.assertEqual(self.server.ok("SELECT getSetting('max_threads')", max_threads="3"), b"3\n")
        self.assertEqual(self.server.ok("SELECT getSetting('max_threads')"), default)
        self.assert_error(self.server.query("SELECT number FROM numbers(10)", max_result_rows="2",
                                            result_overflow_mode="throw"), 500, 396, "TOO_MANY_ROWS_OR_BYTES")
        self.assertEqual(self.server.ok("SELECT count() FROM (SELECT number FROM numbers(10))"), b"10\n")
        body = self.server.ok("SELECT toUInt64(1) AS x FORMAT JSONEachRow", output_format_json_quote_64bit_integers="1")
        self.assertEqual(body, b'{"x":"1"}\n')
        self.assertEqual(self.server.ok("SELECT toUInt64(1) AS x FORMAT JSONEachRow"), b'{"x":1}\n')
        # Parameters the HTTP handler consumes are not settings.
        self.assertEqual(self.server.ok("SELECT 1", wait_end_of_query="1", buffer_size="10", session_id="s1",
                                        client_protocol_version="0", role="r"), b"1\n")

    def test_no_setting_outlives_its_request(self):
        default = self.server.ok("SELECT getSetting('max_threads')")
        # A SET statement, a SETTINGS clause, and the readonly mode of a GET.
        self.server.ok("SET max_threads = 3")
        self.assertEqual(self.server.ok("SELECT getSetting('max_threads')"), default)
        self.assertEqual(self.server.ok("SELECT getSetting('max_threads') SETTINGS max_threads = 3"), b"3\n")
        self.assertEqual(self.server.ok("SELECT getSetting('max_threads')"), default)
        self.server.ok("SELECT 1", param_leak="x")
        self.assert_error(self.server.query("SELECT {leak:String}"), 500, 456, "UNKNOWN_QUERY_PARAMETER")
        self.assertEqual(self.server.request("GET", "/?query=SELECT+getSetting('readonly')")[2], b"2\n")
        self.assertEqual(self.server.ok("SELECT getSetting('readonly')"), b"0\n")
        self.server.ok("CREATE TABLE after_get (a UInt8) ENGINE = Memory")
        # Nor a temporary table or a USE.
        self.server.ok("CREATE TEMPORARY TABLE session_bound (a UInt8)")
        self.assertEqual(self.server.ok("EXISTS TEMPORARY TABLE session_bound"), b"0\n")
        self.server.ok("USE system")
        self.assertEqual(self.server.ok("SELECT currentDatabase()"), b"default\n")

    # --- HTTP sessions (session_id) ---

    def session(self, sql, session_id, **params):
        return self.server.ok(sql, session_id=session_id, **params)

    def test_session_keeps_set_and_use(self):
        sid = f"keep-{uuid.uuid4()}"
        default = self.server.ok("SELECT getSetting('max_threads')")
        self.session("SET max_threads = 7", sid)
        self.assertEqual(self.session("SELECT getSetting('max_threads')", sid), b"7\n")
        self.assertEqual(self.server.ok("SELECT getSetting('max_threads')"), default)  # other requests untouched
        # A URL setting applies to its query only, over the session's own.
        self.assertEqual(self.session("SELECT getSetting('max_threads')", sid, max_threads="5"), b"5\n")
        self.assertEqual(self.session("SELECT getSetting('max_threads')", sid), b"7\n")
        # A SET statement changes the session even when the URL sets the same setting.
        self.session("SET max_threads = 6", sid, max_threads="5")
        self.assertEqual(self.session("SELECT getSetting('max_threads')", sid), b"6\n")
        self.session("USE system", sid)
        self.assertEqual(self.session("SELECT currentDatabase()", sid), b"system\n")
        self.assertEqual(self.session("SELECT currentDatabase()", sid, database="default"), b"default\n")
        self.assertEqual(self.session("SELECT currentDatabase()", sid), b"system\n")
        self.assertEqual(self.server.ok("SELECT currentDatabase()"), b"default\n")
        # The readonly mode of a GET does not stay in the session.
        status, _, body = self.server.request("GET", "/?" + urllib.parse.urlencode(
            {"session_id": sid, "query": "CREATE TABLE default.session_get (a UInt8) ENGINE = Memory"}))
        self.assertEqual(status, 500, body)
        self.assertIn(b"(READONLY)", body)
        self.session("CREATE TABLE default.session_post (a UInt8) ENGINE = Memory", sid)

    def test_session_keeps_temporary_tables(self):
        sid = f"temp-{uuid.uuid4()}"
        if self.version < (26, 0):
            body = self.assert_error(self.server.query("CREATE TEMPORARY TABLE kept (a UInt8)", session_id=sid),
                                     501, 48, "NOT_IMPLEMENTED")
            self.assertIn("keeps SET and USE only", body)
            self.skipTest("chdb 1.x-3.x open an engine per request: a session keeps SET and USE, "
                          "and refuses temporary tables")
        self.session("CREATE TEMPORARY TABLE kept (a UInt8)", sid)
        self.session("INSERT INTO kept VALUES (1), (2)", sid)
        self.assertEqual(self.session("SELECT sum(a) FROM kept", sid), b"3\n")
        self.assertEqual(self.server.ok("EXISTS TEMPORARY TABLE kept"), b"0\n")
        self.assertEqual(self.session("EXISTS TEMPORARY TABLE kept", f"other-{sid}"), b"0\n")

    def test_session_check_timeout_and_close(self):
        sid = f"check-{uuid.uuid4()}"
        body = self.assert_error(self.server.query("SELECT 1", session_id=sid, session_check="1"),
                                 500, 372, "SESSION_NOT_FOUND")
        self.assertIn(f"Session {sid} not found", body)
        self.assertEqual(self.session("SELECT 1", sid), b"1\n")
        self.assertEqual(self.session("SELECT 2", sid, session_check="1"), b"2\n")
        self.assertEqual(self.session("SELECT 3", sid, session_check="1", close_session="1"), b"3\n")
        self.assert_error(self.server.query("SELECT 1", session_id=sid, session_check="1"),
                          500, 372, "SESSION_NOT_FOUND")
        body = self.assert_error(self.server.query("SELECT 1", session_id=sid, session_timeout="abc"),
                                 500, 374, "INVALID_SESSION_TIMEOUT")
        self.assertIn("Invalid session timeout: 'abc'", body)
        body = self.assert_error(self.server.query("SELECT 1", session_id=sid, session_timeout="3601"),
                                 500, 374, "INVALID_SESSION_TIMEOUT")
        self.assertIn("larger than max_session_timeout: 3600", body)
        # Without session_id the handler reads no session parameter.
        self.assertEqual(self.server.ok("SELECT 1", session_timeout="abc", session_check="1"), b"1\n")
        # A session ends `session_timeout` seconds after its last request.
        self.session("SET max_threads = 1", sid, session_timeout="1")
        time.sleep(1.6)
        self.assert_error(self.server.query("SELECT 1", session_id=sid, session_check="1"),
                          500, 372, "SESSION_NOT_FOUND")

    def test_session_is_locked_while_in_use(self):
        if self.version < (24, 0):
            self.skipTest("chdb 1.x (23.10) holds the GIL while a query runs: the front handles no other "
                          "request meanwhile, so no request can find the session in use")
        sid = f"lock-{uuid.uuid4()}"
        first = self.server.connection()
        try:
            first.request("POST", "/?" + urllib.parse.urlencode({"session_id": sid}), body=b"SELECT sleep(2)")
            time.sleep(0.7)
            body = self.assert_error(self.server.query("SELECT 1", session_id=sid), 500, 373, "SESSION_IS_LOCKED")
            self.assertIn(f"Session {sid} is locked by a concurrent client", body)
            response = first.getresponse()
            self.assertEqual((response.status, response.read()), (200, b"0\n"))
        finally:
            first.close()
        self.assertEqual(self.session("SELECT 1", sid), b"1\n")

    # --- running queries: concurrency, query ids, KILL, cancel on close ---

    LONG_QUERY = "SELECT count() FROM system.numbers WHERE number * 3 = {tag}"

    def start_long_query(self, tag, **params):
        """A query that runs until cancelled, sent on a connection of its own."""
        conn = self.server.connection()
        path = "/?" + urllib.parse.urlencode(params) if params else "/"
        conn.request("POST", path, body=self.LONG_QUERY.format(tag=tag).encode())
        return conn

    def running(self, tag):
        return int(self.server.ok(f"SELECT count() FROM system.processes WHERE query LIKE '%number * 3 = {tag}%' "
                                  "AND query NOT LIKE '%system.processes%'"))

    def wait_running(self, tag, count):
        deadline = time.monotonic() + 10
        while self.running(tag) != count:
            self.assertLess(time.monotonic(), deadline, f"{count} queries tagged {tag} expected to run")
            time.sleep(0.1)

    def require_concurrent_engine(self):
        if self.version < (26, 0):
            self.skipTest("chdb 1.x-3.x run one query at a time (23.10 holds the GIL while a query runs, so the "
                          "front answers nothing meanwhile; 24.8 and 25.8 engines are not safe to enter from two "
                          "threads); see README")

    def test_queries_run_at_once_and_kill_query_cancels(self):
        self.require_concurrent_engine()
        conn = self.start_long_query(11, query_id="long-11")
        try:
            self.wait_running(11, 1)
            started = time.monotonic()
            self.assertEqual(self.server.ok("SELECT 1"), b"1\n")
            self.assertEqual(self.server.request("GET", "/ping")[2], b"Ok.\n")
            self.assertLess(time.monotonic() - started, 5)
            body = self.assert_error(self.server.query("SELECT 1", query_id="long-11"),
                                     500, 216, "QUERY_WITH_SAME_ID_IS_ALREADY_RUNNING")
            self.assertIn("Query with id = long-11 is already running", body)
            killed = self.server.ok("KILL QUERY WHERE query LIKE '%number * 3 = 11%' AND query NOT LIKE '%KILL%' "
                                    "SYNC FORMAT TSV")
            self.assertTrue(killed.startswith(b"finished\t"), killed)
            response = conn.getresponse()
            self.assertEqual(response.status, 500)
            self.assertIn(b"(QUERY_WAS_CANCELLED)", response.read())
        finally:
            conn.close()
        self.assertEqual(self.server.ok("SELECT 2", query_id="long-11"), b"2\n")  # the id is free again

    def test_client_that_closes_cancels_its_read_only_query(self):
        self.require_concurrent_engine()
        conn = self.start_long_query(12, cancel_http_readonly_queries_on_client_close="1")
        self.wait_running(12, 1)
        conn.close()
        self.wait_running(12, 0)
        # Without the setting the query runs on, as in a server; KILL ends it.
        conn = self.start_long_query(13)
        try:
            self.wait_running(13, 1)
            conn.close()
            time.sleep(0.5)
            self.assertEqual(self.running(13), 1)
        finally:
            self.server.ok("KILL QUERY WHERE query LIKE '%number * 3 = 13%' AND query NOT LIKE '%KILL%' SYNC")

    def test_large_results_are_sent_as_produced(self):
        self.require_concurrent_engine()
        sql = "SELECT number FROM numbers(400000)"  # 2.6 MB
        expected = "".join(f"{i}\n" for i in range(400000)).encode()
        status, headers, body = self.server.query(sql)
        self.assertEqual((status, headers.get("Transfer-Encoding"), "Content-Length" in headers), (200, "chunked", False))
        self.assertEqual(body, expected)
        # wait_end_of_query=1 holds the whole result back; a small result is sent whole anyway.
        status, headers, body = self.server.query(sql, wait_end_of_query="1")
        self.assertEqual((status, headers.get("Content-Length"), body == expected), (200, str(len(expected)), True))
        self.assertIn("Content-Length", self.server.query("SELECT 1")[1])
        # Native compression, block by block.
        self.assertEqual(native_decompress(self.server.query(sql, compress="1")[2]), expected)
        # An error after the response started ends it without its last chunk.
        conn = self.server.connection()
        try:
            conn.request("POST", "/", body=b"SELECT number, throwIf(number = 390000) FROM numbers(400000) "
                                                  b"SETTINGS max_block_size = 10000, max_threads = 1")
            response = conn.getresponse()
            self.assertEqual(response.status, 200)
            with self.assertRaises(http.client.IncompleteRead) as caught:
                response.read()
            self.assertIn(b"(FUNCTION_THROW_IF_VALUE_IS_NON_ZERO)", caught.exception.partial)
        finally:
            conn.close()

    def test_progress_headers(self):
        self.require_concurrent_engine()
        conn = self.server.connection()
        try:
            conn.request("POST", "/?send_progress_in_http_headers=1&http_headers_progress_interval_ms=50",
                         body=b"SELECT count() FROM numbers(400000000) WHERE number * 3 = 1")
            response = conn.getresponse()
            progress = [json.loads(value) for name, value in response.getheaders() if name == "X-ClickHouse-Progress"]
            self.assertEqual((response.status, response.read()), (200, b"0\n"))
        finally:
            conn.close()
        self.assertGreaterEqual(len(progress), 1)
        rows = [int(p["read_rows"]) for p in progress]
        self.assertEqual(rows, sorted(rows))
        self.assertTrue(0 < rows[-1] <= 400000000)
        self.assertEqual(set(progress[0]), {"read_rows", "read_bytes", "written_rows", "written_bytes",
                                            "total_rows_to_read", "result_rows", "result_bytes", "elapsed_ns"})
        # Without the setting, none.
        status, headers, _ = self.server.query("SELECT count() FROM numbers(100000000) WHERE number * 3 = 1")
        self.assertNotIn("X-ClickHouse-Progress", headers)

    def test_ping_tells_a_busy_engine(self):
        if self.version < (24, 0):
            self.skipTest("chdb 1.x (23.10) holds the GIL while a query runs: /ping gets no answer at all "
                          "until the query ends")
        tmp = tempfile.mkdtemp(prefix="dev-clickhouse-busy-")
        server = Server(os.path.join(tmp, "data"), extra_args=["--busy-limit", "1"])
        conn = server.connection()
        try:
            conn.request("POST", "/", body=b"SELECT sleep(2.5)")
            time.sleep(1.8)
            status, _, body = server.request("GET", "/ping")
            replicas = server.request("GET", "/replicas_status")[0]
            if self.version >= (26, 0):  # queries run at once: a long one delays no other
                self.assertEqual((status, body, replicas), (200, b"Ok.\n", 200))
            else:
                self.assertEqual((status, replicas), (503, 503), body)
                self.assertIn(b"Engine busy: one query has run for", body)
            self.assertEqual(conn.getresponse().read(), b"0\n")
            self.assertEqual(server.request("GET", "/ping")[:3:2], (200, b"Ok.\n"))
        finally:
            conn.close()
            server.stop()
            shutil.rmtree(tmp, ignore_errors=True)

    def test_unknown_setting(self):
        body = self.assert_error(self.server.query("SELECT 1", no_such_setting="1"), 404, 115, "UNKNOWN_SETTING")
        self.assertIn("no_such_setting", body)
        self.assertEqual(self.server.ok("SELECT 1"), b"1\n")

    # --- errors ---

    def test_error_format(self):
        body = self.assert_error(self.server.query("SELEC 1"), 400, 62, "SYNTAX_ERROR")
        self.assertNotIn("Code: 62. DB::Exception: Code:", body)
        self.assert_error(self.server.query("SELECT * FROM no_such_table"), 404, 60, "UNKNOWN_TABLE")
        self.assert_error(self.server.query("SELECT no_such_function()"), 404, 46, "UNKNOWN_FUNCTION")
        self.assert_error(self.server.query("SELECT throwIf(1)"), 500, 395, "FUNCTION_THROW_IF_VALUE_IS_NON_ZERO")
        self.assert_error(self.server.query("SELECT 1 FORMAT NoSuchFormat"), 404, 73, "UNKNOWN_FORMAT")
        self.assert_error(self.server.query("SELECT {p:String}"), 500, 456, "UNKNOWN_QUERY_PARAMETER")
        self.assert_error(self.server.query(""), 400, 62, "SYNTAX_ERROR")

    def test_multi_statements_are_rejected(self):
        body = self.assert_error(self.server.query("SELECT 1; SELECT 2"), 400, 62, "SYNTAX_ERROR")
        self.assertIn("Multi-statements are not allowed", body)
        self.assertEqual(self.server.ok("SELECT 1;"), b"1\n")

    def test_into_outfile_is_rejected(self):
        target = os.path.join(self.tmp, "outfile.csv")
        body = self.assert_error(self.server.query(f"SELECT 1 INTO OUTFILE '{target}'"), 500, 358,
                                 "INTO_OUTFILE_NOT_ALLOWED")
        self.assertIn("INTO OUTFILE is not allowed", body)
        self.assertFalse(os.path.exists(target))

    def test_relative_file_paths_are_in_user_files(self):
        self.server.ok("INSERT INTO FUNCTION file('out.csv', 'CSV', 'a UInt8') VALUES (7)")
        with open(os.path.join(self.tmp, "data", "user_files", "out.csv")) as out:
            self.assertEqual(out.read(), "7\n")
        self.assertEqual(self.server.ok("SELECT * FROM file('out.csv', 'CSV', 'a UInt8')"), b"7\n")

    def test_length_required(self):
        with socket.create_connection(("127.0.0.1", self.server.port), timeout=10) as sock:
            sock.sendall(b"POST /?query=SELECT+1 HTTP/1.1\r\nHost: x\r\n\r\n")
            reply = sock.recv(65536).decode()
        self.assertTrue(reply.startswith("HTTP/1.1 411"), reply)
        self.assertIn("X-ClickHouse-Exception-Code: 381", reply)

    # --- inserts ---

    def test_row_binary_insert_with_nasty_strings(self):
        self.server.ok("CREATE TABLE nasty (id UInt32, s String) ENGINE = MergeTree ORDER BY id")
        values = [b"", b"nul\x00byte", b"quote'\"`\\", b"line\nbreak\r\n\ttab", "üñí😀".encode(),
                  b"\xff\xfe not utf-8", b"x" * 100000, b"FORMAT TSV\n; SELECT 1"]
        # Ids from 0x0A0A on: the data also holds empty lines ("\n\n").
        data = b"".join(struct.pack("<I", 0x0A0A + i) + row_binary_string(v) for i, v in enumerate(values))
        status, headers, body = self.server.query(data, query="INSERT INTO nasty FORMAT RowBinary")
        self.assertEqual(status, 200, body)
        self.assertEqual(json.loads(headers["X-ClickHouse-Summary"])["written_rows"], str(len(values)))
        body = self.server.ok("SELECT s FROM nasty ORDER BY id FORMAT RowBinary")
        self.assertEqual(body, b"".join(row_binary_string(v) for v in values))
        # RowBinaryWithNamesAndTypes (what the Rust crate sends), LZ4-compressed blocks.
        header = b"\x02" + row_binary_string(b"id") + row_binary_string(b"s") \
            + row_binary_string(b"UInt32") + row_binary_string(b"String")
        more = b"".join(struct.pack("<I", 0x0B0A + i) + row_binary_string(v) for i, v in enumerate(values))
        status, _, body = self.server.query(native_compress(header + more), decompress="1",
                                            query="INSERT INTO nasty (id, s) FORMAT RowBinaryWithNamesAndTypes")
        self.assertEqual(status, 200, body)
        body = self.server.ok("SELECT s FROM nasty WHERE id >= 0x0B0A ORDER BY id FORMAT RowBinaryWithNamesAndTypes")
        self.assertEqual(body, b"\x01" + row_binary_string(b"s") + row_binary_string(b"String")
                         + b"".join(row_binary_string(v) for v in values))

    def test_drop_sync(self):
        self.server.ok("CREATE DATABASE dropped_sync")
        self.server.ok("CREATE TABLE dropped_sync.t (a UInt8) ENGINE = MergeTree ORDER BY a")
        self.server.ok("INSERT INTO dropped_sync.t VALUES (1)")
        self.server.ok("DROP TABLE dropped_sync.t SYNC")
        self.server.ok("CREATE TABLE dropped_sync.t (a UInt8) ENGINE = MergeTree ORDER BY a")
        self.assertEqual(self.server.ok("SELECT count() FROM dropped_sync.t"), b"0\n")
        # Dropping the request's own database leaves the next requests unharmed.
        self.server.ok("DROP DATABASE IF EXISTS dropped_sync SYNC", database="dropped_sync")
        self.assertEqual(self.server.ok("EXISTS DATABASE dropped_sync"), b"0\n")
        self.server.ok("CREATE DATABASE dropped_sync")
        self.server.ok("DROP DATABASE dropped_sync SYNC")

    def test_insert_text_formats(self):
        self.server.ok("CREATE TABLE formats (a UInt32, b String) ENGINE = MergeTree ORDER BY a")
        inserts = [
            ("INSERT INTO formats FORMAT TabSeparated", b"1\tt\\tab\n"),
            ("INSERT INTO formats (a, b) FORMAT CSV", b'2,"c,sv"\n'),
            ("INSERT INTO formats FORMAT JSONEachRow", b'{"a": 3, "b": "j\\"son"}\n'),
            ("INSERT INTO formats VALUES", b"(4, 'va''l')"),
        ]
        for query, data in inserts:
            with self.subTest(query=query):
                self.assertEqual(self.server.ok(data, query=query), b"")
        self.server.ok("INSERT INTO formats VALUES (5, 'inline')")
        self.assertEqual(self.server.ok("SELECT a, b FROM formats ORDER BY a FORMAT JSONCompactEachRow"),
                         b'[1, "t\\tab"]\n[2, "c,sv"]\n[3, "j\\"son"]\n[4, "va\'l"]\n[5, "inline"]\n')

    def test_insert_with_settings_clause_and_parameters(self):
        self.server.ok("CREATE TABLE ins_settings (a UInt32, b String) ENGINE = MergeTree ORDER BY a")
        self.server.ok(b'{"a": 1, "b": "x", "unknown": 2}\n',
                       query="INSERT INTO ins_settings SETTINGS input_format_skip_unknown_fields = 1 FORMAT JSONEachRow")
        self.server.ok("INSERT INTO ins_settings (a, b) -- a comment\nVALUES (2, 'y')")
        self.server.ok("INSERT INTO ins_settings SELECT {a:UInt32}, {b:String}", param_a="3", param_b="z")
        # A column list: some columns, in another order.
        self.server.ok(b"w\t4\n", query="INSERT INTO ins_settings (b, a) SETTINGS max_threads = 1 FORMAT TSV")
        self.server.ok(b"\x05\x00\x00\x00", query="INSERT INTO default.ins_settings (a) FORMAT RowBinary")
        self.assertEqual(self.server.ok("SELECT a, b FROM ins_settings ORDER BY a"),
                         b"1\tx\n2\ty\n3\tz\n4\tw\n5\t\n")
        response = self.server.query(b"4\tw\n", query="INSERT INTO ins_settings SETTINGS no_such_setting = 1 FORMAT TSV")
        self.assert_error(response, 404, 115, "UNKNOWN_SETTING")

    def test_insert_is_one_statement(self):
        self.server.ok("CREATE TABLE one_statement (a UInt32) ENGINE = Memory")
        response = self.server.query(b"1\n", query="INSERT INTO one_statement; DROP TABLE one_statement FORMAT TSV")
        self.assertEqual(response[0], 400, response[2])
        self.assertEqual(self.server.ok("EXISTS TABLE one_statement"), b"1\n")

    def test_bad_insert_data(self):
        self.server.ok("CREATE TABLE bad_data (a UInt32, s String) ENGINE = Memory")
        body = self.assert_error(self.server.query(b"1\tx\nz\ty\n", query="INSERT INTO bad_data FORMAT TSV"),
                                 400, 27, "CANNOT_PARSE_INPUT_ASSERTION_FAILED")
        self.assertNotIn("Code: 27. DB::", body[10:])
        self.assertNotIn("insert-", body)  # no trace of how the data reached the engine
        self.assertEqual(self.server.ok("SELECT count() FROM bad_data"), b"0\n")

    def test_nul_byte_in_statement(self):
        if self.version < (25, 8):
            self.skipTest("chdb 1.x/2.x take the statement as a C string: a NUL byte in the "
                          "statement text (outside INSERT data) is refused")
        self.assertEqual(self.server.ok(b"SELECT 'a\0b' FORMAT RawBLOB"), b"a\0b")

    def test_memory_tables_keep_rows_between_requests(self):
        if self.version < (26, 0):
            self.skipTest("chdb 1.x-3.x give each request an engine of its own (chdb 3.x shares one session "
                          "among its connections): Memory tables (and other in-memory engines) keep their "
                          "definition but no rows between requests")
        self.server.ok("CREATE TABLE in_memory (a UInt32) ENGINE = Memory")
        self.server.ok("INSERT INTO in_memory VALUES (1), (2)")
        self.assertEqual(self.server.ok("SELECT count() FROM in_memory"), b"2\n")

    def test_chunked_request_bodies_and_keep_alive(self):
        conn = self.server.connection()
        try:
            # http.client sends iterables with Transfer-Encoding: chunked.
            self.server.request("POST", "/", iter([b"CREATE TABLE chunked ", b"(a UInt32) ENGINE = MergeTree ORDER BY a"]),
                                connection=conn)
            rows = [struct.pack("<I", i) for i in range(1000)]
            status, _, body = self.server.request(
                "POST", "/?query=INSERT+INTO+chunked+FORMAT+RowBinary", iter(rows), connection=conn)
            self.assertEqual(status, 200, body)
            for _ in range(3):  # the connection stays usable
                status, headers, body = self.server.request("POST", "/", b"SELECT count(), sum(a) FROM chunked",
                                                            connection=conn)
                self.assertEqual((status, body), (200, b"1000\t499500\n"))
                self.assertEqual(headers["Connection"], "Keep-Alive")
        finally:
            conn.close()

    # --- compression ---

    def test_native_compression_both_ways(self):
        self.server.ok("CREATE TABLE compressed (a UInt32, s String) ENGINE = MergeTree ORDER BY a")
        data = b"".join(struct.pack("<I", i) + row_binary_string(b"v%d" % i) for i in range(5000))
        status, _, body = self.server.query(native_compress(data), query="INSERT INTO compressed FORMAT RowBinary",
                                            decompress="1")
        self.assertEqual(status, 200, body)
        status, _, body = self.server.query("SELECT a, s FROM compressed ORDER BY a FORMAT RowBinary", compress="1")
        self.assertEqual(status, 200)
        self.assertEqual(native_decompress(body), data)

    def test_native_compression_checksum_mismatch(self):
        self.server.ok("CREATE TABLE corrupted (a UInt32) ENGINE = Memory")
        response = self.server.query(native_compress(b"\x01\x00\x00\x00", corrupt=True),
                                     query="INSERT INTO corrupted FORMAT RowBinary", decompress="1")
        body = self.assert_error(response, 500, 40, "CHECKSUM_DOESNT_MATCH")
        self.assertIn("Checksum doesn't match", body)

    def test_http_compression(self):
        sql = "SELECT number FROM numbers(1000)"
        expected = b"".join(b"%d\n" % i for i in range(1000))
        decoders = {"gzip": gzip.decompress, "lz4": lz4.frame.decompress,
                    "zstd": lambda d: zstandard.ZstdDecompressor().decompress(d, max_output_size=1 << 20)}
        on = {"enable_http_compression": "1"}
        for encoding, decode in decoders.items():
            with self.subTest(encoding=encoding):
                status, headers, body = self.server.query(sql, headers={"Accept-Encoding": encoding}, **on)
                self.assertEqual(headers.get("Content-Encoding"), encoding)
                self.assertEqual(decode(body), expected)
        # ClickHouse prefers zstd over gzip.
        _, headers, _ = self.server.query(sql, headers={"Accept-Encoding": "gzip, zstd"}, **on)
        self.assertEqual(headers["Content-Encoding"], "zstd")
        status, headers, body = self.server.query(sql, headers={"Accept-Encoding": "gzip"}, enable_http_compression="0")
        self.assertNotIn("Content-Encoding", headers)
        self.assertEqual(body, expected)
        # Without the setting, the engine's default decides (on from 26.x, off before).
        default = self.server.ok("SELECT value FROM system.settings WHERE name = 'enable_http_compression'")
        _, headers, body = self.server.query(sql, headers={"Accept-Encoding": "lz4"})
        self.assertEqual(headers.get("Content-Encoding"), "lz4" if default in (b"1\n", b"true\n") else None)
        status, _, body = self.server.query(gzip.compress(b"SELECT 42"), headers={"Content-Encoding": "gzip"})
        self.assertEqual((status, body), (200, b"42\n"))
        status, headers, body = self.server.query("SELECT * FROM no_such_table", headers={"Accept-Encoding": "gzip"},
                                                  **on)
        self.assertEqual((status, headers["Content-Encoding"]), (404, "gzip"))
        self.assertTrue(gzip.decompress(body).startswith(b"Code: 60."))

    def test_every_frame_of_a_compressed_body_is_decoded(self):
        # Bodies of several frames, members or streams (where ClickHouse reads on after one):
        # each encoding inserts its own range of ids; every row must arrive.
        self.server.ok("CREATE TABLE every_frame (id UInt32, s String) ENGINE = MergeTree ORDER BY id")

        def tsv(first, count):
            return b"".join(b"%d\tv%d\n" % (i, i) for i in range(first, first + count))

        def parts(first, count, encode, pieces=3):
            step = count // pieces
            return b"".join(encode(tsv(first + i * step, step if i < pieces - 1 else count - i * step))
                            for i in range(pieces))

        bodies = [
            ("lz4", lambda first, n: parts(first, n, lz4.frame.compress)),
            ("zstd", lambda first, n: parts(first, n, zstandard.ZstdCompressor().compress)),
            ("gzip", lambda first, n: parts(first, n, gzip.compress)),
            ("deflate", lambda first, n: parts(first, n, zlib.compress)),
            ("xz", lambda first, n: parts(first, n, lambda d: lzma.compress(d) + b"\0" * 4)),
            ("br", lambda first, n: brotli.compress(tsv(first, n))),
            ("bz2", lambda first, n: bz2.compress(tsv(first, n))),
        ]
        expected = 0
        for at, (encoding, make) in enumerate(bodies):
            with self.subTest(encoding=encoding):
                status, headers, body = self.server.query(
                    make(at * 100_000, 50_000), headers={"Content-Encoding": encoding},
                    query="INSERT INTO every_frame FORMAT TSV")
                self.assertEqual(status, 200, body)
                self.assertEqual(json.loads(headers["X-ClickHouse-Summary"])["written_rows"], "50000")
                expected += 50_000
        # Hadoop snappy: a literal row and an overlapping copy of it, twice more.
        status, _, body = self.server.query(hadoop_snappy(b"7777777\tsnappy\n", 2 * 15),
                                            headers={"Content-Encoding": "snappy"},
                                            query="INSERT INTO every_frame FORMAT TSV")
        self.assertEqual(status, 200, body)
        expected_sum = sum(at * 100_000 * 50_000 + 50_000 * 49_999 // 2 for at in range(len(bodies))) + 3 * 7777777
        got = self.server.ok("SELECT count(), sum(id), countIf(s = concat('v', toString(id))) FROM every_frame")
        self.assertEqual(got, b"%d\t%d\t%d\n" % (expected + 3, expected_sum, expected))

    def test_undecodable_body_is_refused_whole(self):
        self.server.ok("CREATE TABLE undecodable (id UInt32) ENGINE = MergeTree ORDER BY id")
        rows = b"".join(b"%d\n" % i for i in range(20_000))
        lz4_body = (lz4.frame.compress(rows[:50_000], content_checksum=True)
                    + lz4.frame.compress(rows[50_000:], content_checksum=True))
        gzip_body = gzip.compress(rows)
        zstd_body = zstandard.ZstdCompressor().compress(rows)
        cases = [
            # (Content-Encoding, body, HTTP status, error code, error name)
            ("lz4", lz4_body[:-5], 500, 618, "LZ4_DECODER_FAILED"),  # the last frame cut short
            ("lz4", lz4_body + b"garbage", 500, 618, "LZ4_DECODER_FAILED"),
            ("lz4", lz4_body[:30] + bytes([lz4_body[30] ^ 0xFF]) + lz4_body[31:], 500, 618,
             "LZ4_DECODER_FAILED"),  # a corrupt frame (its content checksum fails)
            ("gzip", gzip_body + b"\0\0\0\0", 500, 354, "ZLIB_INFLATE_FAILED"),
            ("gzip", gzip_body[:-8] + bytes([gzip_body[-8] ^ 1]) + gzip_body[-7:], 500, 354, "ZLIB_INFLATE_FAILED"),
            ("zstd", zstd_body[:-3], 500, 561, "ZSTD_DECODER_FAILED"),
            ("zstd", zstd_body + b"garbage!", 500, 561, "ZSTD_DECODER_FAILED"),
            ("br", brotli.compress(rows[:50]) + brotli.compress(rows[50:]), 500, 448, "BROTLI_READ_FAILED"),
            ("bz2", bz2.compress(rows[:50]) + bz2.compress(rows[50:]), 500, 594, "BZIP2_STREAM_DECODER_FAILED"),
            ("xz", lzma.compress(rows)[:-4], 500, 554, "LZMA_STREAM_DECODER_FAILED"),
            ("snappy", hadoop_snappy(rows[:1000])[:-1], 500, 638, "SNAPPY_UNCOMPRESS_FAILED"),
            ("compress", rows, 501, 48, "NOT_IMPLEMENTED"),  # not a method ClickHouse knows
            ("identity", rows, 501, 48, "NOT_IMPLEMENTED"),
        ]
        for encoding, body, status, code, name in cases:
            with self.subTest(encoding=encoding, name=name):
                response = self.server.query(body, query="INSERT INTO undecodable FORMAT TSV",
                                             headers={"Content-Encoding": encoding})
                self.assert_error(response, status, code, name)
        self.assertEqual(self.server.ok("SELECT count() FROM undecodable"), b"0\n")
        # An empty compressed body is an empty body since ClickHouse 26.3; before, inflate fails.
        response = self.server.query(b"", query="SELECT 1", headers={"Content-Encoding": "gzip"})
        if self.version >= (26, 3):
            self.assertEqual(response[::2], (200, b"1\n"))
        else:
            self.assert_error(response, 500, 354, "ZLIB_INFLATE_FAILED")

    def test_native_compression_every_block(self):
        self.server.ok("CREATE TABLE native_blocks (id UInt32) ENGINE = MergeTree ORDER BY id")
        data = [b"".join(struct.pack("<I", i) for i in range(start, start + 1000)) for start in range(0, 3000, 1000)]
        for method in (0x82, 0x90):
            with self.subTest(method=method):
                status, _, body = self.server.query(b"".join(native_block(d, method) for d in data), decompress="1",
                                                    query="INSERT INTO native_blocks FORMAT RowBinary")
                self.assertEqual(status, 200, body)
        self.assertEqual(self.server.ok("SELECT count(), sum(id) FROM native_blocks"),
                         b"6000\t%d\n" % (2 * 2999 * 3000 // 2))
        blocks = native_block(data[0]) + native_block(data[1])
        cases = [
            (blocks[:-10], 500, 33, "CANNOT_READ_ALL_DATA"),  # the last block cut short
            (blocks + native_block(data[2], 0x90), 500, 271, "CANNOT_DECOMPRESS"),  # another method
            (blocks + b"\0" * 25, 500, 432, "UNKNOWN_CODEC"),  # a header of method 0
        ]
        for body, status, code, name in cases:
            with self.subTest(name=name):
                response = self.server.query(body, decompress="1", query="INSERT INTO native_blocks FORMAT RowBinary")
                self.assert_error(response, status, code, name)
        self.assertEqual(self.server.ok("SELECT count() FROM native_blocks"), b"6000\n")


class AuthTest(unittest.TestCase):
    password = "s3cret:pw"

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="dev-clickhouse-auth-")
        cls.server = Server(os.path.join(cls.tmp, "data"), password=cls.password)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def basic(self, user, password):
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    def test_accepted_credentials(self):
        for params, headers in [
            ({}, {"X-ClickHouse-User": "default", "X-ClickHouse-Key": self.password}),
            ({}, {"Authorization": self.basic("default", self.password)}),
            ({"user": "default", "password": self.password}, {}),
            ({"password": self.password}, {}),
        ]:
            with self.subTest(params=params, headers=headers):
                path = "/?" + urllib.parse.urlencode(params) if params else "/"
                status, _, body = self.server.request("POST", path, b"SELECT 1", headers)
                self.assertEqual((status, body), (200, b"1\n"))

    def test_rejected_credentials(self):
        for user, params, headers in [
            ("default", {}, {}),
            ("default", {}, {"X-ClickHouse-User": "default", "X-ClickHouse-Key": "wrong"}),
            ("default", {}, {"Authorization": self.basic("default", "wrong")}),
            ("default", {"user": "default", "password": "wrong"}, {}),
            ("bob", {"user": "bob", "password": self.password}, {}),
        ]:
            with self.subTest(params=params, headers=headers):
                path = "/?" + urllib.parse.urlencode(params) if params else "/"
                status, got, body = self.server.request("POST", path, b"SELECT 1", headers)
                self.assertEqual(status, 403)
                self.assertEqual(got["X-ClickHouse-Exception-Code"], "516")
                text = body.decode()
                self.assertTrue(text.startswith(
                    f"Code: 516. DB::Exception: {user}: Authentication failed: password is incorrect, "
                    "or there is no user with such name."), text)
                self.assertRegex(text, r"\(AUTHENTICATION_FAILED\) \(version [\d.]+\)\n$")

    def test_passwords_stay_out_of_the_log(self):
        self.server.request("POST", "/?user=default&password=" + urllib.parse.quote(self.password), b"SELECT 1")
        log = self.server.log()
        self.assertIn("password=%2A%2A%2A", log)
        self.assertNotIn("s3cret", log)

    def test_key_header_needs_a_user_header(self):
        status, headers, body = self.server.request("POST", "/", b"SELECT 1", {"X-ClickHouse-Key": self.password})
        self.assertEqual((status, headers["X-ClickHouse-Exception-Code"]), (403, "516"))
        self.assertIn(b"Got an empty user name from X-ClickHouse HTTP headers", body)

    def test_mixed_authentication_methods(self):
        status, headers, body = self.server.request(
            "POST", "/?password=x", b"SELECT 1", {"X-ClickHouse-Key": self.password})
        self.assertEqual((status, headers["X-ClickHouse-Exception-Code"]), (403, "516"))
        self.assertIn(b"Invalid authentication: it is not allowed to use X-ClickHouse HTTP headers and "
                      b"authentication via parameters simultaneously", body)


class LifecycleTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="dev-clickhouse-life-")
        self.data = os.path.join(self.tmp, "data")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_data_persists_across_restarts(self):
        server = Server(self.data)
        try:
            server.ok("CREATE TABLE kept (a UInt32, s String) ENGINE = MergeTree ORDER BY a")
            server.ok(b"1\tone\n2\ttwo\n", query="INSERT INTO kept FORMAT TSV")
        finally:
            server.stop()
        server = Server(self.data)
        try:
            self.assertEqual(server.ok("SELECT a, s FROM kept ORDER BY a"), b"1\tone\n2\ttwo\n")
        finally:
            server.stop()

    def test_status_and_stop_find_a_server_by_its_port(self):
        # Started with a data directory of its own, its pid file is beside that
        # directory: `status --port` and `stop --port` without --data-dir find it by
        # its port, and leave any server on another port alone.
        port = free_port()
        engine = ["--engine", ENGINE] if ENGINE else ["--venv", sys.prefix]
        started = subprocess.run([SCRIPT, "start", *engine, "--port", str(port), "--data-dir", self.data],
                                 capture_output=True, text=True, timeout=180)
        self.assertEqual(started.returncode, 0, started.stderr)
        try:
            status = subprocess.run([SCRIPT, "status", "--port", str(port)], capture_output=True, text=True)
            self.assertEqual(status.returncode, 0, status.stdout + status.stderr)
            self.assertIn(f"at http://127.0.0.1:{port}/", status.stdout)
            self.assertIn(f"data in {os.path.realpath(self.data)}", status.stdout)
            other = subprocess.run([SCRIPT, "stop", "--port", str(free_port())], capture_output=True, text=True)
            self.assertEqual(other.stdout.strip(), "dev-clickhouse: not running")
            stopped = subprocess.run([SCRIPT, "stop", "--port", str(port)], capture_output=True, text=True)
            self.assertEqual(stopped.returncode, 0, stopped.stderr)
            self.assertIn("dev-clickhouse: stopped (pid ", stopped.stdout)
            self.assertEqual(stopped.stderr, "")
            gone = subprocess.run([SCRIPT, "status", "--port", str(port)], capture_output=True, text=True)
            self.assertEqual(gone.returncode, 3, gone.stdout)
        finally:
            subprocess.run([SCRIPT, "stop", "--data-dir", self.data], capture_output=True)

    def test_exits_when_parent_is_gone(self):
        parent = subprocess.Popen(["sleep", "60"])
        server = Server(self.data, parent_pid=parent.pid)
        try:
            parent.kill()
            parent.wait()
            server.process.wait(timeout=15)
        finally:
            server.stop()


if __name__ == "__main__":
    for at, arg in enumerate(sys.argv):
        if arg == "--engine" and at + 1 < len(sys.argv):
            ENGINE = sys.argv[at + 1]
            del sys.argv[at:at + 2]
            break
        if arg.startswith("--engine="):
            ENGINE = arg.partition("=")[2]
            del sys.argv[at]
            break
    unittest.main(verbosity=2)
