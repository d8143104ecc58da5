"""The engine adapters: one module per chdb release's API and quirks, behind the
interface of base.py, so that the rest of the front does not know which release runs.

  release            ClickHouse   module          a request is
  chdb 1.4.1, 2.1.1  23.10, 24.8  oneshot.py      one clickhouse-local run
  chdb 3.7.2         25.8         reopening.py    engine opened, statements, engine closed
  chdb-core 26.9.0   26.9         connection.py   a fresh connection (or one kept per HTTP session)

open_engine_api() imports the engine and picks the adapter by what its module offers.
"""

import os

from .connection import ConnectionEngineAPI
from .oneshot import OneShotEngineAPI
from .reopening import ReopeningEngineAPI


def open_engine_api(data_dir):
    """Import the engine and pick the adapter for its API."""
    # The engine drops scratch files (tmp/) into the working directory when
    # imported, and resolves relative file() paths against the working
    # directory at query time: keep the former in the data directory and make
    # the latter user_files/, like a server's user_files_path.
    user_files = os.path.join(data_dir, "user_files")
    os.makedirs(user_files, exist_ok=True)
    os.chdir(data_dir)
    from chdb import _chdb  # imported here, after the chdir
    if not hasattr(_chdb, "connect"):
        return OneShotEngineAPI(_chdb, data_dir, user_files)
    os.chdir(user_files)
    if hasattr(_chdb.connect, "send_insert"):
        return ConnectionEngineAPI(_chdb, data_dir)
    return ReopeningEngineAPI(_chdb, data_dir)
