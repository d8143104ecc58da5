#!/usr/bin/env python3
"""The end-of-run catch-up of `migrate`, read as a SELECT (`FORMAT Null`, nothing is
written) on the benchmark's kept data (database `rvbbit`, the schema installed): the
catch-up as it was (every example read with its texts, then joined with the latest
annotations) against the catch-up since the backfill writes annotations (the traces
behind their annotation found on the narrow columns first), and that narrow look-up
alone.

  catch_up_parts.py PORT [ROUNDS]
"""
import json, http.client, urllib.parse, sys
PORT = int(sys.argv[1]); ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=3600)


def q(sql):
    c.request("POST", "/?" + urllib.parse.urlencode({"database": "rvbbit"}), body=sql.encode())
    r = c.getresponse(); d = r.read()
    if r.status != 200:
        raise RuntimeError(d.decode()[:600])
    s = json.loads(r.headers.get("X-ClickHouse-Summary") or "{}")
    return d.decode().strip(), int(s.get("elapsed_ns", 0)) / 1e9, s.get("read_rows")


behind = ("SELECT s.trace_id FROM (SELECT trace_id, version FROM training_examples_current FINAL) AS s "
          "INNER JOIN (SELECT trace_id, max(annotated_at) AS last FROM training_annotations GROUP BY trace_id) AS a "
          "ON a.trace_id = s.trace_id WHERE a.last > s.version")
latest = ("SELECT trace_id, argMax(tuple(trainable, verified, confidence, notes, tags, annotated_by), annotated_at) "
          "AS latest, max(annotated_at) AS last_annotated_at FROM training_annotations WHERE trace_id IN ({}) "
          "GROUP BY trace_id")
queries = {
    "the traces behind (count)": f"SELECT count() FROM ({behind})",
    "catch-up, narrow first": "SELECT s.*, a.latest FROM (SELECT * FROM training_examples_current FINAL PREWHERE "
                              f"trace_id IN ({behind})) AS s INNER JOIN ({latest.format(behind)}) AS a "
                              "ON a.trace_id = s.trace_id WHERE a.last_annotated_at > s.version FORMAT Null",
    "catch-up, as it was": "SELECT s.*, a.latest FROM (SELECT * FROM training_examples_current FINAL) AS s "
                           "INNER JOIN ({}) AS a ON a.trace_id = s.trace_id WHERE a.last_annotated_at > s.version "
                           "FORMAT Null".format(latest.format("SELECT trace_id FROM training_examples_current")),
}
for rnd in range(ROUNDS):
    for name, sql in queries.items():
        out, t, rows = q(sql)
        print(f"round {rnd} {name:28} {t:5.2f} s  read_rows {rows}  {out[:20]}", flush=True)
