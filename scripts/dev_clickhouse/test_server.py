"""Tests of the local ClickHouse HTTP server (scripts/dev-clickhouse): this file runs
the tests beside each module of the package front/ (front/test_<module>.py, which
share front/testing.py).

Run with the virtualenv's Python (the one scripts/dev-clickhouse installs):
    .dev/venv/bin/python scripts/dev_clickhouse/test_server.py
    .dev/venv-23.10/bin/python scripts/dev_clickhouse/test_server.py --engine 23.10
One module's tests: add `-k` and a pattern (e.g. `-k FreshSettings`).
(pytest collects the same tests from front/; the engine then comes from the variable
RVBBIT_DEV_CLICKHOUSE_ENGINE.)  Without an engine the servers run in this
Python's own virtualenv; with one, in that engine's virtualenv.  Servers are
started through `scripts/dev-clickhouse serve --parent-pid <this process>`, on
free ports and temporary data directories, so none outlives the test run.
"""

import os
import sys
import unittest

from front import testing
from front.testing import Server  # noqa: F401 - test_clients.py starts its servers with it

HERE = os.path.dirname(os.path.abspath(__file__))


def load_tests(loader, tests, pattern):
    """Every test_*.py of front/ (the protocol unittest.main() follows for this module)."""
    return loader.discover(os.path.join(HERE, "front"), pattern="test_*.py", top_level_dir=HERE)


def set_engine(argv):
    """Take `--engine VERSION` out of argv into testing.ENGINE, which Server reads."""
    for at, arg in enumerate(argv):
        if arg == "--engine" and at + 1 < len(argv):
            testing.ENGINE = argv[at + 1]
            del argv[at:at + 2]
            return
        if arg.startswith("--engine="):
            testing.ENGINE = arg.partition("=")[2]
            del argv[at]
            return


if __name__ == "__main__":
    set_engine(sys.argv)
    unittest.main(verbosity=2)
