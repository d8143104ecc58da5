"""Tests of what the engine adapters (engines/) hide of each chdb release: relative file()
paths, DROP ... SYNC, Memory tables across requests, the settings each request
starts with (FreshSettingsTest), how 26.x's per-block JSON documents make one
(JsonEnvelopeTest, no server), and which failures to open 25.8's engine are tried again
(EngineOpeningTest, no server).
"""

import os
import shutil
import tempfile
import unittest

from .engines.base import EngineError
from .engines.reopening import ReopeningEngineAPI
from .engines.streaming import _float_text, _JsonEnvelope
from .testing import Server, ServerTestCase


class EngineTest(ServerTestCase):
    def test_relative_file_paths_are_in_user_files(self):
        self.server.ok("INSERT INTO FUNCTION file('out.csv', 'CSV', 'a UInt8') VALUES (7)")
        with open(os.path.join(self.tmp, "data", "user_files", "out.csv")) as out:
            self.assertEqual(out.read(), "7\n")
        self.assertEqual(self.server.ok("SELECT * FROM file('out.csv', 'CSV', 'a UInt8')"), b"7\n")

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

    def test_memory_tables_keep_rows_between_requests(self):
        if self.version < (26, 0):
            self.skipTest("chdb 1.x-3.x give each request an engine of its own (chdb 3.x shares one session "
                          "among its connections): Memory tables (and other in-memory engines) keep their "
                          "definition but no rows between requests")
        self.server.ok("CREATE TABLE in_memory (a UInt32) ENGINE = Memory")
        self.server.ok("INSERT INTO in_memory VALUES (1), (2)")
        self.assertEqual(self.server.ok("SELECT count() FROM in_memory"), b"2\n")


class FreshSettingsTest(unittest.TestCase):
    """The settings a request starts with are a fresh engine's, whatever the data directory holds.

    chdb 3.7.2 (25.8) applies the SETTINGS clause of every view in metadata_dropped/
    to the settings of each opening of the engine, and the front opens it for
    every request: a view that `CREATE OR REPLACE VIEW` replaced and left there
    made migration 0001's `join_use_nulls = 1` reach every later request.  Here
    such a view is put in metadata_dropped/ as the engine leaves it.
    """

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="dev-clickhouse-fresh-")
        self.server = Server(os.path.join(self.tmp, "data"))

    def tearDown(self):
        self.server.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def setting(self, name):
        return self.server.ok(f"SELECT value FROM system.settings WHERE name = '{name}'").decode().strip()

    def test_settings_of_a_dropped_view_do_not_reach_requests(self):
        self.assertEqual(self.setting("join_use_nulls"), "0")
        self.server.ok("CREATE TABLE fresh_t (a String) ENGINE = MergeTree ORDER BY a")
        self.server.ok("CREATE VIEW fresh_v AS SELECT x.a AS a, y.a AS b FROM fresh_t AS x "
                       "LEFT JOIN fresh_t AS y ON x.a = y.a SETTINGS join_use_nulls = 1")
        uuid_text = self.server.ok("SELECT uuid FROM system.tables WHERE database = 'default' AND name = 'fresh_v'")
        metadata = os.path.join(os.path.realpath(os.path.join(self.server.data_dir, "metadata", "default")), "fresh_v.sql")
        with open(metadata, encoding="utf-8") as view:
            definition = view.read()
        self.assertIn("join_use_nulls = 1", definition)
        self.server.ok("DROP VIEW fresh_v SYNC")
        dropped = os.path.join(self.server.data_dir, "metadata_dropped")
        os.makedirs(dropped, exist_ok=True)
        with open(os.path.join(dropped, f"default.fresh_v.{uuid_text.decode().strip()}.sql"), "w", encoding="utf-8") as out:
            out.write(definition)
        for _ in range(3):
            self.assertEqual(self.setting("join_use_nulls"), "0")
        # A request's own settings still apply.
        self.assertEqual(self.server.ok("SELECT value FROM system.settings WHERE name = 'join_use_nulls'",
                                        join_use_nulls="1").decode().strip(), "1")


