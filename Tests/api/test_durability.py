"""Durability: `kill -9` under load, graceful shutdown (POST /sys/shutdown and SIGTERM), restart
on the same data dir.

Writer thread w commits, for i = 1, 2, 3, ... in order, ONE transaction writing c:{w} = i and
m:{w}:{i%4} = i, and remembers the last i whose commit was acknowledged (200). After a restart,
with k the recovered value of c:{w}:
  - k >= the last acknowledged i (no acknowledged commit lost) and k <= the last i attempted;
  - every m:{w}:{j} holds the largest i <= k with i%4 == j (so the transaction that wrote k was
    applied whole, and no later one was applied in part).
After the kill, the next cycle continues from k + 1, so the committed i's stay 1..k.
"""
import random
import signal
import threading
import time

import pytest

from restm_testlib import Server, backoff, error_shape, show, unique

WRITERS = 8
CYCLES = 3
LOAD_SECONDS = 3.0


class Writer:
    """One writer thread; see the module doc."""

    def __init__(self, node, pre, w, start_i, seed):
        self.node, self.pre, self.w = node, pre, w
        self.i = start_i
        self.acked = start_i - 1
        self.attempted = start_i - 1
        self.last = None          # outcome of the last attempt: acked, unknown, refused
        self.detail = ''
        self.error = None
        self.acks = 0
        self.rng = random.Random(f'{seed}:{w}')

    def c(self):
        return f'{self.pre}c:{self.w}'

    def m(self, j):
        return f'{self.pre}m:{self.w}:{j}'

    def attempt(self, i):
        """-> (outcome, detail): acked, unknown (no answer / outcome_unknown), refused, retry."""
        writes = {self.c(): i, self.m(i % 4): i}
        if i % 2 == 0:
            s, r, _ = self.node.call('POST', '/txn/begin', {})
            if s != 201:
                return self.classify(s, r, 'begin', txn_started=False)
            t = r['txn']
            for p, v in writes.items():
                s, r = self.node.write(t, p, v)
                if s != 204:
                    return self.classify(s, r, f'PUT {p}', txn_started=False)
            s, r = self.node.commit(t)
        else:
            s, r = self.node.one_shot(writes=writes)
        if s == 200 and isinstance(r, dict) and r.get('status') == 'committed':
            return 'acked', ''
        return self.classify(s, r, 'commit', txn_started=True)

    @staticmethod
    def classify(s, r, what, txn_started):
        if s == 0:
            # no answer: the commit may or may not have happened (only if it was sent)
            return ('unknown' if txn_started else 'refused'), f'{what}: {r}'
        if s == 503 and error_shape(r, 'outcome_unknown'):
            return 'unknown', f'{what}: 503 {show(r)}'
        if s == 503 and error_shape(r, 'shutting_down'):
            return 'refused', f'{what}: 503 {show(r)}'
        if s == 409 and error_shape(r, 'conflict'):
            return 'retry', f'{what}: 409 {show(r)}'
        if s == 409 and error_shape(r, 'txn_not_active'):
            return 'refused', f'{what}: 409 {show(r)}'   # aborted by the shutdown
        return 'error', f'{what}: unexpected {s} {show(r)}'

    def run(self, stop):
        attempt = 0
        try:
            while not stop.is_set():
                i = self.i
                self.attempted = max(self.attempted, i)
                outcome, detail = self.attempt(i)
                self.last, self.detail = outcome, detail
                if outcome == 'acked':
                    self.acked, self.i, self.acks, attempt = i, i + 1, self.acks + 1, 0
                elif outcome == 'retry':
                    attempt += 1
                    backoff(self.rng, attempt)
                elif outcome == 'error':
                    self.error = detail
                    return
                else:
                    return   # the node is gone or going
        except Exception as e:
            self.error = repr(e)


