"""The bank test: 50 accounts of 100 each; concurrent transfers must never create or destroy
money, and every read-only snapshot of all accounts must sum to 5000.

Transfers retry the whole transaction on 409 (conflict) and, for the one-shot form, on 412
(expectation_failed). $RESTM_STRESS_SECONDS sets the load time (default 8 s).
"""
import os
import random
import threading
import time

from restm_testlib import backoff, error_shape, show, unique

N_ACCOUNTS = 50
INITIAL = 100
TOTAL = N_ACCOUNTS * INITIAL
TRANSFER_THREADS = 16
AUDIT_THREADS = 2
DURATION = float(os.environ.get('RESTM_STRESS_SECONDS', '8'))


def balance(entry, who):
    """entry: {"value": {"balance": n}, "version": v} -> n, asserting the shape."""
    assert isinstance(entry, dict) and isinstance(entry.get('value'), dict), f'{who}: bad entry {show(entry)}'
    b = entry['value'].get('balance')
    assert isinstance(b, int) and not isinstance(b, bool), f'{who}: bad balance {show(entry)}'
    return b


class Load:
    """Runs worker threads until the duration is over; collects errors and counters."""

    def __init__(self, seed):
        self.seed = seed
        self.stop = threading.Event()
        self.errors = []
        self.lock = threading.Lock()
        self.counts = {}

    def count(self, k, n=1):
        with self.lock:
            self.counts[k] = self.counts.get(k, 0) + n

    def error(self, msg):
        with self.lock:
            self.errors.append(msg)
        self.stop.set()

    def run(self, workers, duration):
        threads = [threading.Thread(target=self._wrap, args=(w,), daemon=True) for w in workers]
        for t in threads:
            t.start()
        self.stop.wait(duration)
        self.stop.set()
        for t in threads:
            t.join(timeout=90)
        hung = sum(t.is_alive() for t in threads)
        assert not hung, f'{hung} worker threads still running 90 s after stop; seed={self.seed}'
        assert not self.errors, f'seed={self.seed}: {len(self.errors)} errors, first ones:\n' + '\n'.join(self.errors[:5])

    def _wrap(self, fn):
        try:
            fn()
        except AssertionError as e:
            self.error(f'assertion: {e}')
        except Exception as e:
            self.error(f'exception: {e!r}')


def setup_accounts(server, tag):
    pre = unique(tag)
    accts = [f'{pre}acct:{i}' for i in range(N_ACCOUNTS)]
    s, r = server.one_shot(writes={a: {'balance': INITIAL} for a in accts})
    assert s == 200, f'setup -> {s} {show(r)}'
    return accts


def final_total(server, accts, seed):
    s, r = server.one_shot(reads=accts)
    assert s == 200 and isinstance(r, dict) and isinstance(r.get('values'), dict), f'{s} {show(r)}'
    snap = sum(balance(r['values'][a], 'final one-shot read') for a in accts)
    plain = sum(server.value(a)['balance'] for a in accts)
    assert snap == TOTAL and plain == TOTAL, f'seed={seed}: final totals {snap} (one snapshot) and {plain} (GET each), expected {TOTAL}'


