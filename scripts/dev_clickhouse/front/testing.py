"""What the tests of the front share: Server, a server process started with
`scripts/dev-clickhouse serve` on a free port and a temporary data directory (with the
engine of ENGINE, or of this Python's virtualenv), ServerTestCase, tests against one
server of their own, and encoders of ClickHouse's compressed blocks and snappy.
"""

import http.client
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

import lz4.block
import lz4.frame
import zstandard
from clickhouse_cityhash.cityhash import CityHash128


SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir, "dev-clickhouse")


ERROR_BODY = re.compile(r"^Code: (\d+)\. DB::Exception: .*\((\w+)\) \(version \d+(\.\d+)+\)\n$", re.S)


# The ClickHouse version to test (scripts/dev-clickhouse --engine), or None:
# the engine of this Python's virtualenv.
# (Read it as testing.ENGINE: test_server.py sets it from --engine after this module is imported.)
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


class ServerTestCase(unittest.TestCase):
    """Tests against one server of their own, started for the class."""

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