def run_writers(node, pre, start, seed, on_load):
    """Runs WRITERS writers from start[w] until on_load() returns; -> the writers."""
    stop = threading.Event()
    writers = [Writer(node, pre, w, start[w], seed) for w in range(WRITERS)]
    threads = [threading.Thread(target=wr.run, args=(stop,), daemon=True) for wr in writers]
    for t in threads:
        t.start()
    try:
        on_load()
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), 'writer threads hung for 60 s'
    errors = [f'writer {wr.w}: {wr.error}' for wr in writers if wr.error]
    assert not errors, 'writers met unexpected answers:\n' + '\n'.join(errors)
    return writers


def check_recovered(node, pre, writers, what):
    """Checks every writer's pointers after a restart; -> {w: k}."""
    ptrs = [f'{pre}c:{w}' for w in range(WRITERS)] + [f'{pre}m:{w}:{j}' for w in range(WRITERS) for j in range(4)]
    s, r = node.one_shot(reads=ptrs)
    assert s == 200 and isinstance(r, dict) and isinstance(r.get('values'), dict), f'{what}: read-back -> {s} {show(r)}'
    vals = {p: (e['value'] if e.get('version') is not None else None) for p, e in r['values'].items()}
    problems, recovered = [], {}
    for wr in writers:
        k = vals.get(wr.c())
        k0 = 0 if k is None else k
        recovered[wr.w] = k0
        state = (f'writer {wr.w}: recovered c={k!r}, last acked {wr.acked}, last attempted {wr.attempted}, '
                 f'last outcome {wr.last} {wr.detail}')
        if k0 < wr.acked:
            problems.append(f'ACKNOWLEDGED COMMIT LOST: {state}')
        if k0 > wr.attempted:
            problems.append(f'value never written: {state}')
        if wr.last == 'refused' and k0 != wr.acked:
            problems.append(f'a refused commit was applied: {state}')
        for j in range(4):
            want = max((i for i in range(1, k0 + 1) if i % 4 == j), default=None)
            got = vals.get(wr.m(j))
            if got != want:
                problems.append(f'HALF-APPLIED or lost transaction: m:{wr.w}:{j} = {got!r}, expected {want!r} '
                                f'for c = {k!r}; {state}')
    assert not problems, f'{what}:\n' + '\n'.join(problems)
    return recovered


@pytest.mark.parametrize('durability', ['sync', 'async'])
def test_kill9_under_load(durability, seed):
    """kill -9 mid-load, CYCLES times on the same dir. Both modes lose nothing on a process kill
    (async relaxes only the fsync, and the OS keeps the page cache) and never apply half a txn."""
    rng = random.Random(seed)
    pre = unique(f'dur.{durability}')
    node = Server(durability=durability, name=f'kill9-{durability}')
    try:
        node.start()
        start = {w: 1 for w in range(WRITERS)}
        for cycle in range(CYCLES):
            what = f'durability={durability} cycle {cycle + 1}/{CYCLES} seed={seed}'
            writers = run_writers(node, pre, start, seed + cycle,
                                  lambda: (time.sleep(rng.uniform(0.7, 1.3) * LOAD_SECONDS), node.kill9()))
            acks = sum(wr.acks for wr in writers)
            assert acks > 0, f'{what}: no commit acknowledged in {LOAD_SECONDS}s of load'
            node.start()
            recovered = check_recovered(node, pre, writers, what)
            print(f'{what}: {acks} acks; recovered {recovered}; '
                  f'last outcomes {[wr.last for wr in writers]}')
            start = {w: k + 1 for w, k in recovered.items()}
        s, r, rc = node.shutdown()
        assert s == 202 and rc == 0, f'final shutdown -> {s} {show(r)}, exit {rc}'
    finally:
        node.close()


def history(node, p):
    s, r, _ = node.call('GET', f'/ptr/{p}/history?limit=100')
    assert s == 200 and isinstance(r, dict) and isinstance(r.get('versions'), list), f'history {p} -> {s} {show(r)}'
    return r['versions']


