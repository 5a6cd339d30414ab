"""Isolation anomalies from the literature (Berenson et al., "A Critique of ANSI SQL Isolation
Levels"; Adya's G0, G1a, G1b, G1c, G2), driven as explicit interleavings over HTTP, plus seeded
random histories.

No history is judged against a fixed expected outcome. Each is judged by serializability: the
committed transactions, with what each read (a value or "absent") and wrote, must be explained
by some serial order that, applied to the initial state, gives every value each committed
transaction read and the final state read back afterwards (brute force over permutations).
Where the clients' real-time order is known, a second check asks for a serial order that also
respects it (strict serializability, which DESIGN.md promises on one node).

A step answering 409 `conflict` aborts that transaction: it issues no more steps, and a later
request on it must answer 409 `txn_not_active`.

Writes are buffered until commit, so in a sequential (single-thread) interleaving no read can
block; the threaded histories at the end let reads meet transactions in the middle of commit.
"""
import itertools
import json
import random
import threading
import time

import pytest

from restm_testlib import error_shape, show, unique


class _Absent:
    def __repr__(self):
        return '<absent>'


ABSENT = _Absent()
_tick_lock = threading.Lock()
_tick = itertools.count(1)


def tick():
    with _tick_lock:
        return next(_tick)


class TxnRun:
    def __init__(self, name, program, deferred=False, read_only=False):
        self.name = name
        self.program = program      # list of steps; see HistoryRunner.step
        self.deferred = deferred    # writes sent in the commit body instead of PUT ?txn=
        self.read_only = read_only  # begin with {"readOnly": true}
        self.id = None
        self.status = 'pending'     # pending, active, committed, aborted
        self.reads = []             # (ptr, value or ABSENT) read before the txn wrote ptr itself
        self.own = {}               # ptr -> value or ABSENT written by this txn (final)
        self.pending = {}           # deferred writes not sent yet
        self.begin_tick = None
        self.commit_tick = None
        self.commit_attempted = False

    def __repr__(self):
        return (f'{self.name}[{self.id} {self.status}] reads={self.reads} '
                f'writes={ {p: v for p, v in self.own.items()} }')