class JsonEnvelopeTest(unittest.TestCase):
    """Stitching the per-block JSON documents of the engine's streaming query, without a server."""

    HEAD = b'{\n\t"meta":\n\t[\n\t\t{\n\t\t\t"name": "x",\n\t\t\t"type": "String"\n\t\t}\n\t],\n\n\t"data":\n\t[\n'

    def block(self, rows, elapsed="0.000123"):
        data = ",\n".join(f"\t\t[{row}]" for row in rows).encode()
        return (self.HEAD + data + b'\n\t],\n\n\t"rows": %d,\n\n\t"statistics":\n\t{\n\t\t"elapsed": %s,'
                b'\n\t\t"rows_read": 0,\n\t\t"bytes_read": 0\n\t}\n}\n' % (len(rows), elapsed.encode()))

    def test_blocks_make_one_document(self):
        envelope = _JsonEnvelope()
        blocks = [['"a"', '"\\n\\t]"'], [], ['"c"']]  # (an empty block adds nothing)
        out = b"".join(envelope.part(self.block(rows)) for rows in blocks)
        out += envelope.end(1_500_000_000, 30, 240)
        whole = self.block(['"a"', '"\\n\\t]"', '"c"'], "1.5").replace(b'"rows_read": 0', b'"rows_read": 30')
        self.assertEqual(out, whole.replace(b'"bytes_read": 0', b'"bytes_read": 240'))

    def test_no_rows(self):
        envelope = _JsonEnvelope()
        out = envelope.part(self.block([])) + envelope.end(2_000_000, 0, 0)
        self.assertEqual(out, self.block([], "0.002"))
        self.assertIn(b'"data":\n\t[\n\n\t],', out)

    def test_blocks_that_do_not_fit_are_errors(self):
        envelope = _JsonEnvelope()
        envelope.part(self.block(['"a"']))
        with self.assertRaises(EngineError):
            envelope.part(self.block(['"b"']).replace(b'"x"', b'"y"'))  # other meta
        with self.assertRaises(EngineError):
            _JsonEnvelope().part(b"x\n")

    def test_float_text(self):
        for value, text in ((0.003330826, "0.003330826"), (12.5, "12.5"), (1.0, "1"), (0.13648122, "0.13648122"),
                            (0.00001234, "0.00001234")):
            self.assertEqual(_float_text(value), text)


class EngineOpeningTest(unittest.TestCase):
    """chdb 3.7.2 (25.8) now and then fails to open its engine with no reason given;
    the front, which opens it for every request, tries again. Any other failure to open
    it is the request's error at once. (The opening itself is replaced here: the
    failure cannot be brought about on purpose.)"""

    NO_REASON = "bgClickHouseLocal Code: 36. DB::Exception: Error running bgClickHouseLocal: . (BAD_ARGUMENTS)"

    def api(self, outcomes):
        api = ReopeningEngineAPI.__new__(ReopeningEngineAPI)
        api._conn_str, api._fresh, api.OPEN_PAUSES = "data", None, (0, 0, 0)
        calls = []

        def connect(conn_str):
            calls.append(conn_str)
            outcome = outcomes.pop(0)
            if isinstance(outcome, Exception):
                raise outcome
            return outcome

        api._connect = connect
        return api, calls

    def test_an_opening_that_fails_with_no_reason_is_tried_again(self):
        api, calls = self.api([RuntimeError(self.NO_REASON), RuntimeError(self.NO_REASON), "conn"])
        self.assertEqual(api.connect(), "conn")
        self.assertEqual(calls, ["data"] * 3)

    def test_it_is_tried_four_times_at_most(self):
        api, calls = self.api([RuntimeError(self.NO_REASON)] * 5)
        with self.assertRaises(EngineError) as raised:
            api.connect()
        self.assertIn("Error running bgClickHouseLocal", str(raised.exception))
        self.assertEqual(len(calls), 4)

    def test_a_failure_with_a_reason_is_not_tried_again(self):
        reason = "bgClickHouseLocal Code: 552. DB::Exception: Unrecognized option '--bogus=1'. (UNRECOGNIZED_ARGUMENTS)"
        api, calls = self.api([RuntimeError(reason), "conn"])
        with self.assertRaises(EngineError) as raised:
            api.connect()
        self.assertIn("Unrecognized option", str(raised.exception))
        self.assertEqual(len(calls), 1)
