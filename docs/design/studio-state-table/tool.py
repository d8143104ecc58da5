#!/usr/bin/env python3
"""Prototype helper: apply candidate SQL, time Studio's exact queries on several databases
(interleaved, engine elapsed_ns from X-ClickHouse-Summary), compare answers.

  tool.py PORT apply FILE DB SRC
  tool.py PORT time RUNS DB1,DB2,...
  tool.py PORT compare DB_A DB_B
  tool.py PORT inserts N DB1,DB2
"""
import importlib.machinery, importlib.util, json, statistics, sys, time, http.client, urllib.parse, re, os
from pathlib import Path
REPO = Path(__file__).resolve().parents[3]  # the repository (docs/design/<this folder>/tool.py)
loader = importlib.machinery.SourceFileLoader("bench", str(REPO / "scripts" / "bench"))
spec = importlib.util.spec_from_loader("bench", loader)
bench = importlib.util.module_from_spec(spec)
loader.exec_module(bench)

class S:
    def __init__(self, port):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3600)
    def query(self, sql, database=None, settings=None):
        args = {}
        if database: args["database"] = database
        args.update({k: str(v) for k, v in (settings or {}).items()})
        args.update(json.loads(os.environ.get("TOOL_SETTINGS", "{}")))  # e.g. {"do_not_merge_across_partitions_select_final": 1}
        self.conn.request("POST", "/?" + urllib.parse.urlencode(args), body=sql.encode())
        r = self.conn.getresponse(); data = r.read()
        if r.status != 200:
            raise RuntimeError(data.decode(errors="replace")[:2000])
        summ = json.loads(r.headers.get("X-ClickHouse-Summary") or "{}")
        return data, int(summ.get("elapsed_ns", 0)) / 1e6, summ
    def rows(self, sql, database=None):
        return json.loads(self.query(sql + " FORMAT JSONCompact", database)[0])["data"]

def statements(path, subs):
    text = Path(path).read_text()
    for k, v in subs.items(): text = text.replace("{" + k + "}", v)
    lines = [l for l in text.splitlines() if not l.lstrip().startswith("--")]
    return [s.strip() for s in re.split(r";[ \t]*\n", "\n".join(lines) + "\n") if s.strip()]

def params(s):
    # the same choices as scripts/bench: the cell with the most qualifying examples, etc.
    cascade, cell = s.rows("SELECT cascade_id, cell_name FROM training_trainable_examples FINAL "
        "WHERE trainable AND confidence >= 0.8 GROUP BY cascade_id, cell_name "
        "ORDER BY count() DESC, cascade_id, cell_name LIMIT 1", "rvbbit")[0]
    session = s.rows(f"SELECT session_id FROM training_trainable_examples FINAL WHERE trainable AND cascade_id = '{cascade}' "
        f"AND cell_name = '{cell}' ORDER BY timestamp DESC LIMIT 1", "rvbbit")[0][0]
    search = s.rows("SELECT extractAll(lower(assistant_output), '[a-z]{6,}')[1] AS w FROM training_examples "
        "WHERE w != '' ORDER BY cityHash64(trace_id) LIMIT 1", "rvbbit")[0][0]
    return cascade, cell, session, search

def queries(s):
    cascade, cell, session, search = params(s)
    c_sql, n_sql = bench.filter_options_sql()
    return [
        ("retrieval recent", bench.retrieval_sql("recent", cascade, cell)),
        ("retrieval high_confidence", bench.retrieval_sql("high_confidence", cascade, cell)),
        ("retrieval random", bench.retrieval_sql("random", cascade, cell)),
        ("grid (LIMIT 100 OFFSET 0)", bench.grid_sql(100, 0)),
        ("grid (page: LIMIT 500)", bench.grid_sql(500, 0)),
        ("grid: cascade + trainable", bench.grid_sql(500, 0, cascade_ids=[cascade], trainable=True)),
        ("grid: search", bench.grid_sql(500, 0, search=search)),
        ("filter options: cascades", c_sql),
        ("filter options: cells", n_sql),
        ("session view", bench.session_logs_sql(session)),
        ("stats", bench.stats_sql()),
    ], (cascade, cell, session, search)

