"""POST /batch (many independent requests in one exchange) and client-chosen ids of one-shot
transactions (POST /txn with "txn"): extensions of API.md, docs/API-EXTENSIONS.md."""
import secrets

from restm_testlib import error_shape, show, unique

B32 = '234567abcdefghijklmnopqrstuvwxyz'


def client_id():
    return 'c' + ''.join(secrets.choice(B32) for _ in range(26))


def batch(server, items):
    s, r, h = server.call('POST', '/batch', {'requests': items})
    assert s == 200, f'{s} {show(r)}'
    assert isinstance(r, dict) and len(r['responses']) == len(items), show(r)
    assert 'restm-ts' in h
    return r['responses']


def test_each_item_is_answered_as_it_would_be_alone(server):
    pre = unique('batch')
    p = pre + 'p'
    s, put, _ = server.put(p, {'v': 1})
    assert s == 200
    alone = server.call('GET', f'/ptr/{p}')[1]
    out = batch(server, [
        {'method': 'GET', 'path': f'/ptr/{p}'},
        {'method': 'POST', 'path': '/txn/begin', 'body': {'reads': [p]}},
        {'method': 'GET', 'path': f'/ptr/{pre}absent'},
        {'method': 'POST', 'path': '/txn', 'body': {'writes': {pre + 'w': [1, 2]}}},
        {'method': 'PUT', 'path': f'/ptr/{pre}q', 'body': {'value': 'q'}},
        {'method': 'post', 'path': '/txn/nosuch/commit'},
        {'method': 'GET', 'path': f'/ptrs?prefix={pre}'},
    ])
    assert out[0] == {'status': 200, 'body': alone}
    assert out[1]['status'] == 201 and out[1]['body']['values'][p]['value'] == {'v': 1}
    assert out[2]['status'] == 404 and error_shape(out[2]['body'], 'not_found')
    assert out[3]['status'] == 200 and out[3]['body']['status'] == 'committed'
    assert out[4]['status'] == 200
    assert out[5]['status'] == 404 and error_shape(out[5]['body'], 'txn_not_found')
    assert out[6]['status'] == 200
    # What the items did is done: the begun transaction is open, the writes are there.
    t = out[1]['body']['txn']
    assert server.txn_status(t)[1]['status'] == 'active'
    assert server.commit(t)[0] == 200
    assert server.value(pre + 'w') == [1, 2]
    assert server.value(pre + 'q') == {'value': 'q'}


def test_items_run_concurrently_and_stay_serializable(server):
    """Ten one-shot increments that all expect the same version: exactly one commits."""
    c = unique('batch.cnt') + 'c'
    s, r, _ = server.put(c, 0)
    assert s == 200
    v0 = r['version']
    out = batch(server, [{'method': 'POST', 'path': '/txn', 'body': {'expect': {c: v0}, 'writes': {c: k + 1}}}
                         for k in range(10)])
    statuses = sorted(o['status'] for o in out)
    assert statuses == [200] + [412] * 9, statuses
    winner = next(k for k, o in enumerate(out) if o['status'] == 200)
    assert server.value(c) == winner + 1
    for o in out:
        if o['status'] == 412:
            # `current` (API.md) and, as an extension, `values`: what is there now.
            assert error_shape(o['body'], 'expectation_failed') and c in o['body']['current']
            assert o['body']['values'][c] == {'value': winner + 1, 'version': o['body']['current'][c]}, show(o)


