"""Compression and framing of request and response bodies.

HTTP Content-Encoding (gzip, deflate, br, zstd, lz4, xz, bz2, snappy) decoded whole,
every frame, member or stream that ClickHouse's readers take, with their errors;
ClickHouse's own compressed blocks (`compress=1`, `decompress=1`: checksum, header,
LZ4/ZSTD/NONE) both ways; and the choice of a response encoding.
"""

import bz2
import gzip
import lzma
import re
import struct
import zlib

import brotli
import lz4.block
import lz4.frame
import zstandard
from clickhouse_cityhash.cityhash import CityHash128


# A request body is decoded completely, and before anything of it runs, the way
# ClickHouse's read buffers decode it: every frame, member or stream one after
# another where ClickHouse reads on after the end of one, an error where it
# does not, and an error for anything that is not part of the format (trailing
# bytes, a corrupt frame).  One deliberate difference: ClickHouse's LZ4 and
# zstd readers hand on what they decoded when the body ends inside a frame
# (an insert would store the rows decoded so far); here such a body is
# refused with the reader's error, since the rows after the cut are lost.

class BodyError(Exception):
    """A body that cannot be decoded: ClickHouse's error name and message."""

    def __init__(self, name, message):
        super().__init__(message)
        self.name = name
        self.message = message


class _Undecodable(Exception):
    """Raised by _frames(): the codec's own message, or None if the data ends inside a frame."""


def _frames(data, new_decoder, errors):
    """The output of all frames of `data`, decoded one after another.

    new_decoder() returns a decoder of one frame (decompress(), eof,
    unused_data); `errors` is what its decompress() raises on bad data.
    """
    out = []
    rest = data
    while rest:
        decoder = new_decoder()
        try:
            out.append(decoder.decompress(rest))
        except errors as exc:
            raise _Undecodable(str(exc)) from None
        if not decoder.eof:
            raise _Undecodable(None)
        rest = decoder.unused_data or b""
    return b"".join(out)


_ZLIB_ERRORS = {-2: "stream error", -3: "data error", -4: "insufficient memory", -5: "buffer error",
                -6: "incompatible version"}


def inflate(data, wbits):
    """gzip (wbits 31) or deflate (15): ZlibInflatingReadBuffer starts a new
    stream after each one (inflateReset), so members follow one another and
    anything else after one (garbage, zero padding) is bad data."""
    if not data:  # inflate() without input
        raise BodyError("ZLIB_INFLATE_FAILED", "inflate failed: buffer error")
    try:
        return _frames(data, lambda: zlib.decompressobj(wbits), zlib.error)
    except _Undecodable as exc:
        code = re.match(r"Error (-?\d+)", exc.args[0] or "")
        reason = _ZLIB_ERRORS.get(int(code.group(1)), "unknown error") if code else "buffer error"
        raise BodyError("ZLIB_INFLATE_FAILED", f"inflate failed: {reason}") from None


def lz4_frames(data):
    """LZ4 frames (and skippable frames) one after another, as LZ4F_decompress reads them."""
    try:
        return _frames(data, lz4.frame.LZ4FrameDecompressor, RuntimeError)
    except _Undecodable as exc:
        # python-lz4 says "LZ4F_decompress failed with code: ERROR_frameType_unknown".
        reason = exc.args[0].rpartition(": ")[2] if exc.args[0] else "the data ends inside a frame"
        raise BodyError("LZ4_DECODER_FAILED",
                        f"LZ4 decompression failed. LZ4F version: 100. Error: {reason}") from None


def zstd_frames(data):
    """zstd frames (and skippable frames) one after another, as ZSTD_decompressStream reads them."""
    try:
        return _frames(data, lambda: zstandard.ZstdDecompressor().decompressobj(), zstandard.ZstdError)
    except _Undecodable as exc:
        reason = (re.sub(r"^zstd decompressor error: ", "", exc.args[0]) if exc.args[0]
                  else "the data ends inside a frame")
        hint = (". You can increase the maximum window size with the 'zstd_window_log_max' setting in "
                "ClickHouse. Example: 'SET zstd_window_log_max = 31'" if "too much memory" in reason else "")
        version = ".".join(map(str, zstandard.ZSTD_VERSION))
        raise BodyError("ZSTD_DECODER_FAILED",
                        f"ZSTD stream decoding failed: error '{reason}'{hint}; ZSTD version: {version}") from None


