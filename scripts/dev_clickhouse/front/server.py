"""The server process: the listening socket (HTTP or HTTPS) and its threads, signals,
start-up and shutdown, the parent watch (--parent-pid), and the command line (main).

scripts/dev_clickhouse/server.py calls main(); `python scripts/dev_clickhouse/server.py
--help` lists the options.
"""

import argparse
import os
import signal
import ssl
import sys
import threading
import time
from http.server import ThreadingHTTPServer

from .execution import Engine
from .protocol import Handler
from .sessions import SessionStore


HOST = "127.0.0.1"
SHUTDOWN_GRACE = 10  # seconds the engine gets to shut down on SIGTERM


def watch_parent(pid, stop):
    """Call stop() once process `pid` has exited (or is a zombie)."""
    while True:
        time.sleep(1)
        try:
            os.kill(pid, 0)
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                    break
        except ProcessLookupError:
            break
        except (PermissionError, FileNotFoundError):
            continue
    sys.stderr.write(f"parent process {pid} is gone, shutting down\n")
    stop()


def serve(port, data_dir, password, parent_pid, tls=None, busy_limit=60):
    try:
        server = ThreadingHTTPServer((HOST, port), Handler)
    except OSError as exc:
        sys.stderr.write(f"cannot listen on {HOST}:{port}: {exc.strerror}\n")
        return 1
    scheme = "http"
    if tls:
        # HTTPS, as ClickHouse's https_port: the handshake runs in the request's
        # thread (on first read), so a slow client never blocks accept().
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*tls)
        server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
        scheme = "https"
    server.daemon_threads = True
    # Engines before 26.x read an INSERT's data from standard input when the
    # statement carries none: give them nothing to read.
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    Handler.engine = Engine(data_dir)
    Handler.sessions = SessionStore(Handler.engine)
    Handler.busy_limit = busy_limit
    Handler.password = password

    def stop(*_):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if parent_pid:
        threading.Thread(target=watch_parent, args=(parent_pid, stop), daemon=True).start()
    sys.stderr.write(f"ClickHouse {Handler.engine.version} ({Handler.engine.release}) on {scheme}://{HOST}:{port}/, "
                     f"data in {data_dir}\n")
    sys.stderr.flush()
    try:
        server.serve_forever()
    finally:
        server.server_close()
        # A query still running (its client gone, not cancelled) would hold the engine's
        # shutdown up: it gets SHUTDOWN_GRACE seconds, then the process ends regardless.
        def overdue():
            sys.stderr.write(f"the engine did not shut down within {SHUTDOWN_GRACE} s; exiting\n")
            sys.stderr.flush()
            os._exit(0)

        timer = threading.Timer(SHUTDOWN_GRACE, overdue)
        timer.daemon = True
        timer.start()
        Handler.sessions.close_all()
        Handler.engine.close()
        timer.cancel()
    sys.stderr.write("stopped\n")
    return 0


def main():
    parser = argparse.ArgumentParser(
        description="Local ClickHouse HTTP server backed by chdb. The password of the `default` "
                    "user is read from RVBBIT_DEV_CLICKHOUSE_PASSWORD (unset or empty: no password), "
                    "so that it never shows in the process list.")
    parser.add_argument("--port", type=int, default=8123)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--parent-pid", type=int, default=0, help="exit when this process is gone")
    parser.add_argument("--tls-cert", help="serve HTTPS with this PEM certificate (needs --tls-key)")
    parser.add_argument("--tls-key", help="PEM private key of --tls-cert")
    parser.add_argument("--busy-limit", type=float, default=60,
                        help="engines that run one query at a time (chdb 1.x-3.x): /ping and /replicas_status "
                             "answer 503 while one query has held the engine longer than this (seconds)")
    args = parser.parse_args()
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key go together")
    password = os.environ.get("RVBBIT_DEV_CLICKHOUSE_PASSWORD", "")
    tls = (args.tls_cert, args.tls_key) if args.tls_cert else None
    return serve(args.port, os.path.abspath(args.data_dir), password, args.parent_pid, tls, args.busy_limit)
