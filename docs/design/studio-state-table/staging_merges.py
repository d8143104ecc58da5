#!/usr/bin/env python3
"""Does the staging table gain from merging nothing? One month of the benchmark's kept
data (database `rvbbit`, version 6 installed) backfilled as `migrate` backfills it (the
view's own query, the same settings) into a scratch staging table (database `bf`,
dropped at the end), once with the staging table's merges off (as shipped since
`f49f964`) and once with the engine's default merges, interleaved, ROUNDS rounds. Each
time: the INSERT's own time, the staging table's active parts after it, then the
attach to a scratch copy of the state table and the merge of the month there
(`OPTIMIZE ... FINAL`, which merges whatever the table's settings say).

  staging_merges.py PORT [YYYYMM] [ROUNDS]
"""
import http.client
import json
import sys
import time
import urllib.parse

PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 8123
MONTH = int(sys.argv[2]) if len(sys.argv) > 2 else 202608
ROUNDS = int(sys.argv[3]) if len(sys.argv) > 3 else 2
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
q("DROP DATABASE IF EXISTS bf", "default")
q("CREATE DATABASE bf", "default")
for rnd in range(ROUNDS):
    for merges in ("off", "default"):
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
        parts = int(one("SELECT count() FROM system.parts WHERE database = 'bf' AND table = 's' AND active", "default"))
        w = time.time()
        q(f"ALTER TABLE bf.t ATTACH PARTITION {MONTH} FROM bf.s", "default")
        att = time.time() - w
        w = time.time()
        q(f"OPTIMIZE TABLE bf.t PARTITION {MONTH} FINAL", "default")
        mrg = time.time() - w
        got = int(one("SELECT count() FROM bf.t", "default"))
        print(f"round {rnd} merges {merges:7}  insert {ins:5.1f} s = {n / ins:,.0f} examples/s, "
              f"{parts} parts; attach {att:.2f} s; merge of the month {mrg:5.1f} s; {got:,} rows", flush=True)
q("DROP DATABASE IF EXISTS bf", "default")
