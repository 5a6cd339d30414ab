"""Lost updates under contention: concurrent read-modify-write increments of one counter must
all count, whether done in transactions (retry on 409), with PUT If-Match (retry on 412), or
with one-shot POST /txn expectations (retry on 412)."""
import http.client
import json
import random
import threading
import time

from restm_testlib import backoff, error_shape, show, unique

THREADS = 8
INCREMENTS = 50
DEADLINE = 120.0   # seconds for a whole test; a livelocked server fails instead of hanging


def run_threads(fn, seed):
    errors, threads = [], []

    def wrap(k):
        try:
            fn(k)
        except Exception as e:
            errors.append(f'thread {k}: {e!r}' if not isinstance(e, AssertionError) else f'thread {k}: {e}')

    for k in range(THREADS):
        threads.append(threading.Thread(target=wrap, args=(k,), daemon=True))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=DEADLINE + 30)
    assert not any(t.is_alive() for t in threads), f'threads still running after {DEADLINE + 30}s; seed={seed}'
    assert not errors, f'seed={seed}:\n' + '\n'.join(errors[:5])


def test_transactional_increments(server, seed):
    c = unique('lost') + 'counter'
    s, r, _ = server.put(c, 0)
    assert s == 200, f'{s} {show(r)}'
    deadline = time.monotonic() + DEADLINE
    stats = {'commits': 0, 'conflicts': 0}
    lock = threading.Lock()

    def worker(k):
        rng = random.Random(f'{seed}:{k}')
        done = 0
        while done < INCREMENTS:
            attempt = 0
            while True:
                assert time.monotonic() < deadline, f'only {done} increments after {DEADLINE}s (livelock?)'
                attempt += 1
                t = server.begin()
                s, r = server.read(t, c)
                if s == 200:
                    v = r['value']
                    assert isinstance(v, int), f'counter holds {show(r)}'
                    # Half the threads buffer the write with PUT, the others send it with the commit.
                    if k % 2 == 0:
                        s, r = server.write(t, c, v + 1)
                        if s == 204:
                            s, r = server.commit(t)
                    else:
                        s, r = server.commit(t, {'writes': {c: v + 1}})
                if s == 200:
                    assert r.get('status') == 'committed', show(r)
                    break
                assert s == 409 and error_shape(r, 'conflict') and r['retryable'] is True, f'{s} {show(r)}'
                with lock:
                    stats['conflicts'] += 1
                backoff(rng, attempt)
            done += 1
            with lock:
                stats['commits'] += 1

    run_threads(worker, seed)
    final = server.value(c)
    print(stats)
    assert stats['commits'] == THREADS * INCREMENTS
    assert final == THREADS * INCREMENTS, \
        f'seed={seed}: {THREADS * INCREMENTS} increments committed but the counter is {final} (lost updates); {stats}'


def test_if_match_increments(server, seed):
    c = unique('lost.ifmatch') + 'counter'
    s, r, _ = server.put(c, 0)
    assert s == 200, f'{s} {show(r)}'
    deadline = time.monotonic() + DEADLINE
    lock = threading.Lock()
    successes = []   # (base version, new version)
    stats = {'412': 0, '409': 0}

    def worker(k):
        rng = random.Random(f'{seed}:{k}')
        done = 0
        attempt = 0
        while done < INCREMENTS:
            assert time.monotonic() < deadline, f'only {done} increments after {DEADLINE}s'
            s, r, h = server.get(c)
            assert s == 200, f'GET -> {s} {show(r)}'
            ver = r['version']
            assert h.get('etag', '').strip('"') == ver, f'ETag {h.get("etag")!r} vs version {ver!r}'
            s, r, _ = server.put(c, r['value'] + 1, if_match=ver)
            if s == 200:
                assert isinstance(r, dict) and isinstance(r.get('version'), str), show(r)
                with lock:
                    successes.append((ver, r['version']))
                done += 1
                attempt = 0
                continue
            if s == 412:
                assert error_shape(r, 'precondition_failed'), f'412 {show(r)}'
            else:
                assert s == 409 and error_shape(r, 'conflict'), f'PUT If-Match -> {s} {show(r)}'
            with lock:
                stats[str(s)] += 1
            attempt += 1
            backoff(rng, attempt)

    run_threads(worker, seed)
    final = server.value(c)
    print(f'{len(successes)} successful PUTs; refused: {stats}')
    bases = [b for b, _ in successes]
    dup = {b for b in bases if bases.count(b) > 1}
    assert not dup, f'seed={seed}: several PUTs succeeded with the same If-Match version: {sorted(dup)[:5]}'
    assert final == len(successes), \
        f'seed={seed}: {len(successes)} conditional PUTs succeeded but the counter is {final}'


