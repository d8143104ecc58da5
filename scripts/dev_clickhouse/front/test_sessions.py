"""Tests of HTTP sessions (sessions.py): what a session keeps, its timeout, session_check,
close_session, and its lock.
"""

import time
import urllib.parse
import uuid

from .testing import ServerTestCase


class SessionTest(ServerTestCase):
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