class HistoryRunner:
    """Runs transaction programs against a node and checks the resulting history.

    Steps: ('r', p) GET /ptr/{p}?txn=; ('rb', [p, ...]) POST /txn/{t}/read; ('w', p, v) PUT;
    ('d', p) DELETE; ('c',) commit; ('a',) abort. Pointer names are local; the runner prefixes
    them so every history has its own pointers."""

    def __init__(self, node, tag, seed):
        self.node = node
        self.prefix = unique(tag)
        self.seed = seed
        self.transcript = []
        self.lock = threading.Lock()
        self.initial = {}
        self.names = set()

    def P(self, name):
        return self.prefix + name

    def note(self, line):
        with self.lock:
            self.transcript.append(line)

    def fail(self, msg):
        raise AssertionError(f'{msg}\nseed: {self.seed} (replay with RESTM_SEED=<first number>)\n' + self.report())

    def report(self):
        return 'transcript:\n  ' + '\n  '.join(self.transcript)

    # -- setup and final state ---------------------------------------------------------------
    def setup(self, initial, deleted=()):
        """initial: name -> value (present); deleted: names written and then deleted."""
        names = set(initial) | set(deleted)
        self.names |= names
        writes = {self.P(n): v for n, v in initial.items()}
        writes.update({self.P(n): f'doomed-{n}' for n in deleted})
        if writes:
            s, r = self.node.one_shot(writes=writes)
            if s != 200:
                self.fail(f'setup POST /txn writes -> {s} {show(r)}')
        if deleted:
            s, r = self.node.one_shot(deletes=[self.P(n) for n in deleted])
            if s != 200:
                self.fail(f'setup POST /txn deletes -> {s} {show(r)}')
        for n in names:
            self.initial[n] = initial.get(n, ABSENT)
        self.note(f'initial: {self.initial} (pointer ids are {self.prefix}<name>)')

    def final_state(self):
        out = {}
        for n in sorted(self.names):
            s, r, _ = self.node.get(self.P(n))
            if s == 404:
                out[n] = ABSENT
            elif s == 200 and isinstance(r, dict):
                out[n] = r.get('value')
            else:
                self.fail(f'final GET /ptr/{self.P(n)} -> {s} {show(r)}')
        self.note(f'final: {out}')
        return out

    # -- steps ---------------------------------------------------------------------------------
    def _aborted_by(self, tx, what, s, r):
        """A 409 on a step: must be a retryable conflict; the txn is then aborted."""
        if not (s == 409 and error_shape(r, 'conflict') and r.get('retryable') is True):
            self.fail(f'{tx.name} {what} -> {s} {show(r)}: expected success or 409 conflict with retryable true')
        tx.status = 'aborted'
        self.note(f'{tx.name} {what} -> 409 conflict (aborted)')

    def _begin(self, tx):
        tx.begin_tick = tick()
        body = {'readOnly': True} if tx.read_only else {}
        s, r, _ = self.node.call('POST', '/txn/begin', body)
        if s != 201 or not isinstance(r, dict) or not isinstance(r.get('txn'), str):
            self.fail(f'{tx.name} begin {body} -> {s} {show(r)}')
        tx.id, tx.status = r['txn'], 'active'
        self.note(f'{tx.name} begin{" readOnly" if tx.read_only else ""} -> {tx.id}')

    def _record_read(self, tx, name, entry, what):
        """entry: {"value", "version"} as served for name."""
        if not isinstance(entry, dict) or 'value' not in entry or 'version' not in entry:
            self.fail(f'{tx.name} {what}: bad read entry for {name}: {show(entry)}')
        if name in tx.own:
            # Its own buffered write: the version such a read reports is not specified.
            mine = tx.own[name]
            v = entry['value']
            if (mine is ABSENT and v is not None) or (mine is not ABSENT and v != mine):
                self.fail(f'{tx.name} {what}: read {v!r} of {name}, but it wrote {mine!r} itself (read your writes)')
            return mine
        if entry['version'] is None and entry['value'] is not None:
            self.fail(f'{tx.name} {what}: value without a version: {show(entry)}')
        v = ABSENT if entry['version'] is None else entry['value']
        tx.reads.append((name, v))
        return v

    def step(self, tx, st):
        if tx.status in ('aborted', 'committed'):
            return
        if tx.status == 'pending':
            self._begin(tx)
        kind = st[0]
        if kind == 'r':
            name = st[1]
            if name in tx.pending:
                return  # a deferred own write: nothing to ask
            s, r, _ = self.node.call('GET', f'/ptr/{self.P(name)}?txn={tx.id}')
            what = f'r({name})'
            if s == 409:
                return self._aborted_by(tx, what, s, r)
            if s != 200 or not isinstance(r, dict) or r.get('ptr') != self.P(name):
                self.fail(f'{tx.name} {what} -> {s} {show(r)}')
            v = self._record_read(tx, name, r, what)
            self.note(f'{tx.name} {what} -> {v!r}')
        elif kind == 'rb':
            names = [n for n in st[1] if n not in tx.pending]
            if not names:
                return
            s, r, _ = self.node.call('POST', f'/txn/{tx.id}/read', {'ptrs': [self.P(n) for n in names]})
            what = f'rb({",".join(names)})'
            if s == 409:
                return self._aborted_by(tx, what, s, r)
            if s != 200 or not isinstance(r, dict) or not isinstance(r.get('values'), dict):
                self.fail(f'{tx.name} {what} -> {s} {show(r)}')
            got = {}
            for n in names:
                if self.P(n) not in r['values']:
                    self.fail(f'{tx.name} {what}: {self.P(n)} missing from {show(r)}')
                got[n] = self._record_read(tx, n, r['values'][self.P(n)], what)
            self.note(f'{tx.name} {what} -> {got}')
        elif kind in ('w', 'd'):
            name = st[1]
            v = st[2] if kind == 'w' else ABSENT
            what = f'w({name}={v!r})' if kind == 'w' else f'd({name})'
            tx.own[name] = v
            if tx.deferred:
                tx.pending[name] = v
                self.note(f'{tx.name} {what} (deferred to commit)')
                return
            if kind == 'w':
                s, r, _ = self.node.call('PUT', f'/ptr/{self.P(name)}?txn={tx.id}', raw=json.dumps(v).encode())
            else:
                s, r, _ = self.node.call('DELETE', f'/ptr/{self.P(name)}?txn={tx.id}')
            if s == 409:
                return self._aborted_by(tx, what, s, r)
            if s != 204:
                self.fail(f'{tx.name} {what} -> {s} {show(r)}')
            self.note(f'{tx.name} {what} -> 204')
        elif kind == 'c':
            body = {}
            if tx.pending:
                body = {'writes': {self.P(n): v for n, v in tx.pending.items() if v is not ABSENT},
                        'deletes': [self.P(n) for n, v in tx.pending.items() if v is ABSENT]}
            tx.commit_attempted = True
            s, r, _ = self.node.call('POST', f'/txn/{tx.id}/commit', body)
            if s == 409:
                return self._aborted_by(tx, 'commit', s, r)
            if s != 200 or not isinstance(r, dict) or r.get('status') != 'committed' or r.get('txn') != tx.id:
                self.fail(f'{tx.name} commit {show(body)} -> {s} {show(r)}')
            tx.commit_tick = tick()
            tx.status = 'committed'
            self.note(f'{tx.name} commit -> committed')
        elif kind == 'a':
            s, r, _ = self.node.call('POST', f'/txn/{tx.id}/abort', {})
            if s != 200 or not isinstance(r, dict) or r.get('status') != 'aborted':
                self.fail(f'{tx.name} abort -> {s} {show(r)}')
            tx.status = 'aborted'
            self.note(f'{tx.name} abort -> aborted')
        else:
            raise ValueError(st)

    # -- checks --------------------------------------------------------------------------------
    def check_finished(self, txns):
        """Aborted txns refuse further requests with 409 txn_not_active; statuses are reported."""
        for tx in txns:
            if tx.id is None:
                continue
            s, r = self.node.txn_status(tx.id)
            if s != 200 or not isinstance(r, dict) or r.get('status') != tx.status:
                self.fail(f'GET /txn/{tx.id} ({tx.name}, {tx.status}) -> {s} {show(r)}')
            if tx.status == 'aborted':
                s, r, _ = self.node.call('GET', f'/ptr/{self.P("x")}?txn={tx.id}')
                if not (s == 409 and error_shape(r, 'txn_not_active')):
                    self.fail(f'read in aborted {tx.name} ({tx.id}) -> {s} {show(r)}: expected 409 txn_not_active')

    def check_serializable(self, txns, final, strict=True):
        committed = [t for t in txns if t.status == 'committed']
        order = find_serial_order(self.initial, committed, final)
        if order is None:
            self.fail('NOT SERIALIZABLE: no serial order of the committed transactions explains their reads '
                      'and the final state\ncommitted:\n  ' + '\n  '.join(map(repr, committed)) +
                      f'\ninitial: {self.initial}\nfinal:   {final}')
        if strict:
            order = find_serial_order(self.initial, committed, final, real_time=True)
            if order is None:
                self.fail('NOT STRICTLY SERIALIZABLE (serializable, but only in an order that contradicts real '
                          'time: a txn that began after another committed must come after it)\ncommitted:\n  ' +
                          '\n  '.join(f'{t!r} begin@{t.begin_tick} commit@{t.commit_tick}' for t in committed))
        return committed


