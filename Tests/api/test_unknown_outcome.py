"""A commit whose answer is lost because the server dies between making it durable and
answering: the client learns its fate from `GET /txn/{t}` after the restart, never by running
the transaction again. The node kills itself with SIGKILL right after its n-th durable commit
(`RESTM_FAULT_KILL_AFTER_COMMITS`, a testing-only switch of `restm serve`)."""
import time

from restm_testlib import Server


def start_dying_after_commits(monkeypatch, srv, n):
    """Starts `srv` set to kill itself after its n-th durable commit (this start only)."""
    monkeypatch.setenv('RESTM_FAULT_KILL_AFTER_COMMITS', str(n))
    srv.start()
    monkeypatch.delenv('RESTM_FAULT_KILL_AFTER_COMMITS')


def test_a_lost_commit_answer_is_resolved_after_restart(monkeypatch):
    srv = Server(name='fault')
    try:
        start_dying_after_commits(monkeypatch, srv, 2)
        s, _, _ = srv.call('PUT', '/ptr/acct:a', {'balance': 100})  # durable commit 1
        assert s == 200
        t = srv.begin()
        s, r = srv.read(t, 'acct:a')
        assert s == 200 and r['value'] == {'balance': 100}, r
        assert srv.write(t, 'acct:a', {'balance': 90})[0] in (200, 204)
        assert srv.write(t, 'acct:b', {'balance': 10})[0] in (200, 204)
        s, r = srv.commit(t)  # durable commit 2: the process dies before answering
        assert s == 0, f'expected no answer, got {s} {r}'
        assert srv.wait_exit(10) == -9, 'the node killed itself'
        srv.start()
        s, r, _ = srv.call('GET', f'/txn/{t}')
        assert s == 200 and r['status'] == 'committed', r
        for p, v in [('acct:a', 90), ('acct:b', 10)]:
            s, r, _ = srv.call('GET', f'/ptr/{p}')
            assert s == 200 and r['value'] == {'balance': v}, (p, r)
        # A transaction that never reached its commit is aborted, and changed nothing.
        t2 = srv.begin()
        assert srv.write(t2, 'acct:a', {'balance': 0})[0] in (200, 204)
        srv.kill9()
        srv.start()
        s, r, _ = srv.call('GET', f'/txn/{t2}')
        assert s == 404 or r.get('status') == 'aborted', (s, r)
        s, r, _ = srv.call('GET', '/ptr/acct:a')
        assert r['value'] == {'balance': 90}
    finally:
        srv.close()


def library_id(seconds):
    """A client id in the client library's format: `c0`, 11 base-32 digits of the
    microsecond clock (digits in ASCII order), 14 random ones."""
    import random
    digits = '234567abcdefghijklmnopqrstuvwxyz'
    micros = int(seconds * 1_000_000)
    clock = ''.join(digits[(micros >> (5 * i)) & 31] for i in range(10, -1, -1))
    return 'c0' + clock + ''.join(random.choice(digits) for _ in range(14))


def test_a_lost_one_shot_answer_is_resolved_by_its_client_id_after_restart(monkeypatch):
    """The read cache's commit is a one-shot `POST /txn` under a client-chosen id: its fate
    survives the crash in the store's record, and an id that never reached a commit is fenced."""
    srv = Server(name='fault-id')
    try:
        start_dying_after_commits(monkeypatch, srv, 2)
        s, r, _ = srv.call('PUT', '/ptr/acct:c', {'balance': 100})  # durable commit 1
        assert s == 200
        v = r['version']
        tid = 'c' + '2' * 10 + 'a' * 16
        s, r, _ = srv.call('POST', '/txn', {'txn': tid, 'expect': {'acct:c': v},
                                            'writes': {'acct:c': {'balance': 95}, 'acct:d': {'balance': 5}}})
        assert s == 0, f'expected no answer, got {s} {r}'  # durable commit 2: the node dies
        assert srv.wait_exit(10) == -9, 'the node killed itself'
        srv.start()
        s, r, _ = srv.call('GET', f'/txn/{tid}')
        assert s == 200 and r['status'] == 'committed', r
        assert srv.value('acct:c') == {'balance': 95} and srv.value('acct:d') == {'balance': 5}
        # Sending the very same request again (its expectation now fails against its own
        # first run) answers the first outcome, and runs nothing.
        s, r2, _ = srv.call('POST', '/txn', {'txn': tid, 'expect': {'acct:c': v},
                                             'writes': {'acct:c': {'balance': 95}, 'acct:d': {'balance': 5}}})
        assert s == 200 and r2['ts'] == r['ts'], r2
        s, r2, _ = srv.call('POST', '/txn', {'txn': tid, 'writes': {'acct:c': {'balance': 0}}})
        assert s == 200 and r2['ts'] == r['ts'], r2
        assert srv.value('acct:c') == {'balance': 95}
        assert srv.call('GET', f'/txn/{tid}')[1]['status'] == 'committed'
        # A one-shot cannot be continued like a transaction begun with POST /txn/begin; a
        # commit of it answers its outcome, like any repeated commit.
        for path in [f'/txn/{tid}/abort', f'/txn/{tid}/read']:
            s, r2, _ = srv.call('POST', path, {'ptrs': ['acct:c']} if path.endswith('read') else None)
            assert s == 409 and r2['error'] == 'txn_not_active', (path, s, r2)
        s, r2, _ = srv.call('POST', f'/txn/{tid}/commit')
        assert s == 200 and r2['ts'] == r['ts'], r2
        # An id whose request never arrived: fenced once asked, even across a restart.
        never = library_id(time.time())
        s, r, _ = srv.call('GET', f'/txn/{never}')
        assert s == 200 and r['status'] == 'aborted', r
        # One made longer ago than the record retention (1 h) may have committed and had its
        # record pruned: no longer known (410), and not fenced.
        old = library_id(time.time() - 2 * 3600)
        s, r, _ = srv.call('GET', f'/txn/{old}')
        assert s == 410 and r['error'] == 'pruned', r
        s, r, _ = srv.call('POST', '/txn', {'txn': old, 'writes': {'acct:e': {'balance': 1}}})
        assert s == 200 and r['status'] == 'committed', r
        assert srv.call('GET', f'/txn/{old}')[1]['status'] == 'committed'
        s, r, _ = srv.call('POST', '/txn', {'txn': never, 'writes': {'acct:c': {'balance': 1}}})
        assert s == 409, r
        # The fence is durable: after a crash, the same id still cannot commit.
        srv.kill9()
        srv.start()
        s, r, _ = srv.call('POST', '/txn', {'txn': never, 'writes': {'acct:c': {'balance': 1}}})
        assert s == 409 and r['error'] == 'txn_not_active', r
        assert srv.call('GET', f'/txn/{never}')[1]['status'] == 'aborted'
        assert srv.value('acct:c') == {'balance': 95}
    finally:
        srv.close()
