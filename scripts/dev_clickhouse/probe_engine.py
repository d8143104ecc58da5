"""What one chdb release permits from several threads: the measurements behind the
front's choices (which engines run requests at once, cancel, stream).

Run with an engine's virtualenv Python, on an otherwise idle machine:
    .dev/venv/bin/python scripts/dev_clickhouse/probe_engine.py
    .dev/venv-23.10/bin/python scripts/dev_clickhouse/probe_engine.py
Each probe runs in a child process of its own with a time limit, so that a probe
that hangs the engine is reported as hanging ("hangs") instead of stopping the rest.
"""

import multiprocessing
import sys
import tempfile
import threading
import time

SUM = "SELECT sum(number) FROM numbers(400000000)"  # about 0.5-1 s of CPU
SLEEP = "SELECT sleep(1)"  # 1 s without CPU: two at once take 1 s, one after the other 2 s
ENDLESS = "SELECT count() FROM system.numbers WHERE number * 3 = 1"


def engine():
    from chdb import _chdb
    return _chdb


def run(chdb, path, sql, fmt="TabSeparated"):
    if hasattr(chdb, "connect"):
        conn = chdb.connect(f"{path}?implicit_select=0" if hasattr(chdb.connect, "send_insert") else path)
        try:
            return conn.query(sql, fmt).bytes()
        finally:
            conn.close()
    return chdb.query(sql, fmt, path=path).bytes()


def probe_gil(path):
    chdb = engine()
    started = time.monotonic()
    run(chdb, path, SUM)
    single = time.monotonic() - started
    done, ticks = threading.Event(), []
    thread = threading.Thread(target=lambda: (run(chdb, path, SUM), done.set()))
    thread.start()
    while not done.is_set():
        tick = time.monotonic()
        time.sleep(0.01)
        ticks.append(time.monotonic() - tick)
    thread.join()
    return (f"one query {single:.2f} s; another Python thread ran {len(ticks)} times meanwhile, "
            f"longest pause {max(ticks):.2f} s")


def probe_parallel(path):
    chdb = engine()
    started = time.monotonic()
    run(chdb, path, SLEEP)
    single = time.monotonic() - started
    threads = [threading.Thread(target=run, args=(chdb, path, SLEEP)) for _ in range(2)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    both = time.monotonic() - started
    return f"`{SLEEP}` {single:.2f} s, two from two threads {both:.2f} s ({'at once' if both < 1.5 * single else 'one after the other'})"


def probe_kill(path):
    chdb = engine()
    if not hasattr(chdb, "connect"):
        return "no connections: each query is a clickhouse-local run of its own (no shared process list)"
    conn = chdb.connect(f"{path}?implicit_select=0")
    outcome = {}

    def endless():
        try:
            conn.query(ENDLESS + " SETTINGS max_execution_time = 20", "TabSeparated")
            outcome["end"] = "finished"
        except RuntimeError as exc:
            outcome["end"] = str(exc).split(" (version")[0][-60:]

    thread = threading.Thread(target=endless)
    thread.start()
    time.sleep(1)
    started = time.monotonic()
    killer = chdb.connect(f"{path}?implicit_select=0")
    seen = killer.query("SELECT count() FROM system.processes WHERE query LIKE '%number * 3 = 1%' "
                        "AND query NOT LIKE '%processes%'", "TabSeparated").bytes().strip()
    killer.query("KILL QUERY WHERE query LIKE '%number * 3 = 1%' AND query NOT LIKE '%KILL%' SYNC", "TabSeparated")
    thread.join()
    return (f"another connection sees {seen.decode()} running; KILL QUERY from it ended it in "
            f"{time.monotonic() - started:.2f} s: {outcome.get('end')}")


def probe_query_id(path):
    chdb = engine()
    if not hasattr(chdb, "connect"):
        return "no connection string to try"
    conn = chdb.connect(f"{path}?query_id=probe-id")
    try:
        got = conn.query("SELECT queryID()", "TabSeparated").bytes().strip().decode()
    finally:
        conn.close()
    return f"connect('...?query_id=probe-id') runs queries as {got!r}"


def probe_streaming(path):
    chdb = engine()
    conn_type = getattr(chdb, "connect", None)
    if conn_type is None or not hasattr(conn_type, "send_query"):
        return "no streaming query API"
    conn = chdb.connect(f"{path}?implicit_select=0" if hasattr(conn_type, "send_insert") else path)
    try:
        out = {}
        for fmt in ("TabSeparated", "TSVWithNames", "JSON"):
            stream = conn.send_query("SELECT number FROM numbers(300000)", fmt)
            chunks = []
            while True:
                chunk = conn.streaming_fetch_result(stream)
                if chunk is None or not chunk.bytes():
                    break
                chunks.append(chunk.bytes())
            whole = conn.query("SELECT number FROM numbers(300000)", fmt).bytes()
            out[fmt] = f"{len(chunks)} chunks, {'same as' if b''.join(chunks) == whole else 'NOT the same as'} query()"
        return "send_query: " + "; ".join(f"{fmt}: {text}" for fmt, text in out.items())
    finally:
        conn.close()


def child(name, path, queue):
    try:
        queue.put(globals()[f"probe_{name}"](path))
    except Exception as exc:  # noqa: BLE001 (reported)
        queue.put(f"error: {type(exc).__name__}: {str(exc)[:200]}")


def main():
    from importlib import metadata
    release = next((f"{p} {metadata.version(p)}" for p in ("chdb-core", "chdb")
                    if _installed(metadata, p)), "chdb ?")
    print(release)
    for name in ("gil", "parallel", "kill", "query_id", "streaming"):
        path = tempfile.mkdtemp(prefix="probe-engine-")
        queue = multiprocessing.Queue()
        process = multiprocessing.Process(target=child, args=(name, path, queue))
        process.start()
        process.join(60)
        if process.is_alive():
            process.kill()
            process.join()
            result = "hangs (killed after 60 s)"
        else:
            result = queue.get() if not queue.empty() else f"child died (exit {process.exitcode})"
        print(f"  {name}: {result}")
        sys.stdout.flush()


def _installed(metadata, package):
    try:
        metadata.version(package)
        return True
    except metadata.PackageNotFoundError:
        return False


if __name__ == "__main__":
    main()