def find_serial_order(initial, committed, final, real_time=False):
    """A permutation of committed that reproduces every read and the final state, else None.
    real_time: T must come after every txn whose commit was acknowledged before T began."""
    n = len(committed)
    for perm in itertools.permutations(range(n)):
        if real_time:
            pos = {i: k for k, i in enumerate(perm)}
            if any(committed[a].commit_tick < committed[b].begin_tick and pos[a] > pos[b]
                   for a in range(n) for b in range(n) if a != b):
                continue
        state = dict(initial)
        ok = True
        for i in perm:
            t = committed[i]
            if any(state.get(p, ABSENT) != v for p, v in t.reads):
                ok = False
                break
            state.update(t.own)
        if ok and all(state.get(p, ABSENT) == v for p, v in final.items()):
            return [committed[i].name for i in perm]
    return None


def run_sequential(node, tag, seed, initial, programs, order, deleted=(), deferred=(), read_only=()):
    """Runs programs (lists of steps) in the interleaving `order` (a list of txn indexes, one per
    step), single-threaded, then checks the history."""
    h = HistoryRunner(node, tag, seed)
    h.setup(initial, deleted)
    txns = [TxnRun(f'T{i + 1}', prog, deferred=i in deferred, read_only=i in read_only)
            for i, prog in enumerate(programs)]
    for tx in txns:
        for st in tx.program:
            if st[0] in ('r', 'w', 'd'):
                h.names.add(st[1])
            elif st[0] == 'rb':
                h.names.update(st[1])
    h.note('interleaving: ' + ' '.join(txns[i].name for i in order))
    cursor = [0] * len(txns)
    first_commit = None
    for i in order:
        tx = txns[i]
        st = tx.program[cursor[i]]
        cursor[i] += 1
        was_committed_before = any(t.status == 'committed' for t in txns)
        h.step(tx, st)
        if st[0] == 'c' and tx.commit_attempted and first_commit is None and not was_committed_before:
            first_commit = tx
    final = h.final_state()
    h.check_finished(txns)
    committed = h.check_serializable(txns, final)
    if first_commit is not None and first_commit.status != 'committed':
        h.fail(f'the first commit attempted ({first_commit.name}), with no committed concurrent writer, was refused')
    if not committed and any(t.program[-1] == ('c',) for t in txns):
        h.fail('no transaction committed')
    return txns, h