@pytest.mark.parametrize('how', ['http', 'sigterm'])
def test_graceful_shutdown(how, seed):
    rng = random.Random(seed)
    pre = unique(f'shut.{how}')
    node = Server(name=f'shutdown-{how}')
    try:
        node.start()
        p, q = pre + 'p', pre + 'q'
        for v in range(5):
            s, r, _ = node.put(p, {'v': v})
            assert s == 200, f'{s} {show(r)}'
        tc = node.begin()
        assert node.write(tc, pre + 'y', 'committed')[0] == 204
        s, r = node.commit(tc)
        assert s == 200, f'{s} {show(r)}'
        hist = history(node, p)
        assert [e.get('value') for e in hist] == [{'v': v} for v in range(4, -1, -1)], f'history before: {show(hist)}'
        ta = node.begin()                      # active when the shutdown comes: must be aborted
        assert node.write(ta, q, 'uncommitted')[0] == 204

        timing = {}
        late = []   # requests served normally after the 202 (reported at the end)

        def shutdown_under_load():
            time.sleep(rng.uniform(0.5, 1.5))
            t0 = time.monotonic()
            if how == 'http':
                s, r, _ = node.call('POST', '/sys/shutdown', {}, fresh=True)
                assert s == 202, f'POST /sys/shutdown -> {s} {show(r)}'
                t0 = time.monotonic()
                # from now on: no connection, or 503 (shutting_down for the API)
                while node.alive() and time.monotonic() - t0 < 10:
                    for method, path, body in (('POST', '/txn/begin', {}), ('PUT', f'/ptr/{pre}late', 1),
                                               ('GET', f'/ptr/{p}', None), ('GET', '/sys/health', None)):
                        s, r, _ = node.call(method, path, body, fresh=True, timeout=5)
                        dt = time.monotonic() - t0
                        if s not in (0, 503) or (s == 503 and path != '/sys/health' and not (
                                error_shape(r, 'shutting_down') and r['retryable'] is True)):
                            late.append(f'{method} {path} {dt * 1000:.0f} ms after the 202 -> {s} {show(r, 200)}')
                    time.sleep(0.05)
            else:
                node.proc.send_signal(signal.SIGTERM)
            timing['rc'] = node.wait_exit(max(0.0, 10 - (time.monotonic() - t0)))
            timing['elapsed'] = time.monotonic() - t0

        writers = run_writers(node, pre, {w: 1 for w in range(WRITERS)}, seed, shutdown_under_load)
        assert timing['rc'] is not None, f'{how} shutdown: still running after 10 s'
        assert timing['rc'] == 0, f'{how} shutdown: exit code {timing["rc"]}'
        print(f'{how}: exited 0 after {timing["elapsed"]:.2f}s; {sum(wr.acks for wr in writers)} acks')

        node.start()
        what = f'after {how} shutdown, seed={seed}'
        check_recovered(node, pre, writers, what)
        assert history(node, p) == hist, f'{what}: history changed:\nbefore {show(hist)}\nafter  {show(history(node, p))}'
        s, r, _ = node.get(q)
        assert s == 404, f'{what}: the write of a txn active at shutdown is visible: {s} {show(r)}'
        s, r = node.txn_status(ta)
        assert (s == 200 and r.get('status') == 'aborted') or (s == 404 and error_shape(r, 'txn_not_found')), \
            f'{what}: GET /txn/{ta} (active at shutdown) -> {s} {show(r)}'
        s, r = node.txn_status(tc)
        assert s == 200 and r.get('status') == 'committed', f'{what}: GET /txn/{tc} (committed before) -> {s} {show(r)}'
        assert node.value(pre + 'y') == 'committed'
        # the restarted node works and shuts down again
        s, r, _ = node.put(p, {'v': 5})
        assert s == 200, f'{what}: PUT -> {s} {show(r)}'
        assert [e.get('value') for e in history(node, p)][:2] == [{'v': 5}, {'v': 4}]
        s, r, rc = node.shutdown()
        assert s == 202 and rc == 0, f'second shutdown -> {s} {show(r)}, exit {rc}'
        assert not late, ('after POST /sys/shutdown answered 202, new requests must fail to connect or get '
                          '503 (shutting_down):\n' + '\n'.join(late[:10]))
    finally:
        node.close()
