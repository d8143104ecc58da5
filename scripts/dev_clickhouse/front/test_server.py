"""Tests of the server process (server.py) through scripts/dev-clickhouse: data across
restarts, stop and status by port, and the exit when the parent process is gone.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

from . import testing
from .testing import SCRIPT, Server, free_port


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
        engine = ["--engine", testing.ENGINE] if testing.ENGINE else ["--venv", sys.prefix]
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