def interleavings(lengths, rng, limit):
    """Up to `limit` distinct merges of programs of the given lengths (all if fewer), seeded."""
    total = 1
    n = sum(lengths)
    rem = n
    for L in lengths:
        total *= _comb(rem, L)
        rem -= L
    if total <= limit:
        out = []

        def rec(prefix, left):
            if not any(left):
                out.append(list(prefix))
                return
            for i, k in enumerate(left):
                if k:
                    left[i] -= 1
                    prefix.append(i)
                    rec(prefix, left)
                    prefix.pop()
                    left[i] += 1
        rec([], list(lengths))
        return out
    seen = set()
    while len(seen) < limit:
        seq = [i for i, L in enumerate(lengths) for _ in range(L)]
        rng.shuffle(seq)
        seen.add(tuple(seq))
    return [list(s) for s in sorted(seen)]


def _comb(n, k):
    from math import comb
    return comb(n, k)


# ------------------------------------------------------------------------------------------------
# Explicit anomalies. Each: initial state, deleted-at-start names, programs, and the canonical
# interleaving from the literature (always run) besides sampled others.

R, RB, W, D, C, A = 'r', 'rb', 'w', 'd', 'c', 'a'

SCENARIOS = {
    # G0 dirty write: w1(x) w2(x) w2(y) c2 w1(y) c1 -- x and y must end up from the same txn.
    'G0_dirty_write': dict(
        initial={'x': 0, 'y': 0},
        programs=[[(W, 'x', 'T1'), (W, 'y', 'T1'), (C,)], [(W, 'x', 'T2'), (W, 'y', 'T2'), (C,)]],
        canonical=[0, 1, 1, 1, 0, 0]),
    # G1a aborted read: w1(x) r2(x) a1 r2(x) c2 -- T2 must never see T1's write.
    'G1a_aborted_read': dict(
        initial={'x': 'init'},
        programs=[[(W, 'x', 'T1-aborted'), (W, 'y', 'T1-aborted'), (A,)], [(R, 'x'), (RB, ['x', 'y']), (C,)]],
        canonical=[0, 0, 1, 0, 1, 1]),
    # G1a with an abort forced by a conflict: T1 reads x, T3 overwrites x and commits, T1's
    # commit must fail; T2 reads around it.
    'G1a_conflict_aborted_read': dict(
        initial={'x': 'init', 'y': 'init'},
        programs=[[(R, 'x'), (W, 'x', 'T1'), (W, 'y', 'T1'), (C,)],
                  [(R, 'y'), (R, 'x'), (C,)],
                  [(R, 'x'), (W, 'x', 'T3'), (C,)]],
        canonical=[0, 2, 2, 2, 0, 0, 0, 1, 1, 1]),
    # G1b intermediate read: T1 writes x twice; nobody may see the first value.
    'G1b_intermediate_read': dict(
        initial={'x': 'init'},
        programs=[[(W, 'x', 'T1-intermediate'), (W, 'x', 'T1-final'), (C,)], [(R, 'x'), (RB, ['x']), (C,)]],
        canonical=[0, 1, 0, 1, 0, 1]),
    # G1c circular information flow: w1(x) w2(y) r1(y) r2(x) c1 c2.
    'G1c_circular_flow': dict(
        initial={'x': 'init', 'y': 'init'},
        programs=[[(W, 'x', 'T1'), (R, 'y'), (C,)], [(W, 'y', 'T2'), (R, 'x'), (C,)]],
        canonical=[0, 1, 0, 1, 0, 1]),
    # P4 lost update: r1(x) r2(x) w1(x) w2(x) c1 c2.
    'P4_lost_update': dict(
        initial={'x': 10},
        programs=[[(R, 'x'), (W, 'x', 'T1'), (C,)], [(R, 'x'), (W, 'x', 'T2'), (C,)]],
        canonical=[0, 1, 0, 1, 0, 1]),
    # A5A read skew: r1(x) w2(x) w2(y) c2 r1(y) c1.
    'A5A_read_skew': dict(
        initial={'x': 50, 'y': 50},
        programs=[[(R, 'x'), (R, 'y'), (C,)], [(W, 'x', 'T2'), (W, 'y', 'T2'), (C,)]],
        canonical=[0, 1, 1, 1, 0, 0]),
    # A5B write skew: r1(x) r1(y) r2(x) r2(y) w1(x) w2(y) c1 c2.
    'A5B_write_skew': dict(
        initial={'x': 'on', 'y': 'on'},
        programs=[[(R, 'x'), (R, 'y'), (W, 'x', 'T1'), (C,)], [(R, 'x'), (R, 'y'), (W, 'y', 'T2'), (C,)]],
        canonical=[0, 0, 1, 1, 0, 1, 0, 1]),
    # G2 with three txns: r1(x) w1(y); r2(y) w2(z); r3(z) w3(x) -- a cycle of anti-dependencies.
    'G2_three_cycle': dict(
        initial={'x': 'init', 'y': 'init', 'z': 'init'},
        programs=[[(R, 'x'), (W, 'y', 'T1'), (C,)], [(R, 'y'), (W, 'z', 'T2'), (C,)], [(R, 'z'), (W, 'x', 'T3'), (C,)]],
        canonical=[0, 1, 2, 0, 1, 2, 0, 1, 2]),
    # Phantom on absent pointers: each reads that the other's pointer is absent, then creates its own.
    'phantom_mutual_create': dict(
        initial={},
        programs=[[(R, 'a'), (W, 'b', 'T1'), (C,)], [(R, 'b'), (W, 'a', 'T2'), (C,)]],
        canonical=[0, 1, 0, 1, 0, 1]),
    # Phantom with a "count" pointer: T1 sees no item and creates the count, T2 sees no count and creates an item.
    'phantom_count': dict(
        initial={},
        programs=[[(R, 'item'), (W, 'count', 'T1'), (C,)], [(R, 'count'), (W, 'item', 'T2'), (C,)]],
        canonical=[0, 1, 0, 1, 0, 1]),
    # Predicate-style create-if-absent from both: "if no pointer named X exists, create it".
    'phantom_create_if_absent': dict(
        initial={},
        programs=[[(R, 'X'), (W, 'X', 'T1'), (C,)], [(R, 'X'), (W, 'X', 'T2'), (C,)]],
        canonical=[0, 1, 0, 1, 0, 1]),
    # The same where X existed once and was deleted before both began.
    'phantom_create_if_absent_deleted': dict(
        initial={}, deleted=['X'],
        programs=[[(R, 'X'), (W, 'X', 'T1'), (C,)], [(R, 'X'), (W, 'X', 'T2'), (C,)]],
        canonical=[0, 1, 0, 1, 0, 1]),
    # Predicate over a set read in one batch: "none of a, b, c exists" -> create one of them.
    'phantom_batch_predicate': dict(
        initial={}, deleted=['c'],
        programs=[[(RB, ['a', 'b', 'c']), (W, 'a', 'T1'), (C,)], [(RB, ['a', 'b', 'c']), (W, 'b', 'T2'), (C,)]],
        canonical=[0, 1, 0, 1, 0, 1]),
    # Delete versus read-then-write: T1 deletes x and reads y; T2 reads x and writes y.
    'delete_skew': dict(
        initial={'x': 'init', 'y': 'init'},
        programs=[[(R, 'y'), (D, 'x'), (C,)], [(R, 'x'), (W, 'y', 'T2'), (C,)]],
        canonical=[0, 1, 0, 1, 0, 1]),
}