def test_bank_interactive_transactions(server, seed):
    accts = setup_accounts(server, 'bank')
    load = Load(seed)

    def transfer_once(rng):
        """-> 'committed' or 'retry'."""
        a, b = rng.sample(accts, 2)
        t = server.begin()
        bal = {}
        for p in (a, b):
            s, r = server.read(t, p)
            if s == 409:
                assert error_shape(r, 'conflict') and r['retryable'] is True, f'read -> 409 {show(r)}'
                return 'retry'
            assert s == 200 and isinstance(r, dict), f'GET {p}?txn -> {s} {show(r)}'
            bal[p] = balance(r, f'txn {t} read of {p}')
            assert bal[p] >= 0, f'negative balance read in txn {t}: {p} = {bal[p]}'
        amount = min(bal[a], rng.randint(1, 20))
        new = {a: {'balance': bal[a] - amount}, b: {'balance': bal[b] + amount}}
        if rng.random() < 0.5:
            for p, v in new.items():
                s, r = server.write(t, p, v)
                if s == 409:
                    return 'retry'
                assert s == 204, f'PUT {p}?txn -> {s} {show(r)}'
            s, r = server.commit(t)
        else:
            s, r = server.commit(t, {'writes': new})
        if s == 409:
            assert error_shape(r, 'conflict') and r['retryable'] is True, f'commit -> 409 {show(r)}'
            return 'retry'
        assert s == 200 and r.get('status') == 'committed', f'commit -> {s} {show(r)}'
        return 'committed'

    def transferer(k):
        def work():
            rng = random.Random(f'{seed}:transfer:{k}')
            while not load.stop.is_set():
                attempt = 0
                while not load.stop.is_set():
                    attempt += 1
                    if transfer_once(rng) == 'committed':
                        load.count('transfers')
                        break
                    load.count('conflicts')
                    backoff(rng, attempt)
        return work

    def auditor(k):
        def work():
            rng = random.Random(f'{seed}:audit:{k}')
            while not load.stop.is_set():
                # Auditor 0 uses readOnly transactions, auditor 1 plain ones that only read.
                t = server.begin(read_only=True) if k == 0 else server.begin()
                s, r = server.read_many(t, accts)
                if s == 409:
                    assert error_shape(r, 'conflict'), f'batch read -> 409 {show(r)}'
                    load.count('audit_conflicts')
                    backoff(rng, 1)
                    continue
                assert s == 200 and isinstance(r, dict) and isinstance(r.get('values'), dict), \
                    f'POST /txn/{t}/read -> {s} {show(r)}'
                missing = [a for a in accts if a not in r['values']]
                assert not missing, f'batch read lacks {missing[:3]}'
                bals = [balance(r['values'][a], f'audit txn {t}') for a in accts]
                total = sum(bals)
                assert total == TOTAL, f'audit txn {t} saw a total of {total}, not {TOTAL}: {bals}'
                assert min(bals) >= 0, f'audit txn {t} saw a negative balance: {bals}'
                s, r = server.commit(t)
                assert s == 200, f'commit of read-only audit txn {t} -> {s} {show(r)}'
                load.count('audits')
        return work

    load.run([transferer(k) for k in range(TRANSFER_THREADS)] + [auditor(k) for k in range(AUDIT_THREADS)], DURATION)
    print(f'interactive bank: {load.counts}')
    assert load.counts.get('transfers', 0) > 0, f'no transfer committed; seed={seed} {load.counts}'
    assert load.counts.get('audits', 0) > 0, f'no audit completed; seed={seed} {load.counts}'
    final_total(server, accts, seed)


def test_bank_one_shot_transactions(server, seed):
    """The same with POST /txn: read two balances, then write both expecting their versions."""
    accts = setup_accounts(server, 'bank1')
    load = Load(seed)

    def transfer_once(rng):
        a, b = rng.sample(accts, 2)
        s, r = server.one_shot(reads=[a, b])
        if s == 409:
            return 'retry'
        assert s == 200 and isinstance(r, dict) and isinstance(r.get('values'), dict), f'POST /txn reads -> {s} {show(r)}'
        vals = r['values']
        bal = {p: balance(vals.get(p), f'one-shot read of {p}') for p in (a, b)}
        amount = min(bal[a], rng.randint(1, 20))
        expect = {p: vals[p]['version'] for p in (a, b)}
        assert all(isinstance(v, str) for v in expect.values()), f'versions missing: {show(vals)}'
        s, r = server.one_shot(expect=expect,
                               writes={a: {'balance': bal[a] - amount}, b: {'balance': bal[b] + amount}})
        if s == 412:
            assert error_shape(r, 'expectation_failed') and isinstance(r.get('current'), dict), f'412 {show(r)}'
            return 'retry'
        if s == 409:
            assert error_shape(r, 'conflict'), f'409 {show(r)}'
            return 'retry'
        assert s == 200 and r.get('status') == 'committed', f'POST /txn expect+writes -> {s} {show(r)}'
        return 'committed'

    def transferer(k):
        def work():
            rng = random.Random(f'{seed}:transfer1:{k}')
            while not load.stop.is_set():
                attempt = 0
                while not load.stop.is_set():
                    attempt += 1
                    if transfer_once(rng) == 'committed':
                        load.count('transfers')
                        break
                    load.count('retries')
                    backoff(rng, attempt)
        return work

    def auditor(k):
        def work():
            rng = random.Random(f'{seed}:audit1:{k}')
            while not load.stop.is_set():
                s, r = server.one_shot(reads=accts)
                if s == 409:
                    load.count('audit_conflicts')
                    backoff(rng, 1)
                    continue
                assert s == 200 and isinstance(r, dict) and isinstance(r.get('values'), dict), f'{s} {show(r)}'
                bals = [balance(r['values'].get(a), 'one-shot audit') for a in accts]
                assert sum(bals) == TOTAL, f'one-shot audit saw a total of {sum(bals)}, not {TOTAL}: {bals}'
                load.count('audits')
        return work

    load.run([transferer(k) for k in range(TRANSFER_THREADS)] + [auditor(k) for k in range(AUDIT_THREADS)],
             max(2.0, DURATION * 0.75))
    print(f'one-shot bank: {load.counts}')
    assert load.counts.get('transfers', 0) > 0, f'no transfer committed; seed={seed} {load.counts}'
    assert load.counts.get('audits', 0) > 0, f'no audit completed; seed={seed} {load.counts}'
    final_total(server, accts, seed)