def main():
    port = int(sys.argv[1]); cmd = sys.argv[2]; s = S(port)
    if cmd == "apply":
        path, db, src = sys.argv[3:6]
        only = sys.argv[6] if len(sys.argv) > 6 else None
        for st in statements(path, {"db": db, "src": src}):
            if only and only not in st.split("\n")[0]: continue
            t = time.monotonic()
            _, ms, summ = s.query(st, settings={"max_execution_time": 3600})
            print(f"{time.monotonic()-t:7.2f}s  written {summ.get('written_rows')}  {st.splitlines()[0][:100]}", flush=True)
    elif cmd == "time":
        runs = int(sys.argv[3]); dbs = sys.argv[4].split(",")
        only = sys.argv[5].split(",") if len(sys.argv) > 5 else None
        qs, p = queries(s)
        if only: qs = [q for q in qs if any(o in q[0] for o in only)]
        print(f"params: {p}; load {os.getloadavg()}", flush=True)
        times = {(d, n): [] for d in dbs for n, _ in qs}; rr = {}
        for d in dbs:
            for n, q in qs: s.query(q, d)  # warm-up
        for r in range(runs):
            for n, q in qs:
                for d in (dbs if r % 2 == 0 else dbs[::-1]):
                    _, ms, summ = s.query(q, d)
                    times[(d, n)].append(ms); rr[(d, n)] = int(summ.get("read_rows", 0))
        base = dbs[-1]
        print(f"{'query':28} " + " ".join(f"{d+' p50':>22} {'rows':>10}" for d in dbs) + f"   ratio {base}/{dbs[0]}")
        for n, _ in qs:
            meds = {d: statistics.median(times[(d, n)]) for d in dbs}
            print(f"{n:28} " + " ".join(f"{meds[d]:22.1f} {rr[(d,n)]:>10,}" for d in dbs) + f"   {meds[base]/meds[dbs[0]]:6.1f}x", flush=True)
        print(f"runs {runs} each, interleaved; load after {os.getloadavg()}")
    elif cmd == "compare":
        a, b = sys.argv[3:5]
        qs, p = queries(s)
        cascade, cell, session, search = p
        cells = [tuple(r) for r in s.rows("SELECT DISTINCT cascade_id, cell_name FROM training_examples ORDER BY 1, 2", "rvbbit")]
        bad = 0
        def ids(d, q, col):
            data = s.query(q + " FORMAT JSONEachRow", d)[0]
            return [json.loads(l)[col] for l in data.splitlines() if l.strip()]
        for c, n in cells[:20]:
            for vo in (False, True):
                for st in ("recent", "high_confidence"):
                    q = bench.retrieval_sql(st, c, n, verified_only=vo)
                    if ids(a, q, "trace_id") != ids(b, q, "trace_id"):
                        bad += 1; print("MISMATCH", st, c, n, vo)
        for name, q, col in [("grid100", bench.grid_sql(100, 0), "trace_id"), ("grid500", bench.grid_sql(500, 0), "trace_id"),
                             ("grid cascade+trainable", bench.grid_sql(500, 0, cascade_ids=[cascade], trainable=True), "trace_id"),
                             ("session", bench.session_logs_sql(session), "trace_id"),
                             ("fo cascades", bench.filter_options_sql()[0], "cascade_id"), ("fo cells", bench.filter_options_sql()[1], "cell_name")]:
            x, y = ids(a, q, col), ids(b, q, col)
            print(name, len(x), len(y), "same" if x == y else "DIFFERENT"); bad += x != y
        # full rows of the grid, every view column except texts
        cols = "trace_id, session_id, timestamp, cascade_id, cell_name, species_hash, model, cost, tokens_in, tokens_out, duration_ms, caller_id, node_type, role, trainable, verified, confidence, notes, tags, annotated_at, annotated_by, cityHash64(user_input), cityHash64(assistant_output)"
        for name, w in [("newest 2000 rows, all columns", "1=1 ORDER BY timestamp DESC, trace_id LIMIT 2000"),
                        ("every row, all columns (hash)", None)]:
            if w:
                q = f"SELECT {cols} FROM training_examples_with_annotations WHERE {w}"
                x, y = s.rows(q, a), s.rows(q, b)
            else:
                q = f"SELECT count(), sum(cityHash64({cols})) FROM training_examples_with_annotations"
                x, y = s.rows(q, a), s.rows(q, b)
            same = x == y
            print(name, "same" if same else f"DIFFERENT {x[:1]} vs {y[:1]}"); bad += not same
        st = ("SELECT cascade_id, cell_name, trainable_count, verified_count, round(avg_confidence, 4), total_executions "
              "FROM training_stats_by_cascade ORDER BY cascade_id, cell_name")
        x, y = s.rows(st, a), s.rows(st, b)
        print("stats", len(x), "same" if x == y else "DIFFERENT"); bad += x != y
        print("mismatches:", bad)
    elif cmd == "inserts":
        n = int(sys.argv[3]); dbs = sys.argv[4].split(",")
        traces = [r[0] for r in s.rows(
            "SELECT trace_id FROM training_annotations WHERE annotated_by = 'confidence_worker' "
            "AND cityHash64(trace_id, 'mark') % 1000 >= 30 AND trace_id IN (SELECT trace_id FROM training_examples_current) "
            f"ORDER BY cityHash64(trace_id, 'insert2') LIMIT {n}", "rvbbit")]
        res = {d: [] for d in dbs}; wall = {d: [] for d in dbs}
        for i, t in enumerate(traces):
            now = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()) + f".{int(time.time() * 1000) % 1000:03d}"
            q = bench.worker_insert_sql(t, round(0.5 + (i % 50) / 100, 2), now)
            for d in (dbs if i % 2 == 0 else dbs[::-1]):
                t0 = time.perf_counter(); _, ms, _ = s.query(q, d)
                wall[d].append((time.perf_counter() - t0) * 1000); res[d].append(ms)
        for d in dbs:
            print(f"{d:14} engine p50 {statistics.median(res[d]):6.2f} p95 {bench.percentile(res[d], 95):6.2f}  wall p50 {statistics.median(wall[d]):6.2f}  ({n} inserts)")
main()
