#!/usr/bin/env python3
"""Phase 2 helper.
  p2.py PORT build DB PARTITION TSETTINGS      (variant.sql with the placeholders filled)
  p2.py PORT workload DBS BATCHES PER_BATCH    (same annotations into every database, interleaved)
  p2.py PORT parts DBS
"""
import json, sys, time, http.client, urllib.parse, re, statistics, os
from pathlib import Path
HERE = Path(__file__).resolve().parent

def q(port, sql, db=None, settings=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=3600)
    args = {"database": db} if db else {}
    args.update(settings or {})
    c.request("POST", "/?" + urllib.parse.urlencode(args), body=sql.encode())
    r = c.getresponse(); data = r.read()
    if r.status != 200: raise RuntimeError(data.decode(errors="replace")[:1500])
    return data.decode(), json.loads(r.headers.get("X-ClickHouse-Summary") or "{}")

def rows(port, sql, db=None):
    return json.loads(q(port, sql + " FORMAT JSONCompact", db)[0])["data"]

def now():
    t = time.time()
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t)) + f".{int(t * 1e6) % 1000000:06d}"

def ann(trace, trainable, conf, by):
    row = {"trace_id": trace, "trainable": trainable, "verified": False, "confidence": conf,
           "notes": "Auto-assessed" if by == "confidence_worker" else "", "tags": [],
           "annotated_at": now(), "annotated_by": by}
    return ("INSERT INTO training_annotations (trace_id, trainable, verified, confidence, notes, tags, "
            "annotated_at, annotated_by) FORMAT JSONEachRow\n" + json.dumps(row, separators=(",", ":")))

def parts(port, dbs):
    out = []
    for d in dbs:
        r = rows(port, f"SELECT count(), countIf(rows < 1000), sum(rows) FROM system.parts WHERE active AND database = '{d}' AND table = 'training_examples_current'")
        out.append(f"{d}: {r[0][0]} parts ({r[0][1]} small, {r[0][2]} rows)")
    return "; ".join(out)

def main():
    port = int(sys.argv[1]); cmd = sys.argv[2]
    if cmd == "build":
        db, part, ts = sys.argv[3:6]
        text = (HERE / "variant.sql").read_text().replace("{db}", db).replace("{partition}", part).replace("{tsettings}", ts)
        q(port, f"CREATE DATABASE IF NOT EXISTS {db}")
        lines = [l for l in text.splitlines() if not l.lstrip().startswith("--")]
        for st in [s.strip() for s in re.split(r";[ \t]*\n", "\n".join(lines) + "\n") if s.strip()]:
            t = time.monotonic(); q(port, st, settings={"max_execution_time": "3600"})
            print(f"{time.monotonic()-t:7.2f}s  {st.splitlines()[0][:90]}", flush=True)
    elif cmd == "workload":
        dbs = sys.argv[3].split(","); batches = int(sys.argv[4]); per = int(sys.argv[5])
        salt = sys.argv[6] if len(sys.argv) > 6 else "p2"
        traces = [r[0] for r in rows(port, "SELECT trace_id FROM rvbbit.training_examples "
                  f"ORDER BY cityHash64(trace_id, '{salt}') LIMIT {2 * batches * per}")]
        lat = {d: [] for d in dbs}; opt = {d: [] for d in dbs}
        t0 = time.monotonic()
        for b in range(batches):
            chunk = traces[2 * b * per:2 * (b + 1) * per]
            # the worker re-scores `per` old traces (one-row inserts), then Studio marks `per`
            # old examples (one INSERT per trace, as mark_as_trainable) and sends the OPTIMIZE
            for i, t in enumerate(chunk):
                worker = i < per
                sql = ann(t, False, round(0.5 + i / 100, 2), "confidence_worker") if worker else ann(t, True, 1.0, "human")
                for d in (dbs if i % 2 == 0 else dbs[::-1]):
                    _, s = q(port, sql, d); lat[d].append(int(s.get("elapsed_ns", 0)) / 1e6)
            for d in dbs:
                t1 = time.monotonic(); q(port, "OPTIMIZE TABLE training_annotations FINAL", d); opt[d].append((time.monotonic() - t1) * 1000)
        print(f"workload: {batches} batches x ({per} worker re-scores + {per} markings + OPTIMIZE), {time.monotonic()-t0:.1f}s")
        for d in dbs:
            print(f"  {d:16} insert p50 {statistics.median(lat[d]):6.1f} ms  OPTIMIZE annotations p50 {statistics.median(opt[d]):6.1f} ms")
        print("  " + parts(port, [d for d in dbs if d != 'rvbbit_plain']))
    elif cmd == "timeline":
        # one marking batch (Studio marks `per` examples spread over the time range, one INSERT
        # each, then the OPTIMIZE), then for `secs` seconds: the worker scores a new trace every
        # loop (the newest examples) and the grid, filter options, session view and stats run once
        import importlib.machinery, importlib.util
        loader = importlib.machinery.SourceFileLoader("bench", str(HERE.parent.parent / "scripts" / "bench"))
        spec = importlib.util.spec_from_loader("bench", loader); b = importlib.util.module_from_spec(spec); loader.exec_module(b)
        dbs = sys.argv[3].split(","); per = int(sys.argv[4]); secs = int(sys.argv[5]); salt = sys.argv[6]
        marks = [r[0] for r in rows(port, f"SELECT trace_id FROM rvbbit.training_examples ORDER BY cityHash64(trace_id, '{salt}') LIMIT {per}")]
        newest = [r[0] for r in rows(port, "SELECT trace_id FROM rvbbit.training_examples ORDER BY timestamp DESC LIMIT 300")]
        qs = [("grid100", b.grid_sql(100, 0)), ("fo_casc", b.filter_options_sql()[0]),
              ("session", b.session_logs_sql("sess-080797638cbbb107")), ("stats", b.stats_sql())]
        for t in marks:
            for d in dbs: q(port, ann(t, True, 1.0, "human"), d)
        for d in dbs: q(port, "OPTIMIZE TABLE training_annotations FINAL", d)
        t0 = time.monotonic(); i = 0
        print("t(s) " + " ".join(f"{d}:{n}(ms/rows)" for d in dbs for n, _ in qs) + " parts")
        while time.monotonic() - t0 < secs:
            for d in dbs: q(port, ann(newest[i % 300], False, 0.77, "confidence_worker"), d)
            i += 1; res = []
            for n, sql in qs:
                for d in dbs:
                    _, s = q(port, sql, d); res.append(f"{int(s.get('elapsed_ns',0))/1e6:.0f}/{int(s.get('read_rows',0))}")
            print(f"{time.monotonic()-t0:5.0f} " + " ".join(res) + "  " + parts(port, [d for d in dbs if d != 'rvbbit_plain']), flush=True)
    elif cmd == "parts":
        print(parts(port, sys.argv[3].split(",")))
main()