INTERLEAVINGS_PER_SCENARIO = 24


@pytest.mark.parametrize('name', list(SCENARIOS))
def test_anomaly(server, seed, name):
    sc = SCENARIOS[name]
    rng = random.Random(f'{seed}:{name}')
    progs = sc['programs']
    orders = interleavings([len(p) for p in progs], rng, INTERLEAVINGS_PER_SCENARIO)
    if sc['canonical'] not in orders:
        orders.insert(0, sc['canonical'])
    outcomes = {}
    for k, order in enumerate(orders):
        # Every other run sends the writes in the commit body instead of PUT ?txn=.
        deferred = {i for i in range(len(progs)) if rng.random() < 0.3}
        txns, _ = run_sequential(server, f'iso.{name}', seed, sc['initial'], progs, order,
                                 deleted=sc.get('deleted', ()), deferred=deferred)
        key = ' '.join(t.status[0] for t in txns)
        outcomes[key] = outcomes.get(key, 0) + 1
    print(f'{name}: {len(orders)} interleavings, outcomes (c=committed a=aborted): {outcomes}')


# ------------------------------------------------------------------------------------------------
# Random histories

def random_programs(rng, n_txns, names=('x', 'y', 'z')):
    programs, read_only = [], set()
    for i in range(n_txns):
        prog, j = [], 0
        for _ in range(rng.randint(2, 4)):
            u = rng.random()
            p = rng.choice(names)
            if u < 0.4:
                prog.append((R, p))
            elif u < 0.5:
                prog.append((RB, rng.sample(names, rng.randint(1, 3))))
            elif u < 0.9:
                j += 1
                prog.append((W, p, f'T{i + 1}.{j}'))
            else:
                prog.append((D, p))
        prog.append((A,) if rng.random() < 0.05 else (C,))
        if all(st[0] in (R, RB) for st in prog[:-1]) and rng.random() < 0.5:
            read_only.add(i)
        programs.append(prog)
    return programs, read_only


