"""Tests of the HTTP interface (protocol.py): routes, the query in the URL and the body,
response headers, output formats, GET's readonly mode, parameters in the URL and in
multipart forms, external tables, `database`, settings, errors, chunked bodies and
keep-alive, and authentication (AuthTest).
"""

import base64
import json
import os
import shutil
import socket
import struct
import tempfile
import unittest
import urllib.parse
import uuid

from .protocol import exception_tag, stream_error
from .testing import Server, ServerTestCase


class StreamErrorTest(unittest.TestCase):
    """The bytes of an error after the body started (no server needed)."""

    TEXT = "Code: 395. DB::Exception: boom. (FUNCTION_THROW_IF_VALUE_IS_NON_ZERO) (version 26.9.2.1)"

    def test_framed_with_the_responses_tag_and_the_texts_length(self):
        # The frame clickhouse-rs 0.15 tests against a 25.12 server, with this text.
        headers = [("X-ClickHouse-Query-Id", "q"), ("X-ClickHouse-Exception-Tag", "rnywyenlaeqynhmu")]
        self.assertEqual(stream_error(self.TEXT, headers),
                         b"\r\n__exception__\r\nrnywyenlaeqynhmu\r\n" + self.TEXT.encode()
                         + b"\n%d rnywyenlaeqynhmu\r\n__exception__\r\n" % (len(self.TEXT) + 1))

    def test_without_a_tag_the_text_follows_the_rows(self):
        self.assertEqual(stream_error(self.TEXT, [("X-ClickHouse-Query-Id", "q")]), self.TEXT.encode() + b"\n")

    def test_a_tag_is_sixteen_lowercase_letters(self):
        tags = {exception_tag() for _ in range(20)}
        self.assertEqual(len(tags), 20)
        self.assertTrue(all(len(t) == 16 and t.isalpha() and t.islower() for t in tags), tags)


class ProtocolTest(ServerTestCase):
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

    def test_unknown_setting(self):
        body = self.assert_error(self.server.query("SELECT 1", no_such_setting="1"), 404, 115, "UNKNOWN_SETTING")
        self.assertIn("no_such_setting", body)
        self.assertEqual(self.server.ok("SELECT 1"), b"1\n")

    def test_error_format(self):
        body = self.assert_error(self.server.query("SELEC 1"), 400, 62, "SYNTAX_ERROR")
        self.assertNotIn("Code: 62. DB::Exception: Code:", body)
        self.assert_error(self.server.query("SELECT * FROM no_such_table"), 404, 60, "UNKNOWN_TABLE")
        self.assert_error(self.server.query("SELECT no_such_function()"), 404, 46, "UNKNOWN_FUNCTION")
        self.assert_error(self.server.query("SELECT throwIf(1)"), 500, 395, "FUNCTION_THROW_IF_VALUE_IS_NON_ZERO")
        self.assert_error(self.server.query("SELECT 1 FORMAT NoSuchFormat"), 404, 73, "UNKNOWN_FORMAT")
        self.assert_error(self.server.query("SELECT {p:String}"), 500, 456, "UNKNOWN_QUERY_PARAMETER")
        self.assert_error(self.server.query(""), 400, 62, "SYNTAX_ERROR")

    def test_length_required(self):
        with socket.create_connection(("127.0.0.1", self.server.port), timeout=10) as sock:
            sock.sendall(b"POST /?query=SELECT+1 HTTP/1.1\r\nHost: x\r\n\r\n")
            reply = sock.recv(65536).decode()
        self.assertTrue(reply.startswith("HTTP/1.1 411"), reply)
        self.assertIn("X-ClickHouse-Exception-Code: 381", reply)

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
