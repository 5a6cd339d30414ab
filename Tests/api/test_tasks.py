"""Tasks through the HTTP contract (API.md, Tasks): `POST /task`, `GET /task/info/{id}`,
`GET /task/result/{id}`, the sort demo (`GET`/`POST /demo/sort`, `GET /demo/sort/result/{task}`)
and `POST /sys/init`.

- refusals: unknown kind, malformed bodies, unknown ids, wrong methods (the node stays healthy);
- `demo.sum` trees: the sum, the tree shape (children, parents, progress counted over the
  whole tree, compared with the split computed here), a failing leaf retried up to 3 runs and
  then failing its ancestors, `from > to` failing;
- a node started with `--workers 0` keeps tasks queued (`/task/result` answers 202 with the
  info at its timeout, `/demo/sort/result` 202) until `POST /sys/init` (idempotent);
- `POST /demo/sort` of 5000 seeded random strings with non-ASCII, combining marks, astral
  characters, NUL, the empty string and duplicates: paged output == Python's `sorted` (code
  point order);
- `GET /demo/sort?n=20000&seed=3`: sorted, complete, deterministic per seed;
- `kill -9` of a node in the middle of a 300,000-string sort, restart on the same data dir: the
  dead workers' claims are taken over, the sort ends done, complete and sorted, with the same
  checksum as a clean run of the same seed.

The demo's generated strings (SplitMix-based) are not reproduced here: their output is checked
for order (Python compares str by code points, as the server does) and count.
"""
import random
import time

import pytest

from restm_testlib import Server, error_shape, show

RESULT_DEADLINE = 120.0   # seconds a task may take before a test gives up (debug build, busy host)
PAGE = 1000               # the node's largest page (limits.pageItemsMax)
B32 = 'abcdefghijklmnopqrstuvwxyz234567'
DEMO_ALPHABET = set('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789')


# --------------------------------------------------------------------------------------------
# helpers

@pytest.fixture
def idle_node():
    """A node started with --workers 0: tasks stay queued until POST /sys/init."""
    srv = Server(name='idle', extra_args=['--workers', '0'])
    srv.start()
    try:
        yield srv
    finally:
        srv.close()


def random_task_id(rng):
    """A well-formed task id (`k` + 26 base-32 digits) that no node issued."""
    return 'k' + ''.join(rng.choice(B32) for _ in range(26))


def submit(node, kind, inp):
    s, r, _ = node.call('POST', '/task', {'kind': kind, 'input': inp})
    assert s == 201 and isinstance(r, dict) and isinstance(r.get('task'), str), \
        f'POST /task {kind} {show(inp)} -> {s} {show(r)}'
    return r['task']


def info(node, task):
    s, r, _ = node.call('GET', f'/task/info/{task}')
    assert s == 200 and isinstance(r, dict) and r.get('task') == task, f'GET /task/info/{task} -> {s} {show(r)}'
    return r


def wait_result(node, task, what='', deadline=RESULT_DEADLINE):
    """GET /task/result in a loop until it answers 200; -> the body."""
    end = time.monotonic() + deadline
    last = None
    while time.monotonic() < end:
        s, r, _ = node.call('GET', f'/task/result/{task}?timeoutMs=5000')
        if s == 200:
            assert isinstance(r, dict) and r.get('status') in ('done', 'failed'), \
                f'{what}: GET /task/result/{task} -> 200 {show(r)}'
            return r
        assert s == 202 and isinstance(r, dict) and r.get('task') == task, \
            f'{what}: GET /task/result/{task} -> {s} {show(r)} (expected 200, or 202 with the info)'
        last = r
    raise AssertionError(f'{what}: task {task} not finished within {deadline} s; last info {show(last)}')


def sort_page(node, task, offset, limit=PAGE):
    s, r, _ = node.call('GET', f'/demo/sort/result/{task}?offset={offset}&limit={limit}')
    assert s == 200 and isinstance(r, dict) and isinstance(r.get('total'), int) and isinstance(r.get('items'), list), \
        f'GET /demo/sort/result/{task}?offset={offset}&limit={limit} -> {s} {show(r)}'
    assert all(isinstance(x, str) for x in r['items']), f'non-string items at offset {offset}: {show(r)}'
    return r['total'], r['items']


