"""ClickHouse's official clients against the local ClickHouse HTTP server.

Run with an engine's virtualenv Python (`scripts/dev-clickhouse install` puts
the pinned Python client, clickhouse-connect, into every engine's virtualenv):
    .dev/venv/bin/python scripts/dev_clickhouse/test_clients.py
    .dev/venv-23.10/bin/python scripts/dev_clickhouse/test_clients.py --engine 23.10
The Node.js client (@clickhouse/client, pinned in scripts/dev_clickhouse/node/
package.json) is installed with npm into .dev/node-clients/ by the test itself
on first use; without node and npm its test is skipped, saying so.  Servers
start as in test_server.py (free port, temporary data directory, gone with the
test run).

What is checked is what a user of the client sees: results, parameters bound
by the server, settings, errors raised as the client's exceptions, and that an
insert stores every row sent, in every compression the client offers, or
nothing at all.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import clickhouse_connect
from clickhouse_cityhash.cityhash import CityHash64
from clickhouse_connect.driver.exceptions import DatabaseError

from front.testing import Server
from test_server import set_engine

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
NODE_PACKAGE = os.path.join(HERE, "node", "package.json")
NODE_CHECK = os.path.join(HERE, "node", "client_check.cjs")
NODE_CLIENT_DIR = os.path.join(REPO, ".dev", "node-clients")
PASSWORD = "client-test:pw"
# Enough rows for several blocks, each its own LZ4 or zstd frame in clickhouse-connect's
# insert body (it sends ~2 MiB blocks).
ROWS = 300_000


def rows(count, tag):
    return [(i, f"{tag}-{i}-{'x' * (i % 17)}") for i in range(count)]


def checksum(data):
    """(count, sum of ids, sum of cityHash64 of the strings), as the server computes it."""
    return (len(data), sum(i for i, _ in data), sum(CityHash64(s.encode()) for _, s in data) % (1 << 64))


class PythonClientTest(unittest.TestCase):
    """clickhouse-connect, the official Python client, with its default settings unless said."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="dev-clickhouse-clients-")
        cls.server = Server(os.path.join(cls.tmp, "data"), password=PASSWORD)
        cls.client = cls.connect()
        sys.stderr.write(f"ClickHouse {cls.client.server_version}, "
                         f"clickhouse-connect {clickhouse_connect.__version__} ")
        if tuple(int(part) for part in cls.client.server_version.split(".")[:2]) < (25, 8):
            # Known gap of the server on chdb 1.x/2.x: their INSERT ... FROM INFILE ... FORMAT
            # Native reports no progress, so X-ClickHouse-Summary says written_rows 0 (the rows
            # are stored all the same).  Marked, not hidden: it fails here, and passing would fail.
            cls.test_insert_summary_counts_written_rows = unittest.expectedFailure(
                PythonClientTest.test_insert_summary_counts_written_rows)

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        cls.server.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def connect(cls, **options):
        return clickhouse_connect.get_client(host="127.0.0.1", port=cls.server.port, username="default",
                                             password=PASSWORD, **options)

    def stored(self, table):
        count, ids, hashes = self.client.query(
            f"SELECT count(), sum(id), sum(cityHash64(s)) FROM {table}").result_rows[0]
        return count, ids, hashes

    def test_command(self):
        self.assertEqual(self.client.command("SELECT 1 + 1"), 2)
        self.client.command("CREATE TABLE cmd (a UInt32) ENGINE = MergeTree ORDER BY a")
        self.client.command("INSERT INTO cmd VALUES (1), (2)")
        self.assertEqual(self.client.command("SELECT sum(a) FROM cmd"), 3)
        self.assertEqual(self.client.command("SELECT {n:UInt8} * 2", parameters={"n": 21}), 42)

    def test_query_with_server_side_parameters(self):
        value = "it's a \\ \"test\"\twith\nlines"
        result = self.client.query("SELECT {a:UInt32} + 1 AS x, {s:String} AS s, {d:DateTime} AS d, "
                                   "{l:Array(String)} AS l",
                                   parameters={"a": 41, "s": value, "d": "2024-02-29 12:34:56", "l": ["x", "y'"]})
        x, s, d, lst = result.result_rows[0]
        self.assertEqual((x, s, d.strftime("%Y-%m-%d %H:%M:%S"), lst), (42, value, "2024-02-29 12:34:56", ["x", "y'"]))
        self.assertEqual(result.column_names, ("x", "s", "d", "l"))
        self.assertEqual(result.summary.get("result_rows"), "1")

    def test_settings(self):
        self.assertEqual(self.client.command("SELECT getSetting('max_threads')", settings={"max_threads": 3}), 3)
        result = self.client.query("SELECT number FROM numbers(10)", settings={"max_result_rows": 2,
                                                                               "result_overflow_mode": "break"})
        self.assertLessEqual(len(result.result_rows), 10)
        with self.assertRaises(DatabaseError) as caught:
            self.client.query("SELECT number FROM numbers(10)", settings={"max_result_rows": 2,
                                                                          "result_overflow_mode": "throw"})
        self.assertEqual((caught.exception.code, caught.exception.name), (396, "TOO_MANY_ROWS_OR_BYTES"))

    def test_error_is_the_clients_exception(self):
        with self.assertRaises(DatabaseError) as caught:
            self.client.query("SELECT * FROM no_such_table")
        self.assertEqual((caught.exception.code, caught.exception.name), (60, "UNKNOWN_TABLE"))
        self.assertIn("no_such_table", str(caught.exception))
        with self.assertRaises(DatabaseError) as caught:
            self.client.command("SELEKT 1")
        self.assertEqual((caught.exception.code, caught.exception.name), (62, "SYNTAX_ERROR"))

    def test_error_after_rows_is_the_clients_exception(self):
        # The query fails after 390,000 rows. Streamed, a 26.x server has sent rows by then
        # (200 OK) and the error follows them in the body, framed with the response's
        # exception tag; older engines answer it whole (500). Whole (the client's
        # wait_end_of_query=1), the error is the answer. Either way, in the client's session.
        sql = ("SELECT number, throwIf(number = 390000) FROM numbers(400000) "
               "SETTINGS max_block_size = 10000, max_threads = 1")
        for streamed in (True, False):
            with self.subTest(streamed=streamed):
                with self.assertRaises(DatabaseError) as caught:
                    if streamed:
                        with self.client.query_row_block_stream(sql) as stream:
                            for _ in stream:
                                pass
                    else:
                        self.client.query(sql)
                self.assertIn("Code: 395. DB::Exception: Value passed to 'throwIf' function is non-zero",
                              str(caught.exception))
                self.assertIn("(FUNCTION_THROW_IF_VALUE_IS_NON_ZERO)", str(caught.exception))
                # The session goes on, its next answer whole.
                self.assertEqual(self.client.query("SELECT count() FROM numbers(400000)").result_rows, [(400000,)])

    def test_query_df_and_arrow(self):
        try:
            import pandas  # noqa: F401  (only some engines' virtualenvs have it)
            import pyarrow  # noqa: F401
        except ImportError as exc:
            self.skipTest(f"this engine's virtualenv has no {exc.name} (not a dependency of its chdb)")
        df = self.client.query_df("SELECT number AS n, toString(number) AS s FROM numbers(1000)")
        self.assertEqual((len(df), int(df["n"].sum()), df["s"].iloc[999]), (1000, 499500, "999"))
        table = self.client.query_arrow("SELECT number AS n, toString(number) AS s FROM numbers(1000)")
        self.assertEqual((table.num_rows, sum(table.column("n").to_pylist())), (1000, 499500))

    def test_inserts_keep_every_row_in_every_compression(self):
        # lz4 is the default (one LZ4 frame per block); zstd sends one frame per block too,
        # gzip one stream for the whole body; False sends the body as it is.
        for compress in ("lz4", "zstd", "gzip", False):
            with self.subTest(compress=compress):
                table = f"ins_{compress or 'none'}"
                data = rows(ROWS, table)
                client = self.client if compress == "lz4" else self.connect(compress=compress)
                try:
                    self.assertEqual(client.write_compression if compress else None, compress or None)
                    self.client.command(f"CREATE TABLE {table} (id UInt64, s String) ENGINE = MergeTree ORDER BY id")
                    client.insert(table, data, column_names=["id", "s"])
                    self.assertEqual(self.stored(table), checksum(data))
                finally:
                    if client is not self.client:
                        client.close()

    def test_insert_summary_counts_written_rows(self):
        self.client.command("CREATE TABLE ins_summary (id UInt64, s String) ENGINE = MergeTree ORDER BY id")
        summary = self.client.insert("ins_summary", rows(1000, "summary"), column_names=["id", "s"])
        self.assertEqual((summary.written_rows, self.client.command("SELECT count() FROM ins_summary")), (1000, 1000))

    def test_brotli_insert(self):
        # clickhouse-connect sends one brotli stream per block; ClickHouse's brotli reader
        # takes one stream per body: a one-block insert is stored, a longer one refused whole.
        client = self.connect(compress="br")
        try:
            self.client.command("CREATE TABLE ins_br (id UInt64, s String) ENGINE = MergeTree ORDER BY id")
            small = rows(1000, "br")
            client.insert("ins_br", small, column_names=["id", "s"])
            self.assertEqual(self.stored("ins_br"), checksum(small))
            # Rows of 1 MiB: two to a block, three blocks (compressible, so that brotli is quick).
            big = [(i, f"{i}:" + "x" * (1 << 20)) for i in range(5)]
            with self.assertRaises(DatabaseError) as caught:
                client.insert("ins_br", big, column_names=["id", "s"])
            self.assertEqual((caught.exception.code, caught.exception.name), (448, "BROTLI_READ_FAILED"))
            self.assertEqual(self.stored("ins_br"), checksum(small))
        finally:
            client.close()

    def test_insert_that_fails_midway_stores_nothing(self):
        # A value the client cannot serialize ends the body with bytes that are no LZ4
        # frame, after the frames of the blocks before it: the server must refuse it all.
        self.client.command("CREATE TABLE ins_broken (id UInt64, s String) ENGINE = MergeTree ORDER BY id")
        data = rows(ROWS, "broken")
        data[ROWS - 10] = (ROWS - 10, object())
        with self.assertRaises(Exception), self.assertLogs("clickhouse_connect", "ERROR"):
            self.client.insert("ins_broken", data, column_names=["id", "s"])
        self.assertEqual(self.client.command("SELECT count() FROM ins_broken"), 0)

    def test_session_keeps_settings_and_temporary_tables(self):
        # clickhouse-connect gives each client a session of its own (autogenerate_session_id).
        client = self.connect()
        other = self.connect()
        try:
            self.assertTrue(client.get_client_setting("session_id"))
            client.command("SET max_threads = 7")
            self.assertEqual(client.command("SELECT getSetting('max_threads')"), 7)
            self.assertNotEqual(other.command("SELECT getSetting('max_threads')"), 7)
            if tuple(int(part) for part in client.server_version.split(".")[:2]) < (26, 0):
                with self.assertRaises(DatabaseError) as caught:
                    client.command("CREATE TEMPORARY TABLE kept (a UInt8)")
                self.assertEqual((caught.exception.code, caught.exception.name), (48, "NOT_IMPLEMENTED"))
                return
            client.command("CREATE TEMPORARY TABLE kept (a UInt8)")
            client.insert("kept", [(1,), (2,)], column_names=["a"])
            self.assertEqual(client.command("SELECT sum(a) FROM kept"), 3)
            self.assertEqual(other.command("EXISTS TEMPORARY TABLE kept"), 0)
        finally:
            client.close()
            other.close()

    def test_session_used_concurrently_is_locked(self):
        # (A client refuses to run two queries of its session at once itself; two clients
        # given one session_id leave it to the server.)
        session_id = f"shared-{os.getpid()}"
        if tuple(int(part) for part in self.client.server_version.split(".")[:2]) < (24, 0):
            self.skipTest("chdb 1.x (23.10) holds the GIL while a query runs: the front handles no other "
                          "request meanwhile, so no request can find the session in use")
        client, twin = self.connect(session_id=session_id), self.connect(session_id=session_id)
        try:
            slow = threading.Thread(target=client.command, args=("SELECT sleep(2)",))
            slow.start()
            try:
                time.sleep(0.7)
                with self.assertRaises(DatabaseError) as caught:
                    twin.command("SELECT 1")
                self.assertEqual((caught.exception.code, caught.exception.name), (373, "SESSION_IS_LOCKED"))
            finally:
                slow.join()
            self.assertEqual(twin.command("SELECT 1"), 1)
        finally:
            client.close()
            twin.close()

    def test_client_that_gives_up_cancels_its_query(self):
        if tuple(int(part) for part in self.client.server_version.split(".")[:2]) < (26, 0):
            self.skipTest("chdb 1.x-3.x cannot cancel a running query (see README)")
        # clickhouse-connect asks for cancel_http_readonly_queries_on_client_close=1 itself.
        impatient = self.connect(send_receive_timeout=1, autogenerate_session_id=False)
        sql = "SELECT count() FROM system.numbers WHERE number * 7 = 1"
        count = ("SELECT count() FROM system.processes WHERE query LIKE '%number * 7 = 1%' "
                 "AND query NOT LIKE '%system.processes%'")
        try:
            with self.assertRaises(Exception):
                impatient.query(sql)
        finally:
            impatient.close()
        deadline = time.monotonic() + 10
        while self.client.command(count) != 0:
            self.assertLess(time.monotonic(), deadline, "the query of the client that gave up still runs")
            time.sleep(0.2)


