"""Tests of compression and framing (compression.py): ClickHouse's compressed blocks both
ways and their checksums, HTTP Content-Encoding, every frame of a body, bodies that
do not decode, and the encoders of streamed responses (StreamEncoderTest, no server).
"""

import bz2
import gzip
import json
import lzma
import os
import struct
import unittest
import zlib

import brotli
import lz4.block
import lz4.frame
import zstandard

from .compression import HTTP_ENCODERS, StreamEncoder
from .testing import (
    ServerTestCase,
    hadoop_snappy,
    native_block,
    native_compress,
    native_decompress,
    row_binary_string,
)


class CompressionTest(ServerTestCase):
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


class StreamEncoderTest(unittest.TestCase):
    """StreamEncoder without a server: parts in, one stream out, as the whole body's encoding."""

    DECODE = {
        "gzip": lambda d: zlib.decompressobj(31).decompress(d),
        "deflate": zlib.decompress,
        "br": brotli.decompress,
        "zstd": lambda d: zstandard.ZstdDecompressor().decompressobj().decompress(d),
        "lz4": lz4.frame.decompress,
        "xz": lzma.decompress,
        "bz2": bz2.decompress,
    }

    def test_parts_decode_to_the_whole(self):
        parts = [os.urandom(3000) + b"row\t%d\n" % i * 20000 for i in range(4)] + [b"", b"end\n"]
        whole = b"".join(parts)
        self.assertEqual(set(self.DECODE), set(HTTP_ENCODERS))
        for name, decode in self.DECODE.items():
            for level in (1, 3, 20, -5):
                with self.subTest(name=name, level=level):
                    encoder = StreamEncoder(name, level)
                    body = b"".join(encoder.encode(part) for part in parts) + encoder.finish()
                    self.assertEqual(decode(body), whole)
                    self.assertEqual(encoder.finish(), b"")  # once
                    self.assertEqual(decode(HTTP_ENCODERS[name](whole, level)), whole)

    def test_empty_stream(self):
        for name, decode in self.DECODE.items():
            with self.subTest(name=name):
                encoder = StreamEncoder(name, 3)
                self.assertEqual(decode(encoder.encode(b"") + encoder.finish()), b"")
