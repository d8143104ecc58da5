#!/usr/bin/env python3
"""Where the backfill's time goes: one month of the benchmark's kept data (database
`rvbbit`, version 6 installed) backfilled into scratch copies of the state table
(database `bf`, dropped at the end), as `migrate` backfills it (the view's own query,
the same settings): the extraction alone, the table as shipped and three variants of
it, then the table with the trainable copy's view chained on it, with and without a
guard on `version`, and last as `migrate` backfills since the staging table: the month
written into a copy of the table's shape that no view reads, then attached to the
table (with the view chained on it) by `ATTACH PARTITION ... FROM`.

  backfill_parts.py PORT [YYYYMM]
"""
import json, http.client, urllib.parse, time, sys
PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 8123
c=http.client.HTTPConnection("127.0.0.1",PORT,timeout=3600)
def q(sql, db="rvbbit", settings=None):
    args={"database":db}; args.update(settings or {})
    c.request("POST","/?"+urllib.parse.urlencode(args),body=sql.encode()); r=c.getresponse(); d=r.read()
    if r.status!=200: raise RuntimeError(d.decode()[:600])
    s=json.loads(r.headers.get("X-ClickHouse-Summary") or "{}"); return d.decode(), int(s.get("elapsed_ns",0))/1e9
view=json.loads(q("SELECT as_select FROM system.tables WHERE database='rvbbit' AND name='training_examples_current_by_log_mv' FORMAT JSONCompact")[0])["data"][0][0]
ddl=json.loads(q("SHOW CREATE TABLE training_examples_current FORMAT JSONCompact")[0])["data"][0][0].replace("rvbbit.training_examples_current","bf.t")
q("DROP DATABASE IF EXISTS bf", "default"); q("CREATE DATABASE bf", "default")
import re
cols=re.search(r"\((.*)\)\s*ENGINE", ddl, re.S).group(1)
plaincols="\n".join(l for l in cols.split("\n") if "INDEX" not in l).rstrip().rstrip(",")
variants={
 "as shipped": ddl,
 "user_input LZ4": ddl.replace("CODEC(ZSTD(3))","CODEC(LZ4)"),
 "no bloom indexes": "CREATE TABLE bf.t ("+plaincols+") ENGINE = ReplacingMergeTree(version) PARTITION BY toYYYYMM(timestamp) ORDER BY (timestamp, trace_id) SETTINGS index_granularity = 256",
 "granularity 8192": ddl.replace("index_granularity = 256","index_granularity = 8192"),
}
cols_list="timestamp, trace_id, session_id, cascade_id, cell_name, species_hash, user_input, assistant_output, model, cost, tokens_in, tokens_out, duration_ms, caller_id, node_type, trainable, verified, confidence, notes, tags, annotated_at, annotated_by, version, captured_at"
month=int(sys.argv[2]) if len(sys.argv) > 2 else 202608
S={"max_block_size":"8192","min_insert_block_size_rows":"262144","min_insert_block_size_bytes":str(64<<20),"max_memory_usage":str(2<<30)}
_,t=q(f"SELECT {cols_list} FROM ({view}) WHERE toYYYYMM(timestamp) = {month} FORMAT Null", settings=S)
n=int(q(f"SELECT count() FROM training_examples_current WHERE toYYYYMM(timestamp)={month}")[0])
print(f"extraction alone (SELECT, FORMAT Null): {t:.1f} s, {n/t:,.0f} examples/s  ({n} examples)")
for rnd in range(2):
  for name,d in variants.items():
    q("DROP TABLE IF EXISTS bf.t SYNC","default"); q(d,"default")
    _,t=q(f"INSERT INTO bf.t ({cols_list}) SELECT {cols_list} FROM ({view}) WHERE toYYYYMM(timestamp) = {month} AND trace_id NOT IN (SELECT trace_id FROM bf.t WHERE toYYYYMM(timestamp) = {month})", settings=S)
    print(f"round {rnd} {name:20} {t:5.1f} s  {n/t:,.0f} examples/s", flush=True)
# the shipped table with the trainable copy's view chained, as migrate backfills it
tddl=json.loads(q("SHOW CREATE TABLE training_trainable_examples FORMAT JSONCompact")[0])["data"][0][0].replace("rvbbit.training_trainable_examples","bf.tt")
mv=json.loads(q("SHOW CREATE TABLE training_trainable_examples_by_current_mv FORMAT JSONCompact")[0])["data"][0][0]
mv=mv.replace("rvbbit.training_trainable_examples_by_current_mv","bf.mv").replace("rvbbit.training_trainable_examples","bf.tt").replace("rvbbit.training_examples_current","bf.t")
for rnd in range(2):
    for t_ in ("bf.mv","bf.t","bf.tt"): q(f"DROP TABLE IF EXISTS {t_} SYNC","default")
    q(ddl,"default"); q(tddl,"default"); q(f"INSERT INTO bf.tt SELECT * FROM rvbbit.training_trainable_examples","default"); q(mv,"default")
    _,t=q(f"INSERT INTO bf.t ({cols_list}) SELECT {cols_list} FROM ({view}) WHERE toYYYYMM(timestamp) = {month} AND trace_id NOT IN (SELECT trace_id FROM bf.t WHERE toYYYYMM(timestamp) = {month})", settings=S)
    print(f"round {rnd} as shipped + trainable view {t:5.1f} s  {n/t:,.0f} examples/s", flush=True)
mv2=mv.replace("WHERE trainable", "WHERE version > toDateTime64(0, 6) AND (trainable", 1)
mv2=mv2.rstrip().rstrip(";")+")"
for rnd in range(2):
    for t_ in ("bf.mv","bf.t","bf.tt"): q(f"DROP TABLE IF EXISTS {t_} SYNC","default")
    q(ddl,"default"); q(tddl,"default"); q(f"INSERT INTO bf.tt SELECT * FROM rvbbit.training_trainable_examples","default"); q(mv2,"default")
    _,t=q(f"INSERT INTO bf.t ({cols_list}) SELECT {cols_list} FROM ({view}) WHERE toYYYYMM(timestamp) = {month} AND trace_id NOT IN (SELECT trace_id FROM bf.t WHERE toYYYYMM(timestamp) = {month})", settings=S)
    print(f"round {rnd} as shipped + trainable view skipping version 0 {t:5.1f} s  {n/t:,.0f} examples/s", flush=True)
for rnd in range(2):
    for t_ in ("bf.mv","bf.t","bf.tt","bf.s"): q(f"DROP TABLE IF EXISTS {t_} SYNC","default")
    q(ddl,"default"); q(tddl,"default"); q(f"INSERT INTO bf.tt SELECT * FROM rvbbit.training_trainable_examples","default"); q(mv,"default")
    q("CREATE TABLE bf.s AS bf.t","default")
    _,t1=q(f"INSERT INTO bf.s ({cols_list}) SELECT {cols_list} FROM ({view}) WHERE toYYYYMM(timestamp) = {month} AND trace_id NOT IN (SELECT trace_id FROM bf.t WHERE toYYYYMM(timestamp) = {month})", settings=S)
    w=time.time(); q(f"ALTER TABLE bf.t ATTACH PARTITION {month} FROM bf.s","default"); t2=time.time()-w
    got=int(q("SELECT count() FROM bf.t","default")[0])
    print(f"round {rnd} staged, then attached   {t1+t2:5.1f} s  {n/(t1+t2):,.0f} examples/s  (attach {t2:.2f} s; {got} rows)", flush=True)
q("DROP DATABASE IF EXISTS bf", "default")
