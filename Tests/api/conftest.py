"""Fixtures of the black-box HTTP suite. See README.md.

`server` is a running node (one per test module, fresh temporary data dir). The Server class,
the HTTP `call` and the transaction helpers live in restm_testlib.py and are re-exported here.
"""
import time

import pytest

import restm_testlib as lib
from restm_testlib import (Api, Server, begin, call, commit, error_shape, new_seed, read,  # noqa: F401
                           restm_bin, unique, write)


def pytest_report_header(config):
    return f'restm binary: {restm_bin()} (RESTM_BIN); server logs in {lib.LOG_DIR}'


def pytest_runtest_logstart(nodeid, location):
    lib._TEST_START[0] = time.monotonic()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for srv in lib.servers_of_current_test():
            rep.sections.append((f'restm server {srv.name} log ({srv.log_path}, data {srv.data_dir})',
                                 srv.log_tail()))


@pytest.fixture(scope='module')
def server():
    srv = Server(name='node')
    srv.start()
    lib.DEFAULT[0] = srv
    try:
        yield srv
    finally:
        lib.DEFAULT[0] = None
        srv.close()


@pytest.fixture
def seed():
    """A seed for random.Random: $RESTM_SEED, else a fresh one. Printed, and tests put it in their
    assertion messages; re-run with RESTM_SEED=<seed> to replay the same choices."""
    s = new_seed()
    print(f'RESTM_SEED={s}')
    return s
