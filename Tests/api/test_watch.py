"""POST /watch and GET /events against a live node: one event per committed change, pointers
named twice, answers held to the read-answer bounds, and waits that end when their client
leaves (a long-poll must not keep its watcher until its timeout)."""
import http.client
import json
import random
import socket
import struct
import threading
import time

from conftest import error_shape, unique
from restm_testlib import read_json_answer


def watchers(server):
    s, r, _ = server.call('GET', '/sys/metrics')
    assert s == 200, r
    return r['scalars']['watchers']


def wait_for(pred, timeout=5.0, what='condition'):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.02)
    raise AssertionError(f'timed out after {timeout} s waiting for {what}')


class EventStream:
    """A GET /events stream read on a thread: `events` holds the parsed `change` events."""

    def __init__(self, server, ptrs, headers=None):
        query = '&'.join(f'ptr={p}' for p in ptrs)
        self.conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
        self.conn.request('GET', f'/events?{query}', headers=headers or {})
        self.response = self.conn.getresponse()
        assert self.response.status == 200, self.response.read()
        self.events = []
        self.bytes = 0
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        fields = {}
        try:
            while True:
                line = self.response.readline()
                if not line:
                    return
                with self.lock:
                    self.bytes += len(line)
                line = line.rstrip(b'\r\n')
                if line == b'':
                    if fields.get('event') == 'change':
                        with self.lock:
                            self.events.append((fields['id'], json.loads(fields['data'])))
                    fields = {}
                elif not line.startswith(b':'):
                    k, _, v = line.decode().partition(': ')
                    fields[k] = v
        except (OSError, ValueError, AttributeError, http.client.HTTPException):
            # AttributeError: http.client drops the socket under a reader when closed.
            return

    def snapshot(self):
        with self.lock:
            return list(self.events)

    def close(self):
        # Shut the socket down first: the reader thread holds the response's buffer lock in a
        # blocking read, and closing the response would wait for the next keep-alive (15 s).
        try:
            self.conn.sock.shutdown(socket.SHUT_RDWR)
        except (OSError, AttributeError):
            pass
        try:
            self.response.close()
        finally:
            self.conn.close()


def test_a_pointer_named_twice_gets_one_event_per_change(server):
    """Naming a pointer twice made the stream report the same change in a tight loop (hundreds
    of thousands of events a second) until the client left."""
    p = unique('w.dup')
    stream = EventStream(server, [p, p, p])
    try:
        wait_for(lambda: watchers(server) >= 1, what='the stream to watch')
        s, body, _ = server.put(p, {'n': 1})
        assert s == 200, body
        wait_for(lambda: len(stream.snapshot()) >= 1, what='the first event')
        time.sleep(0.5)
        events = stream.snapshot()
        assert len(events) == 1, f'{len(events)} events ({stream.bytes} bytes) for one change'
        assert events[0] == (body['version'], {'ptr': p, 'value': {'n': 1}, 'version': body['version']})
    finally:
        stream.close()