class NodeClientTest(unittest.TestCase):
    """@clickhouse/client, the official Node.js client."""

    @classmethod
    def setUpClass(cls):
        node, npm = shutil.which("node"), shutil.which("npm")
        if not node or not npm:
            raise unittest.SkipTest("Node.js/npm not installed: the Node.js client (@clickhouse/client) is not tested")
        cls.node = node
        install_node_client(npm)
        cls.tmp = tempfile.mkdtemp(prefix="dev-clickhouse-node-")
        cls.server = Server(os.path.join(cls.tmp, "data"), password=PASSWORD)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_node_client(self):
        run = subprocess.run([self.node, NODE_CHECK, NODE_CLIENT_DIR, f"http://127.0.0.1:{self.server.port}"],
                             env=dict(os.environ, CLICKHOUSE_PASSWORD=PASSWORD), capture_output=True, text=True,
                             timeout=300)
        self.assertEqual(run.returncode, 0, run.stderr)
        got = json.loads(run.stdout)
        rows_sent = got["rows_sent"]
        expected_rows = {"n": rows_sent, "ids": rows_sent * (rows_sent - 1) // 2,
                         "chars": sum(len(f"row-{i}") for i in range(rows_sent))}
        self.assertEqual(got["ping"], {"success": True})
        self.assertEqual(got["query_params"], [{"x": 42, "s": "it's a \\ \"test\"\twith\nlines", "list": ["x", "y'"]}])
        self.assertEqual(got["settings"], [{"max_threads": 3}] if isinstance(got["settings"][0]["max_threads"], int)
                         else [{"max_threads": "3"}])
        for insert in ("plain_insert", "gzip_insert"):
            with self.subTest(insert=insert):
                self.assertEqual({key: int(value) for key, value in got[insert].items()}, expected_rows)
        error = got["error"]
        self.assertIsNotNone(error)
        self.assertEqual((error["is_clickhouse_error"], error["code"], error["type"]), (True, "60", "UNKNOWN_TABLE"))