def brotli_stream(data):
    """One brotli stream: BrotliReadBuffer reads no second one, nor anything after it."""
    try:
        return brotli.decompress(data)
    except brotli.error:
        raise BodyError("BROTLI_READ_FAILED", "brotli decode error") from None


_LZMA_ERRORS = {
    "Input format not supported by decoder": "LZMA_FORMAT_ERROR", "Corrupt input data": "LZMA_DATA_ERROR",
    "Invalid or unsupported options": "LZMA_OPTIONS_ERROR", "Memory usage limit exceeded": "LZMA_MEMLIMIT_ERROR",
    "Unsupported integrity check": "LZMA_UNSUPPORTED_CHECK", "Insufficient buffer space": "LZMA_BUF_ERROR",
}


def xz_streams(data):
    """xz streams one after another, with stream padding (zero bytes in fours)
    between and after them: lzma_stream_decoder(LZMA_CONCATENATED), 500 MiB
    memory limit, as LZMAInflatingReadBuffer reads them."""
    def error(name):
        return BodyError("LZMA_STREAM_DECODER_FAILED", f"lzma_stream_decoder failed: error code: error code {name}")

    out = []
    rest = data
    while True:
        decoder = lzma.LZMADecompressor(lzma.FORMAT_XZ, memlimit=500 << 20)
        try:
            out.append(decoder.decompress(rest))
        except lzma.LZMAError as exc:
            raise error(_LZMA_ERRORS.get(str(exc), str(exc))) from None
        if not decoder.eof:
            raise error("LZMA_BUF_ERROR")
        rest = decoder.unused_data
        padding = len(rest) - len(rest.lstrip(b"\0"))
        if padding % 4:
            raise error("LZMA_DATA_ERROR")
        rest = rest[padding:]
        if not rest:
            return b"".join(out)


def bzip2_stream(data):
    """One bzip2 stream: Bzip2ReadBuffer refuses anything after its end."""
    decoder = bz2.BZ2Decompressor()
    try:
        out = decoder.decompress(data)
    except OSError:
        code = -4 if re.match(rb"BZh[1-9]", data[:4]) else -5  # BZ_DATA_ERROR, BZ_DATA_ERROR_MAGIC
        raise BodyError("BZIP2_STREAM_DECODER_FAILED", f"bzip2 stream decoder failed: error code: {code}") from None
    if not decoder.eof:
        raise BodyError("UNEXPECTED_END_OF_FILE", "Unexpected end of bzip2 archive")
    if decoder.unused_data:
        raise BodyError("BZIP2_STREAM_DECODER_FAILED",
                        "bzip2 decoder finished, but input stream has not exceeded: error code: 4")
    return out


