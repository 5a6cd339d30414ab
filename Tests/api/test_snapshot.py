"""Time travel and stable snapshots: GET ?at=, history paging, listing paging, read-only
transactions, and the Restm-Ts / Restm-After headers."""
import datetime
import time

from restm_testlib import error_shape, show, unique


def put_versions(server, p, values):
    """PUT each value in turn -> the versions the server answered, in order."""
    versions = []
    for v in values:
        s, r, _ = server.put(p, v)
        assert s == 200 and isinstance(r, dict) and isinstance(r.get('version'), str), f'PUT {p} -> {s} {show(r)}'
        versions.append(r['version'])
    assert len(set(versions)) == len(versions), f'versions repeat: {versions}'
    return versions


def iso(dt):
    return dt.astimezone(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.') + f'{dt.microsecond // 1000:03d}Z'


def test_at_version(server):
    p = unique('snap') + 'p'
    values = [{'n': i} for i in range(4)]
    versions = put_versions(server, p, values)
    for v, ver in zip(values, versions):
        s, r, h = server.call('GET', f'/ptr/{p}?at={ver}')
        assert s == 200 and r.get('value') == v and r.get('version') == ver and r.get('ptr') == p, \
            f'GET ?at={ver} -> {s} {show(r)}; expected {v} at {ver}'
    s, r, h = server.get(p)
    assert r.get('value') == values[-1] and h.get('etag', '').strip('"') == versions[-1], f'{s} {show(r)} {h}'
    # a delete: ?at= before it still sees the value
    s, r, _ = server.call('DELETE', f'/ptr/{p}')
    assert s == 200, f'{s} {show(r)}'
    assert server.get(p)[0] == 404
    s, r, _ = server.call('GET', f'/ptr/{p}?at={versions[-1]}')
    assert s == 200 and r.get('value') == values[-1], f'GET ?at= before the delete -> {s} {show(r)}'


def test_at_iso_instant(server):
    p = unique('snap.iso') + 'p'
    put_versions(server, p, ['before'])
    time.sleep(0.3)
    mid = datetime.datetime.now(datetime.timezone.utc)
    time.sleep(0.3)
    put_versions(server, p, ['after'])
    s, r, _ = server.call('GET', f'/ptr/{p}?at={iso(mid)}')
    assert s == 200 and r.get('value') == 'before', f'GET ?at={iso(mid)} -> {s} {show(r)}'
    # before the pointer existed (but inside the retention window): not found
    s, r, _ = server.call('GET', f'/ptr/{p}?at={iso(mid - datetime.timedelta(seconds=5))}')
    assert s == 404 and error_shape(r, 'not_found'), f'GET ?at= before the first write -> {s} {show(r)}'


def test_at_out_of_range(server):
    p = unique('snap.range') + 'p'
    put_versions(server, p, ['v'])
    future = iso(datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1))
    s, r, _ = server.call('GET', f'/ptr/{p}?at={future}')
    assert s == 400 and error_shape(r), f'GET ?at= a day in the future -> {s} {show(r)}; expected 400'
    s, r, _ = server.call('GET', f'/ptr/{p}?at=2000-01-01T00:00:00Z')
    assert s == 410 and error_shape(r, 'pruned'), f'GET ?at= in the year 2000 -> {s} {show(r)}; expected 410 pruned'
    s, r, _ = server.call('GET', f'/ptr/{p}?at=garbage')
    assert s == 400 and error_shape(r, 'bad_timestamp'), f'GET ?at=garbage -> {s} {show(r)}'
    # Impossible fields used to roll over into another instant (second 99 of a minute a
    # moment ago read the value of a minute later; February 30th was March 2nd).
    now = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=2)
    for bad in (now.strftime('%Y-%m-%dT%H:%M:99Z'), now.strftime('%Y-%m-%dT%H:99:00Z'),
                now.strftime('%Y-%m-%dT25:%M:00Z'), '2026-02-30T00:00:00Z', '2026-13-01T00:00:00Z',
                '2025-02-29T00:00:00Z'):
        for path in (f'/ptr/{p}?at={bad}', f'/ptr/{p}/history?before={bad}'):
            s, r, _ = server.call('GET', path)
            assert s == 400 and error_shape(r, 'bad_timestamp'), f'GET {path} -> {s} {show(r)}'
    s, r, _ = server.call('GET', f'/ptr/{p}?at=2024-02-29T00:00:00Z')
    assert s == 410, f'a real leap day -> {s} {show(r)}'


def test_history_paging(server):
    p = unique('snap.hist') + 'p'
    values = [{'n': i} for i in range(5)]
    versions = put_versions(server, p, values)
    s, r, _ = server.call('GET', f'/ptr/{p}/history?limit=10')
    assert s == 200 and r.get('ptr') == p, f'{s} {show(r)}'
    full = r['versions']
    assert [e.get('value') for e in full] == values[::-1], f'history not newest first: {show(full)}'
    assert [e.get('version') for e in full] == versions[::-1], f'history versions differ from the PUT answers: {show(full)}'
    assert all(isinstance(e.get('txn'), str) for e in full), f'history entries lack txn: {show(full)}'
    # pages of two, newest first, each page continuing strictly before the last version seen
    pages, before = [], None
    for _ in range(10):
        q = f'/ptr/{p}/history?limit=2' + (f'&before={before}' if before else '')
        s, r, _ = server.call('GET', q)
        assert s == 200, f'GET {q} -> {s} {show(r)}'
        page = r['versions']
        assert len(page) <= 2, f'GET {q}: {len(page)} entries for limit=2'
        if not page:
            break
        pages.append([e['value'] for e in page])
        before = page[-1]['version']
        if len(page) < 2:
            break
    assert pages[:3] == [[values[4], values[3]], [values[2], values[1]], [values[0]]], f'history pages: {pages}'