def test_one_shot_expect_increments(server, seed):
    c = unique('lost.oneshot') + 'counter'
    s, r, _ = server.put(c, 0)
    assert s == 200, f'{s} {show(r)}'
    n = INCREMENTS // 2
    deadline = time.monotonic() + DEADLINE
    count = [0]
    lock = threading.Lock()

    def worker(k):
        rng = random.Random(f'{seed}:{k}')
        done = attempt = 0
        while done < n:
            assert time.monotonic() < deadline, f'only {done} increments after {DEADLINE}s'
            s, r = server.one_shot(reads=[c])
            assert s == 200, f'POST /txn reads -> {s} {show(r)}'
            e = r['values'][c]
            s, r = server.one_shot(expect={c: e['version']}, writes={c: e['value'] + 1})
            if s == 200:
                done += 1
                attempt = 0
                with lock:
                    count[0] += 1
                continue
            assert (s == 412 and error_shape(r, 'expectation_failed')) or (s == 409 and error_shape(r, 'conflict')), \
                f'POST /txn expect -> {s} {show(r)}'
            attempt += 1
            backoff(rng, attempt)

    run_threads(worker, seed)
    final = server.value(c)
    assert final == count[0] == THREADS * n, f'seed={seed}: {count[0]} one-shot increments succeeded, counter is {final}'


def test_create_once_race(server, seed):
    """Each thread creates the same absent pointer expecting it absent (version null): exactly one wins."""
    for round_ in range(5):
        p = unique('lost.create') + 'once'
        barrier = threading.Barrier(THREADS)
        results = [None] * THREADS

        def worker(k):
            barrier.wait(timeout=30)
            results[k] = server.one_shot(expect={p: None}, writes={p: f'writer-{k}'})

        run_threads(worker, seed)
        wins = [k for k, (s, _) in enumerate(results) if s == 200]
        others = [(s, r) for s, r in results if s != 200]
        assert len(wins) == 1, f'seed={seed}: {len(wins)} creators won (expected exactly one): {results}'
        for s, r in others:
            assert (s == 412 and error_shape(r, 'expectation_failed')) or (s == 409 and error_shape(r, 'conflict')), \
                f'{s} {show(r)}'
        assert server.value(p) == f'writer-{wins[0]}'


def test_one_shots_say_how_often_the_node_ran_them(server, seed):
    """Blind one-shot writes racing on one pointer: the node retries those that collide
    (API.md's single-request retries) and says so with `attempts` (docs/API-EXTENSIONS.md),
    so that a client can count the conflicts it did not see. The retries add up to the
    conflicts /sys/metrics counted meanwhile (at least: other work may conflict too)."""
    p = unique('race') + 'hot'
    lock = threading.Lock()

    def conflicts():
        s, m, _ = server.call('GET', '/sys/metrics')
        assert s == 200, f'{s} {show(m)}'
        return sum(m['txns']['conflicts'].values())

    for _ in range(10):
        before = conflicts()
        seen = []

        def writer(k):
            for i in range(INCREMENTS):
                s, r = server.one_shot(writes={p: k * 1000 + i})
                assert s == 200, f'one-shot -> {s} {show(r)}'
                a = r.get('attempts', 1)
                assert isinstance(a, int) and a >= 1 and ('attempts' not in r or a >= 2), f'attempts: {show(r)}'
                with lock:
                    seen.append(a)

        run_threads(writer, seed)
        extra = sum(a - 1 for a in seen)
        counted = conflicts() - before
        assert len(seen) == THREADS * INCREMENTS
        assert extra <= counted, f'answers report {extra} retries, the node counted {counted} conflicts; seed={seed}'
        if extra > 0:
            return
    raise AssertionError(f'{THREADS} threads racing on one pointer, 10 times, and the node never retried; seed={seed}')