def test_a_malformed_batch_runs_nothing(server):
    pre = unique('batch.bad')
    write = {'method': 'PUT', 'path': f'/ptr/{pre}x', 'body': 1}
    for body, code in [
        ([write], 'bad_request'),
        ({'requests': write}, 'bad_request'),
        ({'requests': [write, {'method': 'GET'}]}, 'bad_request'),
        ({'requests': [write, {'method': 'GET', 'path': 'ptr/x'}]}, 'bad_request'),
        ({'requests': [write, {'method': 7, 'path': '/ptr/x'}]}, 'bad_request'),
        ({'requests': [write, {'method': 'POST', 'path': '/watch', 'body': {'ptrs': {'a': None}}}]}, 'bad_request'),
        ({'requests': [write, {'method': 'POST', 'path': '/batch', 'body': {'requests': []}}]}, 'bad_request'),
        ({'requests': [write, {'method': 'POST', 'path': '/sys/shutdown'}]}, 'bad_request'),
        ({'requests': [write, {'method': 'GET', 'path': '/events?ptrs=a'}]}, 'bad_request'),
        # Whitespace after the route slipped past the check, and "/watch " was routed as
        # /watch: a 60 s long-poll held its neighbours, "/batch " nested batches.
        ({'requests': [write, {'method': 'POST', 'path': '/watch ', 'body': {'ptrs': {'a': None}, 'timeoutMs': 60000}}]}, 'bad_request'),
        ({'requests': [write, {'method': 'POST', 'path': '/watch\t', 'body': {'ptrs': {'a': None}}}]}, 'bad_request'),
        ({'requests': [write, {'method': 'POST', 'path': '/batch ', 'body': {'requests': []}}]}, 'bad_request'),
        ({'requests': [write, {'method': 'GET', 'path': '/events\n?ptr=a'}]}, 'bad_request'),
        ({'requests': [write, {'method': 'GET', 'path': '/ptr/a b'}]}, 'bad_request'),
    ]:
        s, r, _ = server.call('POST', '/batch', body)
        assert s == 400 and error_shape(r, code), f'{body} -> {s} {show(r)}'
    s, r, _ = server.call('POST', '/batch', raw=b'{"requests": [')
    assert s == 400 and error_shape(r, 'bad_json')
    s, r, _ = server.call('POST', '/batch', {'requests': [{'method': 'GET', 'path': '/sys/health'}] * 1001})
    assert s == 413 and error_shape(r, 'too_large'), f'{s} {show(r)}'
    s, r, _ = server.call('GET', '/batch')
    assert s == 405 and error_shape(r, 'method_not_allowed')
    assert server.get(pre + 'x')[0] == 404
    assert batch(server, []) == []
    assert server.healthy()


def test_a_client_chosen_id_names_a_one_shot_transaction(server):
    pre = unique('batch.id')
    k = pre + 'k'
    tid = client_id()
    s, r, _ = server.call('POST', '/txn', {'txn': tid, 'writes': {k: 1}})
    assert s == 200 and r['txn'] == tid and r['status'] == 'committed', show(r)
    ts = r['ts']
    s, st, _ = server.call('GET', f'/txn/{tid}')
    assert s == 200 and st['status'] == 'committed' and st['ts'] == ts, show(st)
    # The same id again: the first outcome, not a second run.
    s, r, _ = server.call('POST', '/txn', {'txn': tid, 'writes': {k: 2}})
    assert s == 200 and r['ts'] == ts
    assert server.value(k) == 1
    # An id asked about before its request arrives is fenced: the request is refused.
    late = client_id()
    s, st, _ = server.call('GET', f'/txn/{late}')
    assert s == 200 and st['status'] == 'aborted', show(st)
    s, r, _ = server.call('POST', '/txn', {'txn': late, 'writes': {k: 3}})
    assert s == 409 and error_shape(r, 'txn_not_active'), show(r)
    assert server.value(k) == 1
    # A failed expectation is final for its id.
    failed = client_id()
    s, r, _ = server.call('POST', '/txn', {'txn': failed, 'expect': {k: None}, 'writes': {k: 4}})
    assert s == 412 and error_shape(r, 'expectation_failed')
    assert server.call('GET', f'/txn/{failed}')[1]['status'] == 'aborted'
    s, r, _ = server.call('POST', '/txn', {'txn': failed, 'writes': {k: 4}})
    assert s == 409 and error_shape(r, 'txn_not_active')
    # Ids must look like client ids: a node's own form, or junk, is refused and runs nothing.
    for bad in ['t1.1.1', 'c-short', 'c' + 'a' * 65, 'c' + 'a' * 20 + '/', 7]:
        s, r, _ = server.call('POST', '/txn', {'txn': bad, 'writes': {k: 5}})
        assert s == 400 and error_shape(r, 'bad_request'), f'{bad!r} -> {s} {show(r)}'
    assert server.value(k) == 1
    # In one batch, a commit under an id and a question about it run concurrently: either
    # the commit came first (active or committed) or the question fenced it (refused). An
    # answer "aborted" is never followed by a commit.
    for _ in range(5):
        tid2 = client_id()
        out = batch(server, [{'method': 'POST', 'path': '/txn', 'body': {'txn': tid2, 'writes': {k: 6}}},
                             {'method': 'GET', 'path': f'/txn/{tid2}'}])
        asked = out[1]['body']['status']
        assert out[1]['status'] == 200, show(out)
        if out[0]['status'] == 200:
            assert out[0]['body']['txn'] == tid2 and asked in ('active', 'committed'), show(out)
        else:
            # (The question may have found it running, just before the fence refused it.)
            assert out[0]['status'] == 409 and error_shape(out[0]['body'], 'txn_not_active'), show(out)
            assert asked in ('aborted', 'active'), show(out)
        final = server.call('GET', f'/txn/{tid2}')[1]['status']
        assert final == ('committed' if out[0]['status'] == 200 else 'aborted'), show(out)