def sort_all(node, task):
    """Every string of a finished demo.sort, paged PAGE at a time; -> (total, items)."""
    total, items = sort_page(node, task, 0)
    out = list(items)
    while len(out) < total:
        t, items = sort_page(node, task, len(out))
        assert t == total, f'total changed while paging: {total} then {t} at offset {len(out)}'
        assert items, f'empty page at offset {len(out)} of {total}'
        assert len(items) <= PAGE, f'{len(items)} items on a page of limit {PAGE}'
        out += items
    assert len(out) == total, f'paged {len(out)} items, total says {total}'
    return total, out


def first_descent(items):
    """The first i with items[i] < items[i-1] (code point order), else None."""
    return next((i for i in range(1, len(items)) if items[i] < items[i - 1]), None)


def tree(node, root):
    """{id: info} of every task of the tree below root (breadth first)."""
    seen, level = {}, [root]
    while level:
        nxt = []
        for t in level:
            i = info(node, t)
            seen[t] = i
            nxt += i['children']
        level = nxt
    return seen


def sum_split(frm, to, leaf, fanout):
    """The ranges a demo.sum over [frm, to) spawns, as the server splits it ([] for a leaf)."""
    leaf, fanout = max(leaf, 1), min(max(fanout, 2), 16)
    n = to - frm
    if n <= leaf:
        return []
    return [(frm + n * k // fanout, frm + n * (k + 1) // fanout) for k in range(fanout)]


def sum_tree_size(frm, to, leaf, fanout):
    return 1 + sum(sum_tree_size(a, b, leaf, fanout) for a, b in sum_split(frm, to, leaf, fanout))


def check_sum_tree(node, root, frm, to, leaf, fanout, ctx):
    """The tree below root has the shape of the split, every task done, parents right."""
    infos = tree(node, root)
    stack = [(root, frm, to, None)]
    while stack:
        t, a, b, parent = stack.pop()
        i = infos[t]
        where = f'{ctx}: task {t} over [{a}, {b})'
        assert i['kind'] == 'demo.sum' and i['status'] == 'done', f'{where}: {show(i)}'
        assert i['parent'] == parent, f'{where}: parent {i["parent"]!r}, expected {parent!r}'
        split = sum_split(a, b, leaf, fanout)
        assert len(i['children']) == len(split), f'{where}: {len(i["children"])} children, expected {len(split)}: {show(i)}'
        stack += [(c, ca, cb, t) for c, (ca, cb) in zip(i['children'], split)]
    assert len(infos) == sum_tree_size(frm, to, leaf, fanout), f'{ctx}: {len(infos)} tasks in the tree'


# --------------------------------------------------------------------------------------------
# 1. refusals

def test_refusals(server, seed):
    rng = random.Random(seed)
    ctx = f'RESTM_SEED={seed}'

    s, r, _ = server.call('POST', '/task', {'kind': 'no.such.kind', 'input': {'x': 1}})
    assert s == 400 and error_shape(r, 'unknown_kind') and r['retryable'] is False, f'unknown kind -> {s} {show(r)}'
    assert 'no.such.kind' in r['message'], f'unknown kind: the message does not name it: {show(r)}'

    for raw in [b'not json', b'[]', b'{"input":1}', b'{"kind":5,"input":1}', b'"demo.sum"', b'',
                b'{"kind":"demo.sum"']:
        s, r, _ = server.call('POST', '/task', raw=raw)
        assert s == 400 and error_shape(r), f'POST /task {raw!r} -> {s} {show(r)} (expected 400 with the error shape)'

    unknown = random_task_id(rng)
    for path in ['/task/info/nope', f'/task/info/{unknown}', '/task/result/nope?timeoutMs=0',
                 f'/task/result/{unknown}?timeoutMs=100', f'/task/result/{unknown}',
                 f'/demo/sort/result/{unknown}', '/demo/sort/result/nope']:
        t0 = time.monotonic()
        s, r, _ = server.call('GET', path)
        assert s == 404 and error_shape(r, 'not_found'), f'{ctx}: GET {path} -> {s} {show(r)} (expected 404 not_found)'
        assert time.monotonic() - t0 < 5, f'{ctx}: GET {path}: 404 took {time.monotonic() - t0:.1f} s'

    for method, path in [('GET', '/task'), ('PUT', '/task'), ('DELETE', '/task'),
                         ('POST', f'/task/info/{unknown}'), ('DELETE', f'/task/info/{unknown}'),
                         ('PUT', f'/task/result/{unknown}'), ('POST', f'/task/result/{unknown}'),
                         ('PUT', '/demo/sort'), ('DELETE', '/demo/sort'),
                         ('POST', f'/demo/sort/result/{unknown}'), ('DELETE', f'/demo/sort/result/{unknown}')]:
        s, r, _ = server.call(method, path, raw=b'{}' if method in ('POST', 'PUT') else None)
        assert s == 405 and error_shape(r, 'method_not_allowed'), f'{ctx}: {method} {path} -> {s} {show(r)} (expected 405)'

    for path in [f'/task/result/{unknown}?timeoutMs=abc', f'/task/result/{unknown}?timeoutMs=-1',
                 '/demo/sort?n=0', '/demo/sort?n=abc', '/demo/sort?n=10000001']:
        s, r, _ = server.call('GET', path)
        assert s == 400 and error_shape(r), f'{ctx}: GET {path} -> {s} {show(r)} (expected 400)'

    # A record that fits only as submitted could never be claimed (claiming adds to it): it
    # sat at the front of its queue shard for ever, and the workers looped on 413s. Now the
    # submit is refused, with the node's 413, not a 500 from the task service.
    s, r, _ = server.call('POST', '/task', {'kind': 'demo.sum', 'input': {'from': 0, 'to': 2, 'pad': 'x' * 1_048_396}})
    assert s == 413 and error_shape(r, 'too_large'), f'an input at the value limit -> {s} {show(r)}'
    s, r, _ = server.call('POST', '/task', {'kind': 'demo.sum', 'input': {'from': 0, 'to': 2, 'pad': 'x' * 1_048_500}})
    assert s == 413 and error_shape(r, 'too_large'), f'an input past the value limit -> {s} {show(r)}'
    s, r, _ = server.call('POST', '/demo/sort', body=['x' * 1_048_575])
    assert s == 413 and error_shape(r, 'too_large'), f'a string past the value limit -> {s} {show(r)}'

    s, r, _ = server.call('GET', '/sys/health')
    assert s == 200 and isinstance(r, dict) and r.get('status') == 'ok', f'health afterwards -> {s} {show(r)}'
    # and the node still runs tasks
    t = submit(server, 'demo.sum', {'from': 0, 'to': 10})
    r = wait_result(server, t, 'after the refusals')
    assert r == {'status': 'done', 'result': 45}, f'demo.sum [0, 10) after the refusals -> {show(r)}'


# --------------------------------------------------------------------------------------------
# 2., 3. demo.sum

def test_sum_tree(server, seed):
    rng = random.Random(seed)
    frm = rng.randrange(-5000, 5000)
    cases = [(0, 1000, 50, 4), (frm, frm + rng.randrange(200, 1200), rng.choice([5, 10, 25, 100]), rng.randint(2, 7)),
             (7, 7, 100, 4), (-3, 2, 1, 16)]
    for frm, to, leaf, fanout in cases:
        ctx = f'RESTM_SEED={seed}: demo.sum [{frm}, {to}) leaf {leaf} fanout {fanout}'
        root = submit(server, 'demo.sum', {'from': frm, 'to': to, 'leaf': leaf, 'fanout': fanout})
        r = wait_result(server, root, ctx)
        assert r == {'status': 'done', 'result': sum(range(frm, to))}, f'{ctx}: {show(r)}, expected {sum(range(frm, to))}'
        i = info(server, root)
        size = sum_tree_size(frm, to, leaf, fanout)
        assert i['kind'] == 'demo.sum' and i['status'] == 'done' and i['parent'] is None, f'{ctx}: {show(i)}'
        assert len(i['children']) == len(sum_split(frm, to, leaf, fanout)), f'{ctx}: children {show(i)}'
        assert i['progress'] == {'done': size, 'total': size, 'complete': True}, \
            f'{ctx}: progress {i["progress"]}, expected {size} of {size}, complete'
        if size <= 600:
            check_sum_tree(server, root, frm, to, leaf, fanout, ctx)


def test_sum_fails_at_a_leaf(server, seed):
    rng = random.Random(seed)
    frm, to, leaf, fanout = 0, rng.randrange(300, 2000), rng.choice([10, 30, 100]), rng.randint(2, 5)
    k = rng.randrange(frm, to)
    ctx = f'RESTM_SEED={seed}: demo.sum [{frm}, {to}) leaf {leaf} fanout {fanout} fail {k}'
    root = submit(server, 'demo.sum', {'from': frm, 'to': to, 'leaf': leaf, 'fanout': fanout, 'fail': k})
    r = wait_result(server, root, ctx)
    assert r.get('status') == 'failed' and isinstance(r.get('error'), str) and 'result' not in r, f'{ctx}: {show(r)}'
    assert str(k) in r['error'], f'{ctx}: the error does not mention {k}: {show(r)}'

    # The path from the root to the failing leaf: every task on it failed; the leaf ran 3 times.
    t, a, b, path = root, frm, to, []
    while True:
        i = info(server, t)
        path.append(i)
        assert i['status'] == 'failed' and str(k) in (i.get('error') or ''), \
            f'{ctx}: task {t} over [{a}, {b}) on the path to the failing leaf: {show(i)}'
        split = sum_split(a, b, leaf, fanout)
        if not split:
            break
        assert len(i['children']) == len(split), f'{ctx}: task {t}: {show(i)}'
        (c, (a, b)), = [(c, (ca, cb)) for c, (ca, cb) in zip(i['children'], split) if ca <= k < cb]
        t = c
    assert path[-1]['attempts'] == 3, f'{ctx}: the failing leaf ran {path[-1]["attempts"]} times, expected 3: {show(path[-1])}'
    assert 'asked to fail' in path[-1]['error'], f'{ctx}: {show(path[-1])}'

    # A task whose own run fails (from > to) fails after 3 runs too.
    bad = submit(server, 'demo.sum', {'from': 5, 'to': 1})
    r = wait_result(server, bad, f'{ctx}: demo.sum from 5 to 1')
    assert r.get('status') == 'failed' and 'from' in r.get('error', ''), f'demo.sum from 5 to 1 -> {show(r)}'
    i = info(server, bad)
    assert i['status'] == 'failed' and i['attempts'] == 3 and i['progress']['done'] == 0, f'demo.sum from 5 to 1: {show(i)}'


def test_queued_until_init(idle_node, seed):
    """--workers 0: nothing runs; /task/result times out with 202 + info, /demo/sort/result 202;
    POST /sys/init starts the workers (idempotent) and everything finishes."""
    rng = random.Random(seed)
    ctx = f'RESTM_SEED={seed}'
    frm, to = rng.randrange(-100, 100), rng.randrange(1000, 3000)
    sum_task = submit(idle_node, 'demo.sum', {'from': frm, 'to': to, 'leaf': 64, 'fanout': 3})
    strings = [''.join(rng.choice('abcXYZé😀') for _ in range(rng.randrange(0, 6))) for _ in range(300)]
    s, r, _ = idle_node.call('POST', '/demo/sort', strings)
    assert s == 202 and isinstance(r, dict) and isinstance(r.get('task'), str), f'POST /demo/sort -> {s} {show(r)}'
    sort_task = r['task']

    t0 = time.monotonic()
    s, r, _ = idle_node.call('GET', f'/task/result/{sum_task}?timeoutMs=400')
    waited = time.monotonic() - t0
    assert s == 202, f'{ctx}: GET /task/result?timeoutMs=400 on a queued task -> {s} {show(r)} (expected 202)'
    assert isinstance(r, dict) and r.get('task') == sum_task and r.get('kind') == 'demo.sum' \
        and r.get('status') == 'queued' and r.get('children') == [] and r.get('parent') is None \
        and r.get('progress', {}).get('done') == 0, f'{ctx}: the 202 does not carry the queued task\'s info: {show(r)}'
    assert 0.3 <= waited < 10, f'{ctx}: timeoutMs=400 answered after {waited:.2f} s'
    s, r, _ = idle_node.call('GET', f'/task/result/{sum_task}?timeoutMs=0')
    assert s == 202 and r.get('status') == 'queued', f'{ctx}: timeoutMs=0 -> {s} {show(r)}'

    s, r, _ = idle_node.call('GET', f'/demo/sort/result/{sort_task}?offset=0&limit=10')
    assert s == 202 and isinstance(r, dict) and r.get('task') == sort_task and r.get('kind') == 'demo.sort' \
        and r.get('status') == 'queued', f'{ctx}: /demo/sort/result before the sort ran -> {s} {show(r)} (expected 202 with the info)'
    s, r, _ = idle_node.call('GET', f'/demo/sort/result/{sum_task}')
    assert s == 404 and error_shape(r, 'not_found'), f'/demo/sort/result of a demo.sum task -> {s} {show(r)}'
    time.sleep(0.3)
    assert info(idle_node, sum_task)['status'] == 'queued', 'a task ran on a node started with --workers 0'

    s, r, _ = idle_node.call('POST', '/sys/init', {})
    assert s == 200 and isinstance(r, dict) and r.get('status') == 'ok' and isinstance(r.get('workers'), int) \
        and r['workers'] >= 1, f'POST /sys/init -> {s} {show(r)}'
    workers = r['workers']
    for method in ('POST', 'GET'):
        s, r, _ = idle_node.call(method, '/sys/init', {} if method == 'POST' else None)
        assert s == 200 and r == {'status': 'ok', 'workers': workers}, \
            f'{method} /sys/init again -> {s} {show(r)}, expected the same {workers} workers'

    r = wait_result(idle_node, sum_task, f'{ctx}: demo.sum after init')
    assert r == {'status': 'done', 'result': sum(range(frm, to))}, f'{ctx}: demo.sum [{frm}, {to}) -> {show(r)}'
    r = wait_result(idle_node, sort_task, f'{ctx}: sort after init')
    assert r.get('status') == 'done' and r['result'].get('total') == len(strings), f'{ctx}: {show(r)}'
    total, items = sort_all(idle_node, sort_task)
    assert items == sorted(strings), f'{ctx}: the sort after init differs from sorted()'


# --------------------------------------------------------------------------------------------
# 4. POST /demo/sort

SPECIALS = ['', 'é', 'e\u0301', '😀', 'ｚ', 'z', 'Z', 'e', 'ß', 'ss', '中文', '\u0000', '\t', ' ', '"', '\\',
            '\uffff', '\U0010ffff', '\u00a0', 'a\u0000b', '🇫🇷', 'Ω', 'Ω', 'é😀', 'e\u0301\u0301']
POOL = list('abcdeEZz09 _-~') + ['é', 'e\u0301', '\u0301', '😀', 'ｚ', 'ß', '中', 'Ω', '\u0000', '\n', '"', '\\',
                                '\uffff', '\U0010ffff', '\U0001f9ea', 'ÿ', 'Ā', '\u2028']


def random_strings(rng, n):
    out = list(SPECIALS)
    while len(out) < n:
        if out and rng.random() < 0.08:
            out.append(rng.choice(out))          # duplicates
        else:
            out.append(''.join(rng.choice(POOL) for _ in range(rng.randrange(0, 9))))
    rng.shuffle(out)
    return out


def test_post_sort_unicode(server, seed):
    rng = random.Random(seed)
    strings = random_strings(rng, 5000)
    ctx = f'RESTM_SEED={seed}: POST /demo/sort of {len(strings)} strings'
    s, r, _ = server.call('POST', '/demo/sort', strings)
    assert s == 202 and isinstance(r, dict) and isinstance(r.get('task'), str), f'{ctx} -> {s} {show(r)}'
    task = r['task']
    r = wait_result(server, task, ctx)
    res = r.get('result') or {}
    assert r.get('status') == 'done' and res.get('sorted') is True and res.get('complete') is True \
        and res.get('total') == len(strings), f'{ctx}: {show(r)}'
    total, items = sort_all(server, task)
    want = sorted(strings)
    if items != want:
        i = next((i for i, (a, b) in enumerate(zip(items, want)) if a != b), min(len(items), len(want)))
        raise AssertionError(f'{ctx}: the sorted output differs from sorted() first at position {i}: '
                             f'got {items[i:i + 3]!r}, expected {want[i:i + 3]!r} ({len(items)} vs {len(want)} items)')
    # a page past the end, and one straddling it
    t, page = sort_page(server, task, len(strings))
    assert t == len(strings) and page == [], f'{ctx}: page at the end -> {t} {show(page)}'
    t, page = sort_page(server, task, len(strings) - 7, 100)
    assert page == want[-7:], f'{ctx}: the last 7 -> {page!r}'

    i = info(server, task)
    assert i['kind'] == 'demo.sort' and i['status'] == 'done' and i['progress']['done'] == i['progress']['total'] >= 2, \
        f'{ctx}: {show(i)}'

    # An empty array sorts to nothing.
    s, r, _ = server.call('POST', '/demo/sort', [])
    assert s == 202, f'POST /demo/sort [] -> {s} {show(r)}'
    r2 = wait_result(server, r['task'], 'POST /demo/sort []')
    assert r2.get('status') == 'done' and r2['result'].get('total') == 0, f'POST /demo/sort [] -> {show(r2)}'
    assert sort_page(server, r['task'], 0) == (0, []), 'POST /demo/sort []: a page'


def test_post_sort_bad_bodies(server):
    for raw in [b'{"strings": ["a"]}', b'["a", 1]', b'["a", null]', b'[["a"]]', b'"a"', b'not json', b'["a",', b'']:
        s, r, _ = server.call('POST', '/demo/sort', raw=raw)
        assert s == 400 and error_shape(r), f'POST /demo/sort {raw!r} -> {s} {show(r)} (expected 400 with the error shape)'
    assert server.healthy()


# --------------------------------------------------------------------------------------------
# 5. GET /demo/sort

def test_generated_sort(server):
    n = 20000
    s, r, _ = server.call('GET', f'/demo/sort?n={n}&seed=3')
    assert s == 202 and isinstance(r, dict) and isinstance(r.get('task'), str), f'GET /demo/sort -> {s} {show(r)}'
    task = r['task']
    r = wait_result(server, task, f'demo sort n={n} seed=3')
    res = r.get('result') or {}
    assert r.get('status') == 'done' and res.get('sorted') is True and res.get('complete') is True \
        and res.get('total') == n, f'demo sort n={n} seed=3: {show(r)}'
    total, items = sort_all(server, task)
    assert total == n and len(items) == n, f'{total} / {len(items)} strings, expected {n}'
    d = first_descent(items)
    assert d is None, f'not sorted at {d}: {items[d - 1]!r} before {items[d]!r}'
    odd = [x for x in items if len(x) != 10 or not set(x) <= DEMO_ALPHABET]
    assert not odd, f'strings that are not 10 characters of [A-Za-z0-9]: {odd[:5]!r}'
    i = info(server, task)
    assert i['status'] == 'done' and i['progress']['complete'] is True \
        and i['progress']['done'] == i['progress']['total'] >= 3, f'info: {show(i)}'
    assert len(i['children']) == 1, f'demo.sort spawns one sort.range: {show(i)}'

    # The same seed sorts the same strings.
    s, r, _ = server.call('GET', f'/demo/sort?n={n}&seed=3')
    again = wait_result(server, r['task'], 'demo sort n=20000 seed=3, again')
    assert again['result']['checksum'] == res['checksum'], f'seed 3 twice: {show(res)} then {show(again)}'
    assert sort_page(server, r['task'], 12345) == sort_page(server, task, 12345), 'seed 3 twice: a page differs'


# --------------------------------------------------------------------------------------------
# 6. kill -9 in the middle of a sort

def test_kill9_mid_sort(seed):
    rng = random.Random(seed)
    n = 300_000
    ctx = f'RESTM_SEED={seed}: demo sort n={n} seed={seed}'
    node = Server(name='tasks-kill9', extra_args=['--task-lease-ms', '1000'])
    node.start()
    try:
        s, r, _ = node.call('GET', f'/demo/sort?n={n}&seed={seed}')
        assert s == 202 and isinstance(r, dict) and isinstance(r.get('task'), str), f'{ctx}: GET /demo/sort -> {s} {show(r)}'
        task = r['task']
        # Kill once part of the tree is done, and a little later (random) for variety.
        extra = rng.uniform(0, 0.4)
        end = time.monotonic() + RESULT_DEADLINE
        seen = None
        while time.monotonic() < end:
            i = info(node, task)
            p = i['progress']
            assert i['status'] not in ('done', 'failed'), \
                f'{ctx}: the sort finished ({show(i)}) before it could be killed midway; use a larger n'
            if 0 < p['done'] < p['total']:
                seen = i
                break
            time.sleep(0.03)
        assert seen is not None, f'{ctx}: no progress within {RESULT_DEADLINE} s'
        time.sleep(extra)
        before = info(node, task)
        assert before['status'] not in ('done', 'failed'), f'{ctx}: finished before the kill: {show(before)}'
        node.kill9()
        print(f'killed -9 at {before["status"]} {before["progress"]}')

        node.start()
        after = info(node, task)
        r = wait_result(node, task, f'{ctx}, after kill -9 at {before["progress"]}')
        res = r.get('result') or {}
        assert r.get('status') == 'done' and res.get('total') == n and res.get('sorted') is True \
            and res.get('complete') is True, \
            f'{ctx}: after kill -9 (info before the kill {show(before)}; after restart {show(after)}) -> {show(r)}'

        # Windows of the output: the first, the last, and random ones.
        starts = [0, n - PAGE, n - 1] + [rng.randrange(0, n - PAGE) for _ in range(6)]
        for off in starts:
            total, items = sort_page(node, task, off)
            assert total == n, f'{ctx}: window at {off}: total {total}'
            assert len(items) == min(PAGE, n - off), f'{ctx}: window at {off}: {len(items)} items'
            d = first_descent(items)
            assert d is None, f'{ctx}: window at {off} not sorted at {off + d}: {items[d - 1]!r} before {items[d]!r}'
            odd = [x for x in items if len(x) != 10 or not set(x) <= DEMO_ALPHABET]
            assert not odd, f'{ctx}: window at {off}: strings not of the demo: {odd[:5]!r}'
        t, past = sort_page(node, task, n)
        assert t == n and past == [], f'{ctx}: page past the end: {show(past)}'

        # Some step was in flight at the kill: its claim was taken over and it ran again.
        infos = tree(node, task)
        assert all(x['status'] == 'done' for x in infos.values()), \
            f'{ctx}: tasks of the tree not done: {show([x for x in infos.values() if x["status"] != "done"])}'
        rerun = [x for x in infos.values() if x['attempts'] >= 2]
        assert rerun, (f'{ctx}: no task of the {len(infos)} ran twice, so no step was in flight at the kill '
                       f'(info before the kill {show(before)})')
        print(f'{len(rerun)} of {len(infos)} tasks ran more than once')
        final = info(node, task)
        assert final['progress'] == {'done': len(infos), 'total': len(infos), 'complete': True}, f'{ctx}: {show(final)}'

        # The same seed on a clean run gives the same multiset (checksum).
        s, r, _ = node.call('GET', f'/demo/sort?n={n}&seed={seed}')
        assert s == 202, f'{ctx}: second GET /demo/sort -> {s} {show(r)}'
        clean = wait_result(node, r['task'], f'{ctx}, clean run')
        assert clean.get('status') == 'done' and clean['result']['checksum'] == res['checksum'], \
            f'{ctx}: the crashed run ended with {show(res)}, a clean run of the same seed with {show(clean)}'
        assert sort_page(node, r['task'], starts[-1]) == sort_page(node, task, starts[-1]), \
            f'{ctx}: the window at {starts[-1]} differs between the crashed run and a clean one'
    finally:
        node.close()