def test_if_match_holds_on_every_write_that_takes_it(server):
    """`If-Match` was honoured on a plain PUT only: a DELETE with a stale tag deleted, a PUT
    inside a transaction ignored it, and `*`, lists and weak tags were misread. RFC 9110: a
    false condition means the method is not performed (412); `*` matches any current
    version; tags compare strongly, so a weak one never matches."""
    x = unique('ifm') + 'x'
    s, r, _ = server.put(x, 1)
    assert s == 200
    v1 = r['version']
    s, r, _ = server.call('DELETE', f'/ptr/{x}', headers={'If-Match': '"00000000000000000001"'})
    assert s == 412 and error_shape(r, 'precondition_failed') and r.get('current') == v1, f'{s} {show(r)}'
    assert server.value(x) == 1
    s, r, _ = server.call('DELETE', f'/ptr/{x}', headers={'If-Match': f'"{v1}"'})
    assert s == 200, f'{s} {show(r)}'
    assert server.value(x) is None
    # `*`: only a pointer that exists.
    s, r, _ = server.call('PUT', f'/ptr/{x}', raw=b'2', headers={'If-Match': '*'})
    assert s == 412 and r.get('current') is None, f'{s} {show(r)}'
    s, r, _ = server.put(x, 2)
    v2 = r['version']
    s, r, _ = server.call('PUT', f'/ptr/{x}', raw=b'3', headers={'If-Match': '*'})
    assert s == 200, f'{s} {show(r)}'
    v3 = r['version']
    # A list matches when any of its tags does; a weak tag never does.
    s, r, _ = server.call('PUT', f'/ptr/{x}', raw=b'4', headers={'If-Match': f'"{v2}", "{v3}"'})
    assert s == 200, f'{s} {show(r)}'
    v4 = r['version']
    s, r, _ = server.call('PUT', f'/ptr/{x}', raw=b'5', headers={'If-Match': f'W/"{v4}"'})
    assert s == 412, f'{s} {show(r)}'
    s, r, _ = server.call('PUT', f'/ptr/{x}', raw=b'5', headers={'If-Match': v4})
    assert s == 400 and error_shape(r, 'bad_request'), f'unquoted tag: {s} {show(r)}'
    # Inside a transaction the condition is refused, not ignored; the transaction goes on.
    t = server.begin()
    for method, raw in (('PUT', b'6'), ('DELETE', None)):
        s, r, _ = server.call(method, f'/ptr/{x}?txn={t}', raw=raw, headers={'If-Match': f'"{v4}"'})
        assert s == 400 and error_shape(r, 'bad_request') and 'If-Match' in r['message'], f'{method}: {s} {show(r)}'
    s, r = server.write(t, x, 7)
    assert s == 204
    s, r = server.commit(t)
    assert s == 200, f'{s} {show(r)}'
    assert server.value(x) == 7


def test_a_pointer_named_twice_is_answered_once(server):
    """`POST /txn` answered a pointer read or expected twice twice in one JSON object (and
    counted it twice in its message); the version expected last counts, as in any JSON
    object with a repeated key."""
    x = unique('twice') + 'x'
    s, w, _ = server.put(x, 'v')
    assert s == 200

    def post(raw):
        """-> (status, body parsed keeping every pair of every object)."""
        conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
        try:
            conn.request('POST', '/txn', body=raw.encode(), headers={'Content-Type': 'application/json'})
            resp = conn.getresponse()
            return resp.status, json.loads(resp.read(), object_pairs_hook=lambda pairs: pairs)
        finally:
            conn.close()

    s, r = post('{"reads": ["%s", "%s"]}' % (x, x))
    values = dict(r)['values']
    assert s == 200 and values == [(x, [('value', 'v'), ('version', w['version'])])], f'{s} {r}'
    s, r = post('{"expect": {"%s": null, "%s": null}, "writes": {"%s": 1}}' % (x, x, x))
    assert s == 412 and dict(r)['current'] == [(x, w['version'])], f'{s} {r}'
    # Two different versions for one pointer can never both hold: refused, nothing written
    # (keeping either one would commit on a check not made).
    for pair in (('null', '"%s"' % w['version']), ('"%s"' % w['version'], 'null')):
        raw = '{"expect": {"%s": %s, "%s": %s}, "writes": {"%s": 2}}' % (x, pair[0], x, pair[1], x)
        s, r, _ = server.call('POST', '/txn', raw=raw.encode())
        assert s == 400 and error_shape(r, 'bad_request'), f'{pair}: {s} {show(r)}'
    assert server.value(x) == 'v'
    raw = '{"expect": {"%s": "%s", "%s": "%s"}, "writes": {"%s": 2}}' % (x, w['version'], x, w['version'], x)
    s, r, _ = server.call('POST', '/txn', raw=raw.encode())
    assert s == 200, f'the same expectation twice is one: {s} {show(r)}'
