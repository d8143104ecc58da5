"""Local ClickHouse HTTP server for development and tests: the entry point.

scripts/dev-clickhouse runs this file with the engine's virtualenv Python
(`<venv>/bin/python scripts/dev_clickhouse/server.py --port ... --data-dir ...`).
The server is the package `front` beside this file; its docstring
(front/__init__.py) says how requests map onto the engine and which module holds
what.  Run `python server.py --help` for the command line.
"""

import faulthandler
import signal
import sys

from front.server import main

if __name__ == "__main__":
    # `kill -USR1 <pid>` writes every thread's stack to the server's stderr (its log): what
    # a stuck server is doing.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    sys.exit(main())