def test_every_committed_change_is_one_event_in_commit_order(server, seed):
    """Concurrent writers commit faster than one wake of the stream: each commit is still one
    event (read back from the pointer's history), in commit order, deletes included."""
    rng = random.Random(seed)
    a, b = unique('w.ev.a'), unique('w.ev.b')
    stream = EventStream(server, [a, b])
    versions = {a: [], b: []}
    lock = threading.Lock()

    def writer(w):
        for i in range(30):
            p = a if rng.random() < 0.7 else b
            if i % 10 == 9:
                s, r, _ = server.call('DELETE', f'/ptr/{p}')
            else:
                s, r, _ = server.put(p, {'w': w, 'i': i})
            assert s == 200, (s, r)
            with lock:
                versions[p].append((r['version'], None if i % 10 == 9 else {'w': w, 'i': i}))

    try:
        wait_for(lambda: watchers(server) >= 1, what='the stream to watch')
        threads = [threading.Thread(target=writer, args=(w,)) for w in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        total = sum(len(v) for v in versions.values())
        wait_for(lambda: len(stream.snapshot()) >= total, timeout=10, what=f'{total} events (seed {seed})')
        time.sleep(0.3)
        events = stream.snapshot()
        assert len(events) == total, f'seed {seed}: {len(events)} events for {total} commits'
        for p in (a, b):
            mine = [(eid, d) for eid, d in events if d['ptr'] == p]
            assert sorted(eid for eid, _ in mine) == sorted(v for v, _ in versions[p]), f'seed {seed}: ids of {p}'
            by_version = dict(versions[p])
            for eid, d in mine:
                assert d['value'] == by_version[eid], f'seed {seed}: {p} at {eid}: {d}'
                assert d['version'] == (None if by_version[eid] is None else eid), d
        # In commit order per pointer: the order the node's own history gives.
        for p in (a, b):
            s, h, _ = server.call('GET', f'/ptr/{p}/history?limit=1000')
            assert s == 200, h
            history = [v['version'] for v in reversed(h['versions'])]
            got = [eid for eid, d in events if d['ptr'] == p]
            assert got == history[-len(got):], f'seed {seed}: events of {p} out of commit order'
    finally:
        stream.close()


def test_a_create_and_delete_between_two_looks_are_two_events(server):
    """A stream compared current versions: a pointer created and deleted between two looks
    was absent both times, and neither change was reported (until the pointer changed
    again, if ever). Deletes now count as versions."""
    ptrs = [unique('w.flash') for _ in range(20)]
    stream = EventStream(server, ptrs)
    try:
        wait_for(lambda: watchers(server) >= 1, what='the stream to watch')
        # The write and the delete of each pointer race in one batch: they commit close
        # together, in either order.
        for p in ptrs:
            s, r, _ = server.call('POST', '/batch', {'requests': [
                {'method': 'PUT', 'path': f'/ptr/{p}', 'body': 'here'},
                {'method': 'DELETE', 'path': f'/ptr/{p}'}]})
            assert s == 200 and all(x['status'] == 200 for x in r['responses']), r
        wait_for(lambda: len(stream.snapshot()) >= 40, timeout=10, what='40 events')
        time.sleep(0.3)
        events = stream.snapshot()
        assert len(events) == 40, f'{len(events)} events for 40 commits'
        for p in ptrs:
            mine = [d['value'] for _, d in events if d['ptr'] == p]
            s, h, _ = server.call('GET', f'/ptr/{p}/history')
            assert mine == [v['value'] for v in reversed(h['versions'])] and sorted(mine, key=str) == [None, 'here'], (p, mine)
    finally:
        stream.close()


def test_a_reconnecting_stream_gets_the_changes_it_missed(server):
    """`Last-Event-ID` was ignored: a stream that reconnected lost every change made while it
    was away. Now the changes from the named event on come first (that event again: other
    changes of its commit may not have reached the client), in commit order across the
    pointers (deletes included), then the live ones."""
    a, b = unique('w.resume.a'), unique('w.resume.b')
    stream = EventStream(server, [a, b])
    try:
        wait_for(lambda: watchers(server) >= 1, what='the stream to watch')
        s, r, _ = server.put(a, 1)
        assert s == 200, r
        wait_for(lambda: len(stream.snapshot()) >= 1, what='the first event')
        last = stream.snapshot()[-1][0]
        assert last == r['version']
        had = stream.snapshot()[-1]
    finally:
        stream.close()
    missed = [had]
    for p, value in ((b, 'x'), (a, 2), (b, None), (a, 3)):
        s, r, _ = server.call('DELETE', f'/ptr/{p}') if value is None else server.put(p, value)
        assert s == 200, r
        missed.append((r['version'], {'ptr': p, 'value': value, 'version': None if value is None else r['version']}))
    again = EventStream(server, [a, b], headers={'Last-Event-ID': last})
    try:
        wait_for(lambda: len(again.snapshot()) >= 5, what='the missed events')
        time.sleep(0.2)
        assert again.snapshot() == missed
        s, r, _ = server.put(a, 4)
        assert s == 200, r
        wait_for(lambda: len(again.snapshot()) >= 6, what='a live event after the missed ones')
        assert again.snapshot()[5] == (r['version'], {'ptr': a, 'value': 4, 'version': r['version']})
    finally:
        again.close()
    # An id that is not a version, or one not older than the stream, asks for nothing: the
    # first event is the next change. The newest change's id gets that change again first.
    for n, bad in enumerate(('nonsense', None, 'ffffffffffffffffffff')):
        # (the newest change before this round: the previous round's write of b)
        before = [] if bad else [(r['version'], {'ptr': b, 'value': n - 1, 'version': r['version']})]
        bad = bad or r['version']
        third = EventStream(server, [a, b], headers={'Last-Event-ID': bad})
        try:
            time.sleep(0.3)
            s, r, _ = server.put(b, n)
            assert s == 200, r
            wait_for(lambda: len(third.snapshot()) >= len(before) + 1, what='the next change')
            time.sleep(0.2)
            assert third.snapshot() == before + [(r['version'], {'ptr': b, 'value': n, 'version': r['version']})], bad
        finally:
            third.close()


def test_watch_answers_are_bounded_like_reads(server):
    """A watch answered every changed value whatever their size (30 values of 1 MB: a 30 MB
    answer, where a read of the same pointers is refused). Now it is bounded like a read, and
    `"values": false` answers versions only."""
    big = 'x' * 1_000_000
    ptrs = [unique('w.big') for _ in range(18)]      # 18 MB: past answerBytesMax (16 MiB)
    for p in ptrs:
        s, r, _ = server.put(p, big)
        assert s == 200, r
    s, r, _ = server.call('POST', '/txn', {'reads': ptrs})
    assert s == 413, (s, r)
    s, r, _ = server.call('POST', '/watch', {'ptrs': {p: None for p in ptrs}, 'timeoutMs': 0})
    assert s == 413 and error_shape(r, 'too_large') and '"values": false' in r['message'], (s, r)
    s, r, _ = server.call('POST', '/watch', {'ptrs': {p: None for p in ptrs}, 'timeoutMs': 0, 'values': False})
    assert s == 200 and set(r['changed']) == set(ptrs), (s, r)
    assert all(set(v) == {'version'} and isinstance(v['version'], str) for v in r['changed'].values()), r
    # Unchanged ones are left out as before; a small change is answered with its value.
    current = {p: v['version'] for p, v in r['changed'].items()}
    s, w, _ = server.put(ptrs[0], 'small')
    assert s == 200
    s, r, _ = server.call('POST', '/watch', {'ptrs': current, 'timeoutMs': 1000})
    assert s == 200 and r == {'changed': {ptrs[0]: {'value': 'small', 'version': w['version']}}}, r
    assert server.healthy()


def test_watch_refuses_what_it_cannot_wait_on(server):
    for body, why in [
        ({'ptrs': {}}, 'no pointer: it could never fire'),
        ({'ptrs': {'a': None}, 'values': 'no'}, 'values is not a boolean'),
        ({'ptrs': {'a': None}, 'values': 1}, 'values is not a boolean'),
    ]:
        s, r, _ = server.call('POST', '/watch', body)
        assert s == 400 and error_shape(r, 'bad_request'), (why, s, r)
    # A pointer named twice in the object: the version given last counts.
    p = unique('w.twice')
    s, w, _ = server.put(p, 1)
    raw = ('{"ptrs": {"%s": null, "%s": "%s"}, "timeoutMs": 0}' % (p, p, w['version'])).encode()
    s, r, _ = server.call('POST', '/watch', raw=raw)
    assert s == 200 and r == {'changed': {}}, r
    # As many pointers as a transaction may touch (retry() waits on a read set).
    s, r, _ = server.call('POST', '/watch', {'ptrs': {f'w.many.{i}': None for i in range(5000)}, 'timeoutMs': 0})
    assert s == 200 and r == {'changed': {}}, (s, str(r)[:200])
    s, info, _ = server.call('GET', '/sys/info')
    assert info['limits']['watchPointersMax'] >= info['limits']['pointersPerTxnMax'], info['limits']


def raw_long_poll(server, body):
    sock = socket.create_connection((server.host, server.port))
    data = json.dumps(body).encode()
    sock.sendall(b'POST /watch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n'
                 + f'Content-Length: {len(data)}\r\n\r\n'.encode() + data)
    return sock


def test_a_long_poll_whose_client_left_lets_go_of_its_watcher(server):
    """The node did not notice a client that left, and kept its watcher until the timeout:
    clients dropping long-polls could fill the watcher table. Both a full close and a
    half-close (the client shuts its sending side) now end the wait at once."""
    base = watchers(server)
    for how in ('close', 'half-close'):
        sock = raw_long_poll(server, {'ptrs': {unique('w.gone'): None}, 'timeoutMs': 60000})
        try:
            wait_for(lambda: watchers(server) == base + 1, what=f'the long-poll to park ({how})')
            if how == 'close':
                sock.close()
            else:
                sock.shutdown(socket.SHUT_WR)
            wait_for(lambda: watchers(server) == base, timeout=3, what=f'the watcher to go ({how})')
        finally:
            sock.close()
    # Reset at once, before the node has even looked for the connection's handler (which a
    # reset removes): the close is then the sign. 30 of them, none may stay.
    for _ in range(30):
        sock = raw_long_poll(server, {'ptrs': {unique('w.reset'): None}, 'timeoutMs': 60000})
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
        sock.close()
    wait_for(lambda: watchers(server) == base, timeout=5, what='the reset long-polls\' watchers to go')
    # A stream too.
    stream = EventStream(server, [unique('w.gone.ev')])
    wait_for(lambda: watchers(server) == base + 1, what='the stream to watch')
    stream.close()
    wait_for(lambda: watchers(server) == base, timeout=3, what='the stream\'s watcher to go')
    # A client that stays gets its answer as before.
    p = unique('w.stay')
    sock = raw_long_poll(server, {'ptrs': {p: None}, 'timeoutMs': 10000})
    try:
        wait_for(lambda: watchers(server) == base + 1, what='the long-poll to park')
        s, w, _ = server.put(p, 'here')
        assert s == 200
        sock.settimeout(5)
        head, body = read_json_answer(sock)
        assert head.startswith(b'HTTP/1.1 200'), (head, body)
        assert json.loads(body) == {'changed': {p: {'value': 'here', 'version': w['version']}}}
    finally:
        sock.close()
    assert server.healthy()