def test_an_item_may_nest_as_deep_as_a_request_alone(server):
    """Items sit three levels inside the batch: the depth limit applies to each item's body,
    not to the batch around it, so a neighbour's deep value never fails the others."""
    pre = unique('batch.deep')
    deep = 1
    for _ in range(125):
        deep = [deep]
    s, r, _ = server.call('POST', '/txn', {'writes': {pre + 'alone': deep}})
    assert s == 200, f'{s} {show(r)}'
    out = batch(server, [{'method': 'POST', 'path': '/txn', 'body': {'writes': {pre + 'in-batch': deep}}},
                         {'method': 'GET', 'path': f'/ptr/{pre}alone'}])
    assert out[0]['status'] == 200 and out[1]['status'] == 200, show(out)
    # Deeper than a request alone may be: the batch cannot carry it, and is refused whole
    # (nothing of it runs).
    too_deep = [[[deep]]]
    s, r, _ = server.call('POST', '/txn', {'writes': {pre + 'x': too_deep}})
    assert s == 400, f'{s} {show(r)}'
    s, r, _ = server.call('POST', '/batch', {'requests': [
        {'method': 'POST', 'path': '/txn', 'body': {'writes': {pre + 'x': too_deep}}},
        {'method': 'PUT', 'path': f'/ptr/{pre}neighbour', 'body': 1}]})
    assert s == 400 and error_shape(r, 'bad_json'), f'{s} {show(r)}'
    assert server.get(pre + 'neighbour')[0] == 404


def test_one_shot_items_answer_and_count_as_requests_alone(server):
    """`POST /txn` items are served from the batch's parsed body (a shorter path than other
    items): the same answers and errors as the request alone, and the same metrics."""
    pre = unique('batch.one')
    p = pre + 'p'
    s, r, _ = server.put(p, {'n': 1})
    assert s == 200
    v = r['version']
    bodies = [
        {'writes': {pre + 'a': 1}},                       # 200
        {'expect': {p: '0000000000000000ffff'}, 'writes': {p: 2}},  # 412 with current and values
        {'writes': {'bad id': 1}},                        # 400 bad_pointer
        [1, 2],                                           # 400: not an object
        {'reads': 'nope'},                                # 400 bad_request
        {'txn': 'not-a-client-id', 'writes': {pre + 'b': 1}},  # 400
        {'reads': [p], 'expect': {p: v}},                 # 200 with values
    ]
    alone = []
    for b in bodies:
        s, r, _ = server.call('POST', '/txn', b)
        alone.append((s, r))
    before = server.call('GET', '/sys/metrics')[1]['code']['http']['POST /txn']['invocations']
    out = batch(server, [{'method': 'POST', 'path': '/txn', 'body': b} for b in bodies])
    after = server.call('GET', '/sys/metrics')[1]['code']['http']['POST /txn']['invocations']
    assert after - before == len(bodies)
    for (s, r), o in zip(alone, out):
        assert o['status'] == s, show((s, r, o))
        if s >= 400:
            assert o['body']['error'] == r['error'] and o['body']['retryable'] == r['retryable'], show((r, o))
            assert set(o['body']) == set(r), show((r, o))
        else:
            assert set(o['body']) == set(r), show((r, o))
    assert out[0]['body']['status'] == 'committed'
    assert out[1]['status'] == 412 and out[1]['body']['values'][p]['value'] == {'n': 1}
    assert out[6]['body']['values'][p]['value'] == {'n': 1}