def snappy_raw(data):
    """One raw snappy block (the format of snappy_uncompress); ValueError if malformed."""
    size, shift, pos = 0, 0, 0
    while True:  # the uncompressed length, a varint
        if pos >= len(data) or shift > 28:
            raise ValueError("bad length")
        byte = data[pos]
        pos += 1
        size |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            break
    out = bytearray()
    while pos < len(data):
        tag = data[pos]
        pos += 1
        kind = tag & 3
        if kind == 0:  # a literal
            length = tag >> 2
            if length >= 60:
                extra = length - 59
                if pos + extra > len(data):
                    raise ValueError("truncated literal length")
                length = int.from_bytes(data[pos:pos + extra], "little")
                pos += extra
            length += 1
            if pos + length > len(data):
                raise ValueError("truncated literal")
            out += data[pos:pos + length]
            pos += length
        else:  # a copy of earlier output
            extra = (1, 2, 4)[kind - 1]
            if pos + extra > len(data):
                raise ValueError("truncated copy")
            if kind == 1:
                length = ((tag >> 2) & 7) + 4
                offset = ((tag >> 5) << 8) | data[pos]
            else:
                length = (tag >> 2) + 1
                offset = int.from_bytes(data[pos:pos + extra], "little")
            pos += extra
            if offset == 0 or offset > len(out):
                raise ValueError("bad copy offset")
            start = len(out) - offset
            if offset >= length:
                out += out[start:start + length]
            else:  # the copy overlaps its own output: a repeated pattern
                out += (out[start:] * (length // offset + 1))[:length]
        if len(out) > size:
            raise ValueError("output longer than announced")
    if len(out) != size:
        raise ValueError("output shorter than announced")
    return bytes(out)


DBMS_DEFAULT_BUFFER_SIZE = 1 << 20  # the buffer of HadoopSnappyReadBuffer


def hadoop_snappy(data):
    """Hadoop's snappy framing, as HadoopSnappyReadBuffer reads it: blocks of
    a big-endian uncompressed length and snappy chunks, each a big-endian
    compressed length and a raw snappy block, up to that length."""
    def error(status):
        return BodyError("SNAPPY_UNCOMPRESS_FAILED", f"hadoop snappy decode error: {status}")

    def length(at):  # the decoder keeps lengths in a signed 32-bit int
        if at + 4 > len(data):
            raise error("NEEDS_MORE_INPUT")
        return int.from_bytes(data[at:at + 4], "big", signed=True)

    out = []
    pos = 0
    while pos < len(data):
        block_length = length(pos)
        pos += 4
        produced = 0
        while produced < block_length:
            compressed_length = length(pos)
            pos += 4
            if compressed_length <= 0:
                raise error("INVALID_INPUT")
            if compressed_length > DBMS_DEFAULT_BUFFER_SIZE:
                raise BodyError("SNAPPY_UNCOMPRESS_FAILED", (
                    f"Too large snappy compressed block. buffer size: {DBMS_DEFAULT_BUFFER_SIZE}, "
                    f"compressed block size: {compressed_length}"))
            if pos + compressed_length > len(data):
                raise error("NEEDS_MORE_INPUT")
            try:
                chunk = snappy_raw(data[pos:pos + compressed_length])
            except ValueError:
                raise error("INVALID_INPUT") from None
            pos += compressed_length
            out.append(chunk)
            produced += len(chunk)
        if produced != block_length:
            raise error("INVALID_INPUT")
    return b"".join(out)


CHECKSUM_SIZE = 16
BLOCK_HEADER = struct.Struct("<BII")  # method, compressed size incl. header, raw size
METHOD_NONE, METHOD_LZ4, METHOD_ZSTD = 0x02, 0x82, 0x90


# Method bytes of ClickHouse's other codecs (CompressionMethodByte): known to the
# server, not decoded here.
OTHER_METHODS = {0x91: "Multiple", 0x92: "Delta", 0x93: "T64", 0x94: "DoubleDelta", 0x95: "Gorilla",
                 0x96: "AES_128_GCM_SIV", 0x97: "AES_256_GCM_SIV", 0x98: "FPC", 0x99: "DeflateQpl",
                 0x9a: "GCD", 0x9b: "ZSTD_QPL"}
COMPRESS_BLOCK_SIZE = 1 << 20
MAX_COMPRESSED_SIZE = 1 << 30  # DBMS_MAX_COMPRESSED_SIZE
MASK64 = (1 << 64) - 1


def block_checksum(block):
    """CityHash128 v1.0.2 of header + payload, as ClickHouse stores it.

    ClickHouse writes the hash's (first, second) 64-bit halves little-endian;
    this binding returns them as one integer with `first` in the high bits.
    """
    value = CityHash128(block)
    return struct.pack("<QQ", value >> 64, value & MASK64)


def compress_blocks(data):
    out = []
    for start in range(0, len(data), COMPRESS_BLOCK_SIZE):
        raw = data[start:start + COMPRESS_BLOCK_SIZE]
        payload = lz4.block.compress(raw, store_size=False)
        block = BLOCK_HEADER.pack(METHOD_LZ4, BLOCK_HEADER.size + len(payload), len(raw)) + payload
        out += [block_checksum(block), block]
    return b"".join(out)


def decompress_blocks(data, verify_checksums):
    """Every block of a body in ClickHouse's compressed format, as the HTTP
    handler's CompressedReadBuffer reads it (all blocks of one method)."""
    out = []
    pos = 0
    method_of_body = None
    while pos < len(data):
        head = CHECKSUM_SIZE + BLOCK_HEADER.size
        if len(data) - pos < head:
            raise BodyError("CANNOT_READ_ALL_DATA",
                            f"Cannot read all data. Bytes read: {len(data) - pos}. Bytes expected: {head}.")
        checksum = data[pos:pos + CHECKSUM_SIZE]
        method, size, raw_size = BLOCK_HEADER.unpack_from(data, pos + CHECKSUM_SIZE)
        if method not in (METHOD_NONE, METHOD_LZ4, METHOD_ZSTD) and method not in OTHER_METHODS:
            raise BodyError("UNKNOWN_CODEC", f"Unknown codec family code: {method}")
        if method_of_body is not None and method != method_of_body:
            raise BodyError("CANNOT_DECOMPRESS", (
                f"Data compressed with different methods, given method byte 0x{method:02x}, "
                f"previous method byte 0x{method_of_body:02x}"))
        method_of_body = method
        if size > MAX_COMPRESSED_SIZE:
            raise BodyError("TOO_LARGE_SIZE_COMPRESSED",
                            f"Too large size_compressed_without_checksum: {size}. Most likely corrupted data.")
        if size < BLOCK_HEADER.size:
            raise BodyError("CORRUPTED_DATA", (
                f"Can't decompress data: the compressed data size ({size}, this should include header size) "
                f"is less than the header size ({BLOCK_HEADER.size})"))
        block = data[pos + CHECKSUM_SIZE:pos + CHECKSUM_SIZE + size]
        if len(block) < size:
            raise BodyError("CANNOT_READ_ALL_DATA", (
                f"Cannot read all data. Bytes read: {len(block) - BLOCK_HEADER.size}. "
                f"Bytes expected: {size - BLOCK_HEADER.size}."))
        if verify_checksums and block_checksum(block) != checksum:
            reference, actual = struct.unpack("<QQ", checksum), struct.unpack("<QQ", block_checksum(block))
            raise BodyError("CHECKSUM_DOESNT_MATCH", (
                f"Checksum doesn't match: corrupted data. Reference: {reference[0]:016x}{reference[1]:016x}. "
                f"Actual: {actual[0]:016x}{actual[1]:016x}. Size of compressed block: {size}"))
        payload = block[BLOCK_HEADER.size:]
        if method == METHOD_NONE:
            out.append(payload)  # the server takes the payload as it is
        elif method == METHOD_LZ4:
            try:
                raw = lz4.block.decompress(payload, uncompressed_size=raw_size)
            except lz4.block.LZ4BlockError:
                raw = None
            if raw is None or len(raw) != raw_size:
                raise BodyError("CANNOT_DECOMPRESS", "Cannot decompress LZ4-encoded data")
            out.append(raw)
        elif method == METHOD_ZSTD:
            try:
                raw = zstd_frames(payload)  # ZSTD_decompress reads every frame of the block
            except BodyError as exc:
                reason = re.search(r"error '(.*)'", exc.message).group(1)
                raise BodyError("CANNOT_DECOMPRESS", f"Cannot decompress ZSTD-encoded data: {reason}") from None
            if len(raw) > raw_size:
                raise BodyError("CANNOT_DECOMPRESS",
                                "Cannot decompress ZSTD-encoded data: Destination buffer is too small")
            if len(raw) < raw_size:
                raise BodyError("CANNOT_DECOMPRESS", (
                    f"Cannot decompress ZSTD-encoded data: the block decodes to {len(raw)} bytes, "
                    f"its header says {raw_size}"))
            out.append(raw)
        else:
            raise BodyError("NOT_IMPLEMENTED", (
                f"Blocks compressed with codec {OTHER_METHODS[method]} (method byte 0x{method:02x}) are not "
                "decoded by this local server: send LZ4, ZSTD or NONE blocks"))
        pos += CHECKSUM_SIZE + size
    return b"".join(out)


# name -> encode(data, level), for responses (Accept-Encoding)
HTTP_ENCODERS = {
    "zstd": lambda d, lvl: zstandard.ZstdCompressor(level=lvl).compress(d),
    "br": lambda d, lvl: brotli.compress(d, quality=min(max(lvl, 0), 11)),
    "lz4": lambda d, lvl: lz4.frame.compress(d, compression_level=lvl),
    "gzip": lambda d, lvl: gzip.compress(d, compresslevel=min(max(lvl, 0), 9), mtime=0),
    "deflate": lambda d, lvl: zlib.compress(d, min(max(lvl, 0), 9)),
    "xz": lambda d, lvl: lzma.compress(d, preset=min(max(lvl, 0), 9)),
    "bz2": lambda d, lvl: bz2.compress(d, min(max(lvl, 1), 9)),
}


class StreamEncoder:
    """An HTTP Content-Encoding of a body sent in parts, as the server's compressing write
    buffers make it: encode() takes each part and returns what the compressor has ready
    (nothing is flushed between parts), finish() ends the stream.  The parts decompress,
    together, to what HTTP_ENCODERS makes of the whole body (the compressed bytes differ:
    a zstd or lz4 frame of a stream does not announce its content size)."""

    def __init__(self, name, level):
        start = b""
        if name in ("gzip", "deflate"):
            compressor = zlib.compressobj(min(max(level, 0), 9), zlib.DEFLATED, 31 if name == "gzip" else 15)
            self._encode, self._finish = compressor.compress, compressor.flush
        elif name == "zstd":
            compressor = zstandard.ZstdCompressor(level=level).compressobj()
            self._encode, self._finish = compressor.compress, compressor.flush
        elif name == "br":
            compressor = brotli.Compressor(quality=min(max(level, 0), 11))
            self._encode, self._finish = compressor.process, compressor.finish
        elif name == "lz4":
            compressor = lz4.frame.LZ4FrameCompressor(compression_level=level)
            start = compressor.begin()
            self._encode, self._finish = compressor.compress, compressor.flush
        elif name == "xz":
            compressor = lzma.LZMACompressor(preset=min(max(level, 0), 9))
            self._encode, self._finish = compressor.compress, compressor.flush
        elif name == "bz2":
            compressor = bz2.BZ2Compressor(min(max(level, 1), 9))
            self._encode, self._finish = compressor.compress, compressor.flush
        else:
            raise ValueError(f"no stream encoder for {name}")
        self._start = start
        self.finished = False

    def encode(self, data):
        out = self._start + (self._encode(data) if data else b"")
        self._start = b""
        return out

    def finish(self):
        """The end of the stream (once; then nothing)."""
        if self.finished:
            return b""
        self.finished = True
        return self._start + self._finish()


# ClickHouse's preference when several are accepted (snappy is not offered here).
HTTP_PREFERENCE = ("zstd", "br", "lz4", "gzip", "deflate", "xz", "bz2")


# Content-Encoding of a request (lower-cased) -> decoder, as chooseCompressionMethod names them.
HTTP_DECODERS = {
    "gzip": lambda d: inflate(d, 31), "gz": lambda d: inflate(d, 31),
    "deflate": lambda d: inflate(d, 15),
    "br": brotli_stream, "brotli": brotli_stream,
    "xz": xz_streams, "lzma": xz_streams,
    "zstd": zstd_frames, "zst": zstd_frames,
    "lz4": lz4_frames,
    "bz2": bzip2_stream,
    "snappy": hadoop_snappy,
}


# Since ClickHouse 26.3 an empty compressed body is an empty body (26.4 for bzip2);
# before, the gzip, deflate, brotli, xz and bzip2 readers fail on it.
EMPTY_BODY_IS_EMPTY_SINCE = (26, 3)
EMPTY_BZIP2_BODY_IS_EMPTY_SINCE = (26, 4)


# Since 26.x `NONE` or `Auto` (any case) means no compression; before, only `none` and `auto`.
ANY_CASE_NONE_SINCE = (26, 0)


def choose_response_encoding(accept_encoding):
    # Substring matching, exactly like ClickHouse's chooseHTTPCompressionMethod.
    for name in HTTP_PREFERENCE:
        if name in accept_encoding:
            return name
    return None


def decode_request_body(engine, content_encoding, data):
    """The request body decoded whole (Content-Encoding), or ClickHouse's error."""
    method = content_encoding.lower()
    plain = ("", "auto", "none")
    if (method if engine.version_tuple >= ANY_CASE_NONE_SINCE else content_encoding) in plain:
        return data
    decode = HTTP_DECODERS.get(method)
    if decode is None:
        raise engine.error("NOT_IMPLEMENTED", (
            f"Unknown compression method '{content_encoding}'. Only 'auto', 'none', 'gzip', 'deflate', "
            "'br', 'xz', 'zstd', 'lz4', 'bz2', 'snappy' are supported as compression methods"))
    if not data and engine.version_tuple >= (
            EMPTY_BZIP2_BODY_IS_EMPTY_SINCE if method == "bz2" else EMPTY_BODY_IS_EMPTY_SINCE):
        return data
    try:
        return decode(data)
    except BodyError as exc:
        raise engine.error(exc.name, exc.message) from None
