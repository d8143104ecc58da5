#!/usr/bin/env python3
"""One month of the benchmark's kept data (database `rvbbit`, version 6 installed)
backfilled as `migrate` backfills it (the view's own query, the same settings) into
scratch tables (database `bf`, dropped at the end), two ways interleaved, ROUNDS rounds:

  backfill_month.py PORT merges [YYYYMM] [ROUNDS]
      Does the staging table gain from merging nothing? The staging table with its
      merges off (as shipped since `f49f964`) and with the engine's default merges. Each
      time: the INSERT's own time, the staging table's active parts after it, then the
      attach to a scratch copy of the state table and the merge of the month there
      (`OPTIMIZE ... FINAL`, which merges whatever the table's settings say).

  backfill_month.py PORT order [YYYYMM] [ROUNDS]
      What does writing a month in time order cost, and what does it give Studio's
      grid before the month's parts merge? The month in the log's order (as shipped
      until `ea54ce6`) and with `ORDER BY timestamp` at the end of the SELECT, the sort
      spilling past an eighth of the cap as shipped since, merges off. Each time: the INSERT's own time,
      the parts it left (as shipped each covers the whole month; ordered, each a slice
      of it), and the grid's state-table half (`FINAL ... ORDER BY timestamp DESC LIMIT
      100`) read over them.
"""
import http.client
import json
import sys
import time
import urllib.parse

if len(sys.argv) < 3 or sys.argv[2] not in ("merges", "order"):
    sys.exit(__doc__)
PORT = int(sys.argv[1])
WHAT = sys.argv[2]
MONTH = int(sys.argv[3]) if len(sys.argv) > 3 else 202608
ROUNDS = int(sys.argv[4]) if len(sys.argv) > 4 else 2
c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=3600)


def q(sql, db="rvbbit", settings=None):
    args = {"database": db}
    args.update(settings or {})
    c.request("POST", "/?" + urllib.parse.urlencode(args), body=sql.encode())
    r = c.getresponse()
    d = r.read()
    if r.status != 200:
        raise RuntimeError(d.decode()[:600])
    return d.decode()


def one(sql, db="rvbbit"):
    return json.loads(q(sql + " FORMAT JSONCompact", db))["data"][0][0]


view = one("SELECT as_select FROM system.tables WHERE database='rvbbit' AND name='training_examples_current_by_log_mv'")
ddl = one("SHOW CREATE TABLE training_examples_current").replace("rvbbit.training_examples_current", "bf.t")
cols = ("timestamp, trace_id, session_id, cascade_id, cell_name, species_hash, user_input, assistant_output, "
        "model, cost, tokens_in, tokens_out, duration_ms, caller_id, node_type, trainable, verified, confidence, "
        "notes, tags, annotated_at, annotated_by, version, captured_at")
# the settings of migrate's backfill statements (training-plugin/src/examples.rs)
S = {"max_block_size": "8192", "min_insert_block_size_rows": "262144",
     "min_insert_block_size_bytes": str(64 << 20), "max_memory_usage": str(2 << 30),
     "max_insert_threads": "2"}
OFF = "max_bytes_to_merge_at_max_space_in_pool = 1, max_bytes_to_merge_at_min_space_in_pool = 1"
n = int(one(f"SELECT count() FROM training_examples_current WHERE toYYYYMM(timestamp) = {MONTH}"))
print(f"month {MONTH}: {n:,} examples; rounds: {ROUNDS}", flush=True)
GRID = ("SELECT trace_id, session_id, cascade_id, cell_name, user_input, assistant_output, trainable, verified, "
        "confidence, timestamp, model, cost, caller_id FROM bf.t FINAL WHERE NOT trainable "
        "AND LENGTH(assistant_output) > 0 ORDER BY timestamp DESC LIMIT 100 "
        "SETTINGS do_not_merge_across_partitions_select_final = 1, use_skip_indexes_if_final = 1 FORMAT Null")


def active_parts(table):
    return int(one(f"SELECT count() FROM system.parts WHERE database = 'bf' AND table = '{table}' AND active",
                   "default"))


def merges(rnd, merges):
    """The month staged with the staging table's merges `off` or `default`."""
    for t in ("bf.t", "bf.s"):
        q(f"DROP TABLE IF EXISTS {t} SYNC", "default")
    q(ddl, "default")
    q("CREATE TABLE bf.s AS bf.t", "default")
    if merges == "off":
        q(f"ALTER TABLE bf.s MODIFY SETTING {OFF}", "default")
    w = time.time()
    q(f"INSERT INTO bf.s ({cols}) SELECT {cols} FROM ({view}) WHERE toYYYYMM(timestamp) = {MONTH} "
      f"AND trace_id NOT IN (SELECT trace_id FROM bf.t WHERE toYYYYMM(timestamp) = {MONTH})", settings=S)
    ins = time.time() - w
    parts = active_parts("s")
    w = time.time()
    q(f"ALTER TABLE bf.t ATTACH PARTITION {MONTH} FROM bf.s", "default")
    att = time.time() - w
    w = time.time()
    q(f"OPTIMIZE TABLE bf.t PARTITION {MONTH} FINAL", "default")
    mrg = time.time() - w
    got = int(one("SELECT count() FROM bf.t", "default"))
    print(f"round {rnd} merges {merges:7}  insert {ins:5.1f} s = {n / ins:,.0f} examples/s, "
          f"{parts} parts; attach {att:.2f} s; merge of the month {mrg:5.1f} s; {got:,} rows", flush=True)


def order(rnd, name):
    """The month written as shipped or in time order, then the grid's half over it."""
    q("DROP TABLE IF EXISTS bf.t SYNC", "default")
    q(ddl, "default")
    q(f"ALTER TABLE bf.t MODIFY SETTING {OFF}", "default")
    suffix = " ORDER BY timestamp" if name == "ORDER BY timestamp" else ""
    settings = dict(S)
    if suffix:
        settings["max_bytes_before_external_sort"] = str(256 << 20)
        if int(one("SELECT count() FROM system.settings WHERE name = 'max_bytes_ratio_before_external_sort'")):
            settings["max_bytes_ratio_before_external_sort"] = "0"
    w = time.time()
    q(f"INSERT INTO bf.t ({cols}) SELECT {cols} FROM ({view}) WHERE toYYYYMM(timestamp) = {MONTH}{suffix}",
      settings=settings)
    ins = time.time() - w
    parts = active_parts("t")
    times = []
    for _ in range(5):
        w = time.time()
        q(GRID, "rvbbit")
        times.append(time.time() - w)
    times.sort()
    print(f"round {rnd} {name:19} insert {ins:5.2f} s = {n / ins:,.0f} examples/s, {parts} parts; "
          f"grid's state-table half {times[2] * 1000:.1f} ms (median of 5)", flush=True)


q("DROP DATABASE IF EXISTS bf", "default")
q("CREATE DATABASE bf", "default")
for rnd in range(ROUNDS):
    if WHAT == "merges":
        for way in ("off", "default"):
            merges(rnd, way)
    else:
        for way in ("log order", "ORDER BY timestamp"):
            order(rnd, way)
q("DROP DATABASE IF EXISTS bf", "default")