def random_initial(rng, names=('x', 'y', 'z')):
    initial, deleted = {}, []
    for p in names:
        u = rng.random()
        if u < 0.6:
            initial[p] = f'init-{p}'
        elif u < 0.8:
            deleted.append(p)
    return initial, deleted


N_RANDOM_HISTORIES = 200


def test_random_histories_sequential(server, seed):
    rng = random.Random(seed)
    stats = {'committed': 0, 'aborted': 0}
    for k in range(N_RANDOM_HISTORIES):
        hseed = rng.randrange(2**31)
        hr = random.Random(hseed)
        initial, deleted = random_initial(hr)
        programs, read_only = random_programs(hr, hr.randint(3, 5))
        order = [i for i, p in enumerate(programs) for _ in p]
        hr.shuffle(order)
        # program order within each txn is kept by the cursor in run_sequential
        deferred = {i for i in range(len(programs)) if hr.random() < 0.3}
        txns, h = run_sequential(server, f'rnd{k}', f'{seed} (history {k}, history seed {hseed})',
                                 initial, programs, order, deleted=deleted, deferred=deferred, read_only=read_only)
        for t in txns:
            stats[t.status] = stats.get(t.status, 0) + 1
    print(f'{N_RANDOM_HISTORIES} random histories: {stats}')


# ------------------------------------------------------------------------------------------------
# Threaded histories: each txn in its own thread, so reads can meet commits in flight.

N_THREADED_HISTORIES = 150


