#!/usr/bin/env python3
"""The settings of one backfill statement, compared: one month of the benchmark's kept
data (database `rvbbit`, the schema installed), written as `migrate` writes it (the
log's view's own query joined with the month's latest annotations) into a scratch copy
of the state table (database `bf`, dropped at the end), with the settings `migrate`
used before `max_insert_threads = 2`, with it, and with it and 65,536-row blocks.
The rounds are interleaved; read the medians.

  backfill_settings.py PORT YYYYMM [ROUNDS]
"""
import json, http.client, urllib.parse, sys
PORT = int(sys.argv[1]); MONTH = int(sys.argv[2]); ROUNDS = int(sys.argv[3]) if len(sys.argv) > 3 else 5
c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=3600)


def q(sql, db="rvbbit", settings=None):
    args = {"database": db}; args.update(settings or {})
    c.request("POST", "/?" + urllib.parse.urlencode(args), body=sql.encode()); r = c.getresponse(); d = r.read()
    if r.status != 200:
        raise RuntimeError(d.decode()[:600])
    s = json.loads(r.headers.get("X-ClickHouse-Summary") or "{}")
    return d.decode(), int(s.get("elapsed_ns", 0)) / 1e9


view = json.loads(q("SELECT as_select FROM system.tables WHERE database='rvbbit' AND "
                    "name='training_examples_current_by_log_mv' FORMAT JSONCompact")[0])["data"][0][0]
ddl = json.loads(q("SHOW CREATE TABLE training_examples_current FORMAT JSONCompact")[0])["data"][0][0] \
    .replace("rvbbit.training_examples_current", "bf.t")
q("DROP DATABASE IF EXISTS bf", "default"); q("CREATE DATABASE bf", "default")
cols = ("timestamp, trace_id, session_id, cascade_id, cell_name, species_hash, user_input, assistant_output, model, "
        "cost, tokens_in, tokens_out, duration_ms, caller_id, node_type, trainable, verified, confidence, notes, tags, "
        "annotated_at, annotated_by, version, captured_at")
select = (", ".join("s." + x.strip() for x in cols.split(",")[:15])
          + ", tupleElement(a.latest, 1), tupleElement(a.latest, 2), tupleElement(a.latest, 3), "
            "tupleElement(a.latest, 4), tupleElement(a.latest, 5), "
            "if(a.trace_id = '', NULL, CAST(a.last_annotated_at AS Nullable(DateTime64(6)))), "
            "tupleElement(a.latest, 6), "
            "if(a.trace_id = '', toDateTime64(0, 6), CAST(a.last_annotated_at AS DateTime64(6))), s.captured_at")
latest = ("SELECT trace_id, argMax(tuple(trainable, verified, confidence, notes, tags, annotated_by), annotated_at) "
          "AS latest, max(annotated_at) AS last_annotated_at FROM training_annotations WHERE trace_id IN "
          f"(SELECT trace_id FROM unified_logs WHERE toYYYYMM(timestamp) = {MONTH} AND role = 'assistant') "
          "GROUP BY trace_id")
insert = (f"INSERT INTO bf.t ({cols}) SELECT {select} FROM (SELECT * FROM ({view}) WHERE toYYYYMM(timestamp) = {MONTH} "
          f"AND trace_id NOT IN (SELECT trace_id FROM bf.t WHERE toYYYYMM(timestamp) = {MONTH})) AS s "
          f"LEFT ANY JOIN ({latest}) AS a ON a.trace_id = s.trace_id SETTINGS join_use_nulls = 0")
before = {"max_block_size": "8192", "min_insert_block_size_rows": "262144",
          "min_insert_block_size_bytes": str(64 << 20), "max_memory_usage": str(2 << 30)}
variants = [("one insert thread", before),
            ("max_insert_threads = 2", dict(before, max_insert_threads="2")),
            ("... and 65,536-row blocks", dict(before, max_insert_threads="2", max_block_size="65536"))]
n = int(q(f"SELECT count() FROM training_examples_current WHERE toYYYYMM(timestamp) = {MONTH}")[0])
times = {name: [] for name, _ in variants}
for rnd in range(ROUNDS):
    for name, settings in variants:
        q("DROP TABLE IF EXISTS bf.t SYNC", "default"); q(ddl, "default")
        _, t = q(insert, settings=settings)
        times[name].append(t)
        print(f"round {rnd} {name:28} {t:5.2f} s  {n / t:,.0f} examples/s", flush=True)
for name, ts in times.items():
    m = sorted(ts)[len(ts) // 2]
    print(f"median {name:28} {m:5.2f} s  {n / m:,.0f} examples/s  ({n} examples)")
q("DROP DATABASE IF EXISTS bf", "default")