def test_transaction_items_answer_and_count_as_requests_alone(server):
    """Begins, reads and commits in a batch take the same shorter path as one-shots: the
    same answers and errors as alone, and the same metrics."""
    pre = unique('batch.txn')
    p = pre + 'p'
    assert server.put(p, {'n': 1})[0] == 200

    def routes():
        http = server.call('GET', '/sys/metrics')[1]['code']['http']
        return {k: http.get(k, {}).get('invocations', 0) for k in
                ('POST /txn/begin', 'POST /txn/{t}/read', 'POST /txn/{t}/commit')}

    before = routes()
    out = batch(server, [
        {'method': 'POST', 'path': '/txn/begin', 'body': {'reads': [p, pre + 'absent']}},
        {'method': 'POST', 'path': '/txn/begin'},
        {'method': 'POST', 'path': '/txn/begin', 'body': {'timeoutMs': 'x'}},
        {'method': 'POST', 'path': '/txn/nosuch/read', 'body': {'ptrs': [p]}},
        {'method': 'POST', 'path': '/txn/nosuch/commit'},
        {'method': 'POST', 'path': '/txnx'},
        {'method': 'POST', 'path': '/txn/begin', 'body': [1]},
        {'method': 'POST', 'path': '/txn/'},
        {'method': 'POST', 'path': '/txn//commit'},
        {'method': 'POST', 'path': '/txn/begin/read', 'body': {'ptrs': [p]}},
        {'method': 'post', 'path': '/txn/begin'},
    ])
    for i, path in ((7, '/txn/'), (8, '/txn//commit'), (9, '/txn/begin/read')):
        body = {'ptrs': [p]} if i == 9 else None
        s, r, _ = server.call('POST', path, body)
        assert out[i]['status'] == s and out[i]['body']['error'] == r['error'], show((path, s, r, out[i]))
    assert out[10]['status'] == 201
    assert out[0]['status'] == 201 and out[0]['body']['values'][p]['value'] == {'n': 1}
    assert out[0]['body']['values'][pre + 'absent']['value'] is None
    assert out[1]['status'] == 201 and 'values' not in out[1]['body']
    assert out[2]['status'] == 400 and error_shape(out[2]['body'], 'bad_request')
    assert out[3]['status'] == 404 and error_shape(out[3]['body'], 'txn_not_found')
    assert out[4]['status'] == 404 and error_shape(out[4]['body'], 'txn_not_found')
    assert out[5]['status'] == 404 and error_shape(out[5]['body'], 'no_such_route')
    assert out[6]['status'] == 400 and error_shape(out[6]['body'], 'bad_request')
    # The same answers alone.
    s, r, _ = server.call('POST', '/txn/begin', {'timeoutMs': 'x'})
    assert s == 400 and r['error'] == out[2]['body']['error']
    s, r, _ = server.call('POST', '/txn/nosuch/read', {'ptrs': [p]})
    assert s == 404 and r['error'] == out[3]['body']['error']
    # Read and commit the begun transactions through batches.
    t0, t1 = out[0]['body']['txn'], out[1]['body']['txn']
    out2 = batch(server, [
        {'method': 'POST', 'path': f'/txn/{t1}/read', 'body': {'ptrs': [p]}},
        {'method': 'POST', 'path': f'/txn/{t0}/commit', 'body': {'writes': {p: {'n': 2}}}},
    ])
    assert out2[0]['status'] == 200 and out2[0]['body']['values'][p]['value'] == {'n': 1}
    assert out2[1]['status'] == 200 and out2[1]['body']['status'] == 'committed'
    assert out2[1]['body']['txn'] == t0
    out3 = batch(server, [{'method': 'POST', 'path': f'/txn/{t1}/commit', 'body': {'writes': {p: {'n': 3}}}},
                          {'method': 'POST', 'path': f'/txn/{t0}/commit'}])
    # t1 read n=1 before t0 wrote n=2: its write conflicts; committing t0 again answers its outcome.
    assert out3[0]['status'] == 409 and error_shape(out3[0]['body'], 'conflict'), show(out3)
    assert out3[0]['body']['retryable'] is True
    assert out3[1]['status'] == 200 and out3[1]['body']['ts'] == out2[1]['body']['ts']
    assert server.value(p) == {'n': 2}
    after = routes()
    assert after['POST /txn/begin'] - before['POST /txn/begin'] == 6
    assert after['POST /txn/{t}/read'] - before['POST /txn/{t}/read'] == 5
    assert after['POST /txn/{t}/commit'] - before['POST /txn/{t}/commit'] == 6