def test_random_histories_threaded(server, seed):
    rng = random.Random(seed)
    totals = {}
    for k in range(N_THREADED_HISTORIES):
        hseed = rng.randrange(2**31)
        hr = random.Random(hseed)
        h = HistoryRunner(server, f'thr{k}', f'{seed} (threaded history {k}, history seed {hseed})')
        initial, deleted = random_initial(hr)
        h.setup(initial, deleted)
        programs, read_only = random_programs(hr, hr.randint(3, 4))
        txns = [TxnRun(f'T{i + 1}', p, deferred=hr.random() < 0.3, read_only=i in read_only)
                for i, p in enumerate(programs)]
        for tx in txns:
            for st in tx.program:
                if st[0] in (R, W, D):
                    h.names.add(st[1])
                elif st[0] == RB:
                    h.names.update(st[1])
        barrier = threading.Barrier(len(txns))
        errors = []
        delays = [[hr.uniform(0, 0.004) for _ in p] for p in programs]

        def run(i):
            try:
                barrier.wait(timeout=30)
                for st, d in zip(txns[i].program, delays[i]):
                    time.sleep(d)
                    h.step(txns[i], st)
            except Exception as e:  # reported below with the transcript
                errors.append(e)

        threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(txns))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=90)
        if any(t.is_alive() for t in threads):
            h.fail('a transaction thread hung for 90 s')
        if errors:
            raise errors[0]
        final = h.final_state()
        h.check_finished(txns)
        h.check_serializable(txns, final)
        for t in txns:
            totals[t.status] = totals.get(t.status, 0) + 1
    print(f'{N_THREADED_HISTORIES} threaded histories: {totals}')
    assert totals.get('committed', 0) > 0, f'nothing committed in any threaded history; seed={seed}'


# ------------------------------------------------------------------------------------------------
# Continuous concurrent readers against a writer: read skew and intermediate reads under load.

def test_concurrent_read_skew_and_intermediate_reads(server, seed):
    rng = random.Random(seed)
    pre = unique('iso.skew')
    x, y = pre + 'x', pre + 'y'
    s, r = server.one_shot(writes={x: 0, y: 0})
    assert s == 200, f'{s} {show(r)}'
    stop = threading.Event()
    bad, errors, counts = [], [], {'writes': 0, 'reads': 0}

    def writer():
        i = 0
        wr = random.Random(rng.randrange(2**31))
        try:
            while not stop.is_set():
                i += 1
                t = server.begin()
                for st in ((x, -i), (y, -i), (x, i), (y, i)):  # the negative values are intermediate
                    s, r = server.write(t, *st)
                    if s != 204:
                        errors.append(f'writer PUT -> {s} {show(r)}')
                        return
                s, r = server.commit(t) if wr.random() < 0.5 else server.commit(t, {'writes': {x: i, y: i}})
                if s == 200:
                    counts['writes'] += 1
                elif s != 409:
                    errors.append(f'writer commit -> {s} {show(r)}')
                    return
        except Exception as e:
            errors.append(repr(e))

    def reader(k):
        rr = random.Random(rng.randrange(2**31))
        try:
            while not stop.is_set():
                t = server.begin(read_only=rr.random() < 0.5)
                vals = []
                ok = True
                for p in (x, y) if rr.random() < 0.5 else (y, x):
                    s, r = server.read(t, p)
                    if s == 409 and error_shape(r, 'conflict'):
                        ok = False
                        break
                    if s != 200:
                        errors.append(f'reader GET -> {s} {show(r)}')
                        return
                    vals.append(r['value'])
                if not ok:
                    continue
                if vals[0] != vals[1] or vals[0] < 0:
                    bad.append(f'txn {t} read {vals} (x and y are always written equal; negatives are intermediate)')
                s, r = server.commit(t)
                if s != 200:
                    errors.append(f'read-only commit -> {s} {show(r)}')
                    return
                counts['reads'] += 1
        except Exception as e:
            errors.append(repr(e))

    threads = [threading.Thread(target=writer, daemon=True)] + \
              [threading.Thread(target=reader, args=(k,), daemon=True) for k in range(3)]
    for t in threads:
        t.start()
    time.sleep(3)
    stop.set()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), f'threads hung; seed={seed}'
    assert not errors, f'seed={seed}: {errors[:5]}'
    assert not bad, f'seed={seed}: {len(bad)} inconsistent reads, e.g. {bad[:5]}'
    assert counts['writes'] > 0 and counts['reads'] > 0, f'seed={seed}: {counts}'
    print(counts)