def test_listing_paging(server):
    pre = unique('snap.list')
    names = [f'{pre}{i:02d}' for i in range(7)]
    for n in names:
        put_versions(server, n, [1])
    s, r, _ = server.call('GET', f'/ptrs?prefix={pre}&limit=100')
    assert s == 200 and sorted(r.get('ptrs')) == names and r.get('next') is None, f'{s} {show(r)}'
    got, after, pages = [], None, 0
    while True:
        pages += 1
        assert pages <= 10, f'paging does not end: {got}'
        q = f'/ptrs?prefix={pre}&limit=3' + (f'&after={after}' if after else '')
        s, r, _ = server.call('GET', q)
        assert s == 200 and isinstance(r, dict) and 'next' in r, f'GET {q} -> {s} {show(r)}'
        assert len(r['ptrs']) <= 3, f'GET {q}: {len(r["ptrs"])} ptrs for limit=3'
        got += r['ptrs']
        if r['next'] is None:
            break
        after = r['next']
    assert sorted(got) == names and len(got) == len(set(got)), f'paged listing {got}, expected {names}'
    assert pages in (3, 4), f'{pages} pages of 3 for 7 pointers'


def test_read_only_txn_sees_stable_snapshot(server):
    pre = unique('snap.ro')
    x, y = pre + 'x', pre + 'y'
    for k, read_only in enumerate((True, False)):
        v0 = 10 * (k + 1)
        s, r = server.one_shot(writes={x: v0, y: v0})
        assert s == 200, f'{s} {show(r)}'
        s, b, _ = server.call('POST', '/txn/begin', {'readOnly': True} if read_only else {})
        assert s == 201 and isinstance(b.get('ts'), str), f'{s} {show(b)}'
        t, ts = b['txn'], b['ts']
        s, r = server.read(t, x)
        assert s == 200 and r['value'] == v0
        # others commit new values of both
        s, r = server.one_shot(writes={x: v0 + 1, y: v0 + 1})
        assert s == 200, f'a writer blocked by a reader: {s} {show(r)}'
        s, r, _ = server.put(y, v0 + 2)
        assert s == 200, f'PUT while a reader is open -> {s} {show(r)}'
        for p in (y, x):
            s, r = server.read(t, p)
            assert s == 200 and r['value'] == v0, f'readOnly={read_only}: {p} read {show(r)} in txn {t}, snapshot had {v0}'
        s, r = server.read_many(t, [x, y])
        assert s == 200 and [r['values'][p]['value'] for p in (x, y)] == [v0, v0], f'{show(r)}'
        s, r, _ = server.call('GET', f'/ptr/{y}?at={ts}')
        assert s == 200 and r['value'] == v0, f'GET ?at=<begin ts> -> {s} {show(r)}'
        s, r = server.commit(t)
        assert s == 200 and r.get('status') == 'committed', f'commit of a read-only txn -> {s} {show(r)}'
        assert server.value(y) == v0 + 2


def test_restm_ts_on_every_response(server):
    pre = unique('snap.ts')
    x = pre + 'x'
    put_versions(server, x, ['v'])
    t = server.begin()
    server.commit(t)
    cases = [
        ('GET', '/sys/health', None, None, 200),
        ('POST', '/txn/begin', {}, None, 201),
        ('GET', f'/ptr/{x}', None, None, 200),
        ('PUT', f'/ptr/{x}', 'w', None, 200),
        ('GET', f'/ptr/{pre}never', None, None, 404),
        ('GET', '/ptr/bad%20id', None, None, 400),
        ('PUT', f'/ptr/{x}', None, b'{oops', 400),
        ('GET', '/txn/no-such-txn', None, None, 404),
        ('PUT', f'/ptr/{x}?txn={t}', 1, None, 409),
        ('PUT', f'/ptr/{x}', None, b'"' + b'a' * (1 << 20) + b'"', 413),
        ('GET', f'/ptr/{x}?at=garbage', None, None, 400),
        ('GET', '/no/such/route', None, None, 404),
    ]
    for method, path, body, raw, status in cases:
        s, r, h = server.call(method, path, body, raw=raw)
        assert s == status, f'{method} {path} -> {s} {show(r)}; expected {status}'
        assert h.get('restm-ts'), f'{method} {path} -> {s}: no Restm-Ts header (headers {sorted(h)})'
    s, r, h = server.put(x, 'v3', if_match='no-such-version')
    assert s == 412 and error_shape(r, 'precondition_failed') and h.get('restm-ts'), f'{s} {show(r)} {h}'


def test_restm_after(server):
    x = unique('snap.after') + 'x'
    s, r, h = server.put(x, 'fresh')
    token = h.get('restm-ts')
    assert s == 200 and token, f'{s} {show(r)} {h}'
    s, r, h2 = server.call('GET', f'/ptr/{x}', headers={'Restm-After': token})
    assert s == 200 and r.get('value') == 'fresh' and h2.get('restm-ts'), f'GET with Restm-After -> {s} {show(r)}'
    s, r, _ = server.call('POST', '/txn/begin', {}, headers={'Restm-After': token})
    assert s == 201, f'begin with Restm-After -> {s} {show(r)}'
    s, r = server.read(r['txn'], x)
    assert s == 200 and r.get('value') == 'fresh'
    for bad in ('garbage', '-1', 'ffffffffffffffffffffffffffffffffffffffffffff'):
        s, r, h = server.call('GET', f'/ptr/{x}', headers={'Restm-After': bad})
        assert s == 400 and error_shape(r), f'GET with Restm-After: {bad!r} -> {s} {show(r)}; expected 400'
        assert h.get('restm-ts'), f'400 for Restm-After {bad!r} lacks Restm-Ts'
