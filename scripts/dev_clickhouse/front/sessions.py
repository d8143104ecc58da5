"""HTTP sessions (`session_id`): NamedSession, the engine session that a session's
requests share (kept open on 26.x, replayed on older engines), and SessionStore, which
finds, locks, times out and closes them as ClickHouse's session registry does.
"""

import re
import sys
import threading
import time

from .params import first_value


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