def install_node_client(npm):
    """npm-install the pinned @clickhouse/client into .dev/node-clients/ (a no-op when it is there)."""
    stamp = os.path.join(NODE_CLIENT_DIR, "package.json")
    with open(NODE_PACKAGE, "rb") as wanted:
        package = wanted.read()
    installed = os.path.join(NODE_CLIENT_DIR, "node_modules", "@clickhouse", "client", "package.json")
    if os.path.exists(installed) and os.path.exists(stamp):
        with open(stamp, "rb") as have:
            if have.read() == package:
                return
    os.makedirs(NODE_CLIENT_DIR, exist_ok=True)
    with open(stamp, "wb") as out:
        out.write(package)
    sys.stderr.write(f"installing @clickhouse/client into {NODE_CLIENT_DIR} ... ")
    run = subprocess.run([npm, "install", "--no-package-lock", "--no-audit", "--no-fund", "--omit=dev"],
                         cwd=NODE_CLIENT_DIR, capture_output=True, text=True, timeout=300)
    if run.returncode != 0:
        os.remove(stamp)
        raise RuntimeError(f"npm install of @clickhouse/client failed:\n{run.stdout}\n{run.stderr}")


if __name__ == "__main__":
    set_engine(sys.argv)
    unittest.main(verbosity=2)
