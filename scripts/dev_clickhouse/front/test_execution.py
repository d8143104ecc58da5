"""Tests of running statements (execution.py): elapsed time, queries at once and KILL QUERY,
cancelling when the client goes away, streamed results (plain, HTTP-compressed, JSON
formats, in sessions), progress headers, the busy /ping, the parse checks, and INSERTs
with inline data.
"""

import bz2
import gzip
import http.client
import json
import lzma
import os
import re
import shutil
import struct
import tempfile
import threading
import time
import urllib.parse
import uuid
import zlib

import brotli
import lz4.frame
import zstandard

from .testing import Server, ServerTestCase, native_compress, native_decompress, row_binary_string


# Content-Encoding -> what decodes a whole body of it (a streamed zstd frame does not announce its size).
HTTP_DECODE = {
    "gzip": lambda d: zlib.decompressobj(31).decompress(d),
    "deflate": lambda d: zlib.decompressobj(15).decompress(d),
    "br": lambda d: brotli.Decompressor().process(d),
    "zstd": lambda d: zstandard.ZstdDecompressor().decompressobj().decompress(d),
    "lz4": lambda d: lz4.frame.LZ4FrameDecompressor().decompress(d),
    "xz": lambda d: lzma.LZMADecompressor().decompress(d),
    "bz2": lambda d: bz2.BZ2Decompressor().decompress(d),
}
# The only part of a JSON document that differs from one run of a query to the next.
JSON_ELAPSED = re.compile(rb'(\n\t\t"elapsed": )\d+(?:\.\d+)?(?=,\n)')
JSON_READS = re.compile(rb'(\n\t\t"rows_read": )0(,\n\t\t"bytes_read": )0\n')
JSON_READS_COUNTED = re.compile(rb'(\n\t\t"rows_read": )\d+(,\n\t\t"bytes_read": )\d+')
# A result of 5.3 MB (several blocks, past the 1 MiB held back before a response starts).
LARGE = "SELECT number, toString(number) AS s, [number, 1] AS a FROM numbers(300000) SETTINGS max_block_size = 20000"
# A query that runs until it is cancelled, producing all the time.
ENDLESS = "SELECT number, toString(number) AS s FROM system.numbers"


