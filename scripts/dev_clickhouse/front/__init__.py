"""Local ClickHouse HTTP server for development and tests.

The SQL engine is the real ClickHouse engine, embedded in-process through the
`chdb` module of the `chdb-core` package (ClickHouse 26.9), or of an older
`chdb` release (23.10, 24.8, 25.8; see engines/).  This package only
implements the HTTP front: it follows ClickHouse's own HTTP handler (URL
`query` + body, settings and `param_*` URL parameters, multipart forms,
authentication, native and HTTP compression, error codes and statuses,
response headers) closely enough that ClickHouse clients such as the Rust
`clickhouse` crate and curl work against it unchanged.

How requests map onto the engine:

* Every request runs in a fresh engine session on the data directory.  URL
  settings are applied with `SET name = '<value>'` in that session, so they
  apply to this one query and vanish with it; the engine itself validates
  names and values (UNKNOWN_SETTING, parse errors, readonly rules).  HTTP
  sessions (`session_id`): see SessionStore and NamedSession (26.x keeps an
  engine connection per session; older engines replay its SET and USE
  statements).  `database` and `default_format` are settings in 26.x;
  for older engines they are the handler's own parameters (`USE`, the output
  format), as in servers of those versions.
* `param_<name>` values go to the engine's `params=` argument, or (engines
  without it) to `SET param_<name> = '<value>'`; they are never spliced into
  the statement.
* The request body is decoded whole before anything runs (Content-Encoding,
  then `decompress=1` blocks): every frame, member or stream that ClickHouse's
  readers take; a body that does not decode is refused with their error, and
  nothing of it is stored (see compression.py).
* The statement is what ClickHouse would parse: the URL `query`, a line break
  and the (decompressed) request body.  Before it runs, the engine's own
  parser checks it (formatQuery): one statement only, no INTO OUTFILE, and
  its FORMAT clause.  For an INSERT with inline data, the data starts where
  ClickHouse's INSERT parser starts it (after `FORMAT <name>` and one line
  break, or at `VALUES`); the statement head and the data bytes reach the
  engine binary-safe: through its streaming insert (`send_insert`, 26.x) or
  as a file read with `INSERT ... FROM INFILE` (older engines).  (The
  engines' plain `query()` would end inline data at the first empty line, as
  their multi-statement client does.)
* Requests run at once on 26.x (a connection each; the engine releases the
  GIL and has one process list, so KILL QUERY works across requests); on older
  engines one at a time, behind one lock.  A SELECT result past the response
  buffer is sent as the engine produces it (26.x and 25.8, the releases with a
  streaming query: see engines/streaming.py; on 25.8 the engine's lock is held
  until the result is out): HTTP-compressed as it goes (compression.StreamEncoder),
  in a session too (locked until it is sent), and in the JSON formats as one
  document stitched from the engine's per-block documents.
* Relative paths of file() resolve in <data dir>/user_files, as in a server.

Modules, in the order a request meets them:

  server.py       the process: socket (HTTP/HTTPS), threads, signals, start-up and
                  shutdown, the command line (main)
  protocol.py     ClickHouse's HTTP interface (Handler): parsing requests, settings,
                  parameters, authentication, routing, answering (headers, errors)
  compression.py  compression and framing: HTTP Content-Encoding, ClickHouse's
                  compressed blocks, the other body codecs
  sessions.py     HTTP sessions (session_id) and their store
  execution.py    the engine, whatever its release: Engine, QueryJob, progress,
                  cancellation
  engines/        the engine adapters, one module per chdb release (base.py: their
                  interface)
  sql.py, params.py, errors.py
                  statement text, parameter pairs, ClickHouseError

Tests: test_<module>.py beside each module, run together by
scripts/dev_clickhouse/test_server.py (see its docstring).
scripts/dev_clickhouse/server.py is the entry point scripts/dev-clickhouse runs;
`python scripts/dev_clickhouse/server.py --help` prints the command line.
"""