class ExecutionTest(ServerTestCase):
    def test_elapsed_ns_is_the_statements_time(self):
        # The statement sleeps 0.3 s (three rows of 0.1 s): elapsed_ns must cover it,
        # whichever way the engine reports it, with the request's settings applied.
        status, headers, _ = self.server.query("SELECT sleepEachRow(0.1) FROM numbers(3) FORMAT Null",
                                               max_block_size="1", database="system")
        self.assertEqual(status, 200)
        elapsed = int(json.loads(headers["X-ClickHouse-Summary"])["elapsed_ns"])
        self.assertGreaterEqual(elapsed, 300_000_000)
        self.assertLess(elapsed, 60_000_000_000)

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

    def test_client_log_comment_is_kept_with_progress_and_cancel(self):
        self.require_concurrent_engine()
        # Another query with the same comment already running is left alone.
        other = self.start_long_query(15, log_comment="mine")
        try:
            self.wait_running(15, 1)
            conn = self.start_long_query(14, log_comment="mine", cancel_http_readonly_queries_on_client_close="1")
            self.wait_running(14, 1)
            self.assertEqual(self.server.ok("SELECT Settings['log_comment'] FROM system.processes "
                                            "WHERE query LIKE '%number * 3 = 14%' AND query NOT LIKE '%system.processes%'"),
                             b"mine\n")
            conn.close()
            self.wait_running(14, 0)
            self.assertEqual(self.running(15), 1)
        finally:
            other.close()
            self.server.ok("KILL QUERY WHERE query LIKE '%number * 3 = 15%' AND query NOT LIKE '%KILL%' SYNC")
        conn = self.server.connection()
        try:
            conn.request("POST", "/?send_progress_in_http_headers=1&http_headers_progress_interval_ms=50&log_comment=mine",
                         body=b"SELECT count() FROM numbers(400000000) WHERE number * 3 = 1")
            response = conn.getresponse()
            progress = [json.loads(value) for name, value in response.getheaders() if name == "X-ClickHouse-Progress"]
            self.assertEqual((response.status, response.read()), (200, b"0\n"))
        finally:
            conn.close()
        self.assertGreaterEqual(len(progress), 1)
        self.assertTrue(0 < int(progress[-1]["read_rows"]) <= 400000000)

    def test_the_process_list_holds_the_clients_statements_only(self):
        # The front checks each statement with the engine's formatQuery() before running it;
        # that check must not show in system.processes as another query holding the
        # statement's text (a client finding its query there by its text found the check).
        self.require_concurrent_engine()
        sql = "SELECT sleep(0.05) AS `process-list-marker` FORMAT Null"
        seen = set()
        done = threading.Event()

        def watch():
            while not done.is_set():
                seen.update(self.server.ok(
                    "SELECT query FROM system.processes WHERE query LIKE '%process-list-marker%' "
                    "AND query NOT LIKE '%system.processes%' FORMAT TSVRaw").decode().splitlines())

        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            for _ in range(40):
                self.server.ok(sql)
        finally:
            done.set()
            watcher.join()
        self.assertEqual(seen, {sql})

    def test_large_results_are_sent_as_produced(self):
        self.require_streaming_engine()
        sql = "SELECT number FROM numbers(400000)"  # 2.6 MB
        expected = "".join(f"{i}\n" for i in range(400000)).encode()
        status, headers, body = self.server.query(sql)
        self.assertEqual((status, headers.get("Transfer-Encoding"), "Content-Length" in headers), (200, "chunked", False))
        self.assertEqual(body, expected)
        # wait_end_of_query=1 holds the whole result back; a small result is sent whole anyway.
        status, headers, body = self.server.query(sql, wait_end_of_query="1")
        self.assertEqual((status, headers.get("Content-Length"), body == expected), (200, str(len(expected)), True))
        self.assertIn("Content-Length", self.server.query("SELECT 1")[1])
        # A format with a header: the header once, then the rows.
        for fmt, header in (("TSVWithNames", "number\n"), ("CSVWithNamesAndTypes", '"number"\n"UInt64"\n')):
            status, headers, body = self.server.query(sql + " FORMAT " + fmt)
            self.assertEqual((status, headers.get("Transfer-Encoding")), (200, "chunked"))
            self.assertEqual(body, header.encode() + expected)
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
            rows = self.assert_stream_error(caught.exception.partial, response.getheaders())
            self.assertEqual(rows, b"".join(b"%d\t0\n" % i for i in range(len(rows.splitlines()))))
        finally:
            conn.close()

    def assert_stream_error(self, partial, headers):
        """What a client reads of a response whose query failed after its body started: the
        rows so far, then the error. From 25.11 a server frames the error with the tag it named
        in X-ClickHouse-Exception-Tag (16 lowercase letters, on every response), so that no
        row can pass for it; before, the text follows the rows. Returns the rows."""
        headers = dict(headers)
        text = (rb"Code: 395\. DB::Exception: [^\n]*\(FUNCTION_THROW_IF_VALUE_IS_NON_ZERO\) "
                rb"\(version [\d.]+\)\n")
        if self.version < (25, 11):
            self.assertNotIn("X-ClickHouse-Exception-Tag", headers)
            found = re.search(rb"(?s)^(.*?)(" + text + rb")$", partial)
            self.assertIsNotNone(found, partial[-400:])
            return found.group(1)
        tag = headers.get("X-ClickHouse-Exception-Tag", "")
        self.assertRegex(tag, r"^[a-z]{16}$")
        self.assertIn("X-ClickHouse-Exception-Tag", headers.get("Access-Control-Expose-Headers", ""))
        tag = re.escape(tag.encode())
        found = re.search(rb"(?s)^(.*?)\r\n__exception__\r\n" + tag + rb"\r\n(" + text + rb")(\d+) "
                          + tag + rb"\r\n__exception__\r\n$", partial)
        self.assertIsNotNone(found, partial[-400:])
        self.assertEqual(int(found.group(3)), len(found.group(2)))  # the length the clients cut by
        return found.group(1)

    def test_every_query_response_names_an_exception_tag(self):
        # From 25.11, success and error alike, each response its own tag.
        tags = [dict(self.server.query(sql)[1]).get("X-ClickHouse-Exception-Tag")
                for sql in ("SELECT 1", "SELECT 1", "SELECT throwIf(1)", "SELECT * FROM no_such_table")]
        if self.version < (25, 11):
            self.assertEqual(tags, [None] * 4)
        else:
            self.assertTrue(all(re.fullmatch(r"[a-z]{16}", tag or "") for tag in tags), tags)
            self.assertEqual(len(set(tags)), 4, tags)

    def streams(self):
        """Whether this engine streams results (25.8 and 26.x, which have a streaming query);
        older ones send every result whole."""
        return self.version >= (25, 8)

    def require_streaming_engine(self):
        if not self.streams():
            self.skipTest("chdb 1.x and 2.x have no streaming query: results are sent whole; see README")

    def assert_streamed(self, headers, streamed=True):
        self.assertEqual(headers.get("Transfer-Encoding") == "chunked", streamed and self.streams(), headers)
        self.assertEqual("Content-Length" in headers, not (streamed and self.streams()), headers)

    def test_http_compressed_results_are_streamed(self):
        expected = self.server.ok(LARGE, wait_end_of_query="1")
        for encoding, decode in HTTP_DECODE.items():
            with self.subTest(encoding=encoding):
                headers = {"Accept-Encoding": encoding}
                status, got, body = self.server.query(LARGE, headers=headers, enable_http_compression="1")
                self.assertEqual((status, got.get("Content-Encoding")), (200, encoding))
                self.assert_streamed(got)
                self.assertEqual(decode(body), expected)
                # The same bytes as the whole (buffered) answer, once decompressed.
                status, got, whole = self.server.query(LARGE, headers=headers, enable_http_compression="1",
                                                       wait_end_of_query="1")
                self.assertEqual((status, got.get("Content-Encoding")), (200, encoding))
                self.assert_streamed(got, False)
                self.assertEqual(decode(whole), expected)
        # HTTP compression around ClickHouse's compressed blocks (compress=1).
        status, got, body = self.server.query(LARGE, headers={"Accept-Encoding": "gzip"},
                                              enable_http_compression="1", compress="1")
        self.assert_streamed(got)
        self.assertEqual(native_decompress(gzip.decompress(body)), expected)

    def test_http_compressed_stream_error(self):
        self.require_streaming_engine()
        # An error after the response started: its text ends the compressed stream, and the
        # response ends without its last chunk.
        conn = self.server.connection()
        try:
            conn.request("POST", "/?enable_http_compression=1", headers={"Accept-Encoding": "gzip"},
                         body=b"SELECT number, throwIf(number = 390000) FROM numbers(400000) "
                              b"SETTINGS max_block_size = 10000, max_threads = 1")
            response = conn.getresponse()
            self.assertEqual((response.status, response.getheader("Content-Encoding")), (200, "gzip"))
            with self.assertRaises(http.client.IncompleteRead) as caught:
                response.read()
        finally:
            conn.close()
        text = gzip.decompress(caught.exception.partial)  # a whole gzip member
        rows = self.assert_stream_error(text, response.getheaders())
        self.assertGreaterEqual(len(rows), len("".join(f"{i}\t0\n" for i in range(200000))))  # past the 1 MiB held back
        self.assertEqual(rows, b"".join(b"%d\t0\n" % i for i in range(len(rows.splitlines()))))

    def first_bytes_of_endless(self, fmt, path_params, headers=None, size=1 << 21):
        """The first `size` bytes of ENDLESS in `fmt` (a result that only a stream can start
        sending), read within 20 s; the client then closes, and the query is cancelled."""
        params = dict(path_params, cancel_http_readonly_queries_on_client_close="1")
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=20)
        tag = uuid.uuid4().hex
        try:
            conn.request("POST", "/?" + urllib.parse.urlencode(params), headers=headers or {},
                         body=f"{ENDLESS} WHERE '{tag}' != '' FORMAT {fmt}".encode())
            response = conn.getresponse()
            self.assertEqual((response.status, response.getheader("Transfer-Encoding")), (200, "chunked"))
            data = b""
            while len(data) < size:
                data += response.read1(size - len(data))
            return response, data
        finally:
            conn.close()
            deadline = time.monotonic() + 10
            while int(self.server.ok(f"SELECT count() FROM system.processes WHERE query LIKE '%{tag}%' "
                                     "AND query NOT LIKE '%system.processes%'")):
                self.assertLess(time.monotonic(), deadline, "the endless query was not cancelled")
                time.sleep(0.1)

    def test_first_bytes_come_before_the_query_ends(self):
        self.require_streaming_engine()
        _, data = self.first_bytes_of_endless("JSONCompact", {})
        self.assertTrue(data.startswith(b'{\n\t"meta":\n\t[\n'), data[:100])
        self.assertIn(b'\n\t"data":\n\t[\n\t\t[0, "0"],\n\t\t[1, "1"],\n', data)
        response, data = self.first_bytes_of_endless("TSV", {"enable_http_compression": "1"},
                                                     {"Accept-Encoding": "gzip"})
        self.assertEqual(response.getheader("Content-Encoding"), "gzip")
        self.assertTrue(zlib.decompressobj(31).decompress(data).startswith(b"0\t0\n1\t1\n2\t2\n"))
        sid = f"endless-{uuid.uuid4()}"
        _, data = self.first_bytes_of_endless("TSV", {"session_id": sid})
        self.assertTrue(data.startswith(b"0\t0\n1\t1\n"))
        # The session is free again once its stream is over.
        deadline = time.monotonic() + 10
        while self.server.query("SELECT 1", session_id=sid)[0] != 200:
            self.assertLess(time.monotonic(), deadline, "the session stayed locked")
            time.sleep(0.1)

    def assert_same_json(self, streamed, whole):
        """The same document but for the elapsed time (a timing), which is a positional Float64."""
        if self.version < (26, 0):
            # chdb 3.7.2 (25.8) counts no reads in a whole JSON result's statistics (0 and 0,
            # where a server counts the query's); a streamed one carries the query's counts.
            # (Every statistics section of the whole answer says 0 and 0; were one to count,
            # the masking below would hide a real difference.)
            self.assertEqual(len(JSON_READS.findall(whole)), len(JSON_READS_COUNTED.findall(whole)), whole[-300:])
            streamed, whole = (JSON_READS_COUNTED.sub(rb"\1R\2B", doc) for doc in (streamed, whole))
        self.assertEqual(JSON_ELAPSED.sub(rb"\1E", streamed), JSON_ELAPSED.sub(rb"\1E", whole))
        self.assertEqual(len(JSON_ELAPSED.findall(streamed)), len(JSON_ELAPSED.findall(whole)))

    def test_json_formats_are_streamed(self):
        queries = [
            (LARGE, {}),
            (LARGE, {"output_format_json_quote_64bit_integers": "1"}),
            (LARGE, {"output_format_write_statistics": "0"}),
            (LARGE.replace("numbers(300000)", "numbers(2)"), {}),  # small: sent whole, the same document
            (LARGE.replace("numbers(300000)", "numbers(0)"), {}),
            ("SELECT number AS `we\"ird\n\tname`, 'a\n\t]b' AS s FROM numbers(200000)", {}),
        ]
        for fmt in ("JSON", "JSONCompact", "JSONStrings", "JSONCompactStrings"):
            for sql, settings in queries:
                with self.subTest(fmt=fmt, sql=sql[:60], settings=settings):
                    status, headers, streamed = self.server.query(f"{sql} FORMAT {fmt}", **settings)
                    self.assertEqual(status, 200, streamed)
                    self.assert_streamed(headers, len(streamed) > 1 << 20)
                    status, headers, whole = self.server.query(f"{sql} FORMAT {fmt}", wait_end_of_query="1",
                                                               **settings)
                    self.assertEqual(status, 200, whole)
                    self.assertIn("Content-Length", headers)
                    self.assert_same_json(streamed, whole)
                    if "output_format_write_statistics" not in settings:
                        self.assertRegex(streamed[-120:].decode(), r'\n\t\t"elapsed": \d+\.\d+,\n\t\t"rows_read": \d+,'
                                                                   r'\n\t\t"bytes_read": \d+\n\t}\n}\n$')
        status, headers, body = self.server.query(LARGE + " FORMAT JSON", database="system",
                                                  headers={"Accept-Encoding": "zstd"}, enable_http_compression="1")
        self.assert_streamed(headers)
        self.assert_same_json(HTTP_DECODE["zstd"](body), self.server.ok(LARGE + " FORMAT JSON", wait_end_of_query="1"))

    def test_json_sections_that_blocks_cannot_tell_are_sent_whole(self):
        # totals, extremes, rows_before_limit_at_least, rows_before_aggregation: the whole result,
        # as the engine writes it.
        group = ("SELECT number % 100000 AS k, count() AS c FROM numbers(300000) GROUP BY k WITH TOTALS "
                 "ORDER BY k FORMAT JSONCompact")
        cases = [
            (group, {}, b'"totals": [0, 300000]'),
            (LARGE + ", extremes = 1 FORMAT JSONCompact", {}, b'"extremes":'),
            (LARGE + " FORMAT JSONCompact", {"extremes": "1"}, b'"extremes":'),
            ("SELECT number, toString(number) FROM numbers(300000) LIMIT 299999 FORMAT JSONCompact", {},
             b'"rows_before_limit_at_least": '),
            (LARGE + " FORMAT JSONCompact", {"limit": "299999"}, b'"rows_before_limit_at_least": '),
            (LARGE + " FORMAT JSONCompact", {"offset": "1"}, b'"rows": 299999'),
        ]
        if self.server.ok("SELECT count() FROM system.settings WHERE name = 'rows_before_aggregation'").strip() == b"1":
            cases.append((LARGE + " FORMAT JSONCompact", {"rows_before_aggregation": "1"}, b'"statistics"'))
        for sql, settings, part in cases:
            with self.subTest(sql=sql[-60:], settings=settings):
                status, headers, body = self.server.query(sql, **settings)
                self.assertEqual(status, 200, body[-300:])
                self.assert_streamed(headers, False)
                self.assertIn(part, body)
                self.assert_same_json(body, self.server.ok(sql, wait_end_of_query="1", **settings))

    def test_json_stream_error(self):
        self.require_streaming_engine()
        sid = f"json-error-{uuid.uuid4()}"
        for params in ({}, {"session_id": sid}):
            with self.subTest(params=params):
                conn = self.server.connection()
                try:
                    conn.request("POST", "/?" + urllib.parse.urlencode(params),
                                 body=b"SELECT number, throwIf(number = 390000) FROM numbers(400000) "
                                      b"SETTINGS max_block_size = 10000, max_threads = 1 FORMAT JSONCompact")
                    response = conn.getresponse()
                    self.assertEqual(response.status, 200)
                    with self.assertRaises(http.client.IncompleteRead) as caught:
                        response.read()
                finally:
                    conn.close()
                partial = caught.exception.partial
                self.assertTrue(partial.startswith(b'{\n\t"meta":\n\t[\n'), partial[:100])
                # The rows so far, the error right after the last, no end of the document.
                rows = self.assert_stream_error(partial, response.getheaders())
                self.assertRegex(rows[-100:].decode(), r"\n\t\t\[\d+, 0\]$")
        # The session's next streamed JSON result is whole and starts afresh (the engine keeps
        # the end of the failed document for the connection's next stream unless cleared).
        sql = LARGE + " FORMAT JSONCompact"
        status, headers, body = self.server.query(sql, session_id=sid)
        self.assert_streamed(headers)
        self.assert_same_json(body, self.server.ok(sql, wait_end_of_query="1"))

    def test_results_in_sessions_are_streamed(self):
        sid = f"streamed-{uuid.uuid4()}"
        if self.version >= (26, 0):
            self.server.ok("CREATE TEMPORARY TABLE big AS SELECT number, toString(number) AS s FROM numbers(300000)",
                           session_id=sid)
            source = "big"
        else:
            source = "numbers(300000)"  # (older engines keep no temporary table in a session)
        self.server.ok("SET max_block_size = 1000", session_id=sid)
        expected = "".join(f"{i}\t{i}\t1000\t3\n" for i in range(300000)).encode()
        sql = f"SELECT number, toString(number), getSetting('max_block_size'), getSetting('max_threads') FROM {source}"
        status, headers, body = self.server.query(sql + " ORDER BY number", session_id=sid, max_threads="3")
        self.assertEqual(status, 200, body[:300])
        self.assert_streamed(headers)
        self.assertEqual(body, expected)
        # The URL setting was the request's only; the session's own stays.
        self.assertEqual(self.server.ok("SELECT getSetting('max_block_size'), getSetting('max_threads') = 3",
                                        session_id=sid), b"1000\t0\n")
        # JSON, compressed, in a session: the same document as outside it.
        sql = LARGE + " FORMAT JSONStrings"
        status, headers, body = self.server.query(sql, session_id=sid, headers={"Accept-Encoding": "br"},
                                                  enable_http_compression="1")
        self.assert_streamed(headers)
        self.assert_same_json(brotli.decompress(body), self.server.ok(sql, wait_end_of_query="1"))
        # A HEAD request sends no body: its stream is dropped unread, and the session is free.
        status, headers, body = self.server.query(None, method="HEAD", query=LARGE, session_id=sid)
        self.assertEqual((status, body), (200, b""))
        self.assertEqual(self.server.ok("SELECT 2", session_id=sid, query_id=f"q-{sid}"), b"2\n")
        self.assertEqual(self.server.ok("SELECT 3", query_id=f"q-{sid}"), b"3\n")

    def test_stream_holds_its_session(self):
        self.require_streaming_engine()
        sid = f"held-{uuid.uuid4()}"
        params = {"session_id": sid, "cancel_http_readonly_queries_on_client_close": "1"}
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=20)
        try:
            conn.request("POST", "/?" + urllib.parse.urlencode(params), body=ENDLESS.encode())
            response = conn.getresponse()
            self.assertEqual(response.read1(1 << 20)[:4], b"0\t0\n")
            self.assert_error(self.server.query("SELECT 1", session_id=sid), 500, 373, "SESSION_IS_LOCKED")
        finally:
            conn.close()
        deadline = time.monotonic() + 10
        while self.server.query("SELECT 1", session_id=sid)[0] != 200:
            self.assertLess(time.monotonic(), deadline, "the session stayed locked")
            time.sleep(0.1)

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

    def test_concurrent_readers_and_writers_lose_and_mix_nothing(self):
        # Eight clients at once, each on its own connections: four write numbered rows (as
        # INSERT ... VALUES in the body, half of them in a session of their own, a parameter
        # in the URL), four read (each its own query id, parameters and settings) while the
        # writes go on. Every answer is the one its request asked for, and every row written
        # is stored once. (Engines that run one query at a time queue them; 26.9 runs them at once.)
        table = f"rw_{uuid.uuid4().hex[:8]}"
        self.server.ok(f"CREATE TABLE {table} (writer UInt8, n UInt32, s String) ENGINE = MergeTree ORDER BY (writer, n)")
        writes, reads = 12, 12
        problems = []

        def writer(w):
            session = {"session_id": f"{table}-w{w}"} if w % 2 else {}
            for i in range(writes):
                values = ", ".join(f"({w}, {i * 10 + k}, 'w{w}-{i * 10 + k}')" for k in range(10))
                status, _, body = self.server.query(f"INSERT INTO {table} VALUES {values}", **session)
                if status != 200:
                    problems.append(f"writer {w} insert {i}: {status} {body[:200]!r}")

        def reader(r):
            for i in range(reads):
                qid = f"{table}-r{r}-{i}"
                status, headers, body = self.server.query(
                    "SELECT {r:UInt8} * 1000 + {i:UInt16}, getSetting('max_block_size'), "
                    f"count() >= 0 FROM {table}",
                    query_id=qid, param_r=str(r), param_i=str(i), max_block_size=str(1000 + r))
                expected = f"{r * 1000 + i}\t{1000 + r}\t1\n".encode()
                if (status, body) != (200, expected) or dict(headers).get("X-ClickHouse-Query-Id") != qid:
                    problems.append(f"reader {r} query {i}: {status} {body[:200]!r} {dict(headers).get('X-ClickHouse-Query-Id')}")

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
        threads += [threading.Thread(target=reader, args=(r,)) for r in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(300)
        self.assertFalse(any(thread.is_alive() for thread in threads), "a client got no answer in 300 s")
        self.assertEqual(problems, [])
        stored = self.server.ok(f"SELECT writer, count(), uniqExact(n), min(n), max(n), countIf(s != concat('w', "
                                f"toString(writer), '-', toString(n))) FROM {table} GROUP BY writer ORDER BY writer")
        self.assertEqual(stored, b"".join(b"%d\t%d\t%d\t0\t%d\t0\n" % (w, writes * 10, writes * 10, writes * 10 - 1)
                                          for w in range(4)))
        self.server.ok(f"DROP TABLE {table}")

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
