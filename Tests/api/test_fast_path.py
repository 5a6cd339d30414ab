"""The transaction routes are answered from the channel pipeline (the fast path, see
RestmHTTP/FastPath.swift) and everything else by Hummingbird. Whatever mix of the two a client
sends on one keep-alive connection, pipelined or not, answers come back complete and in request
order; requests the fast path does not take (chunked bodies, `Expect`, `Connection`) are still
answered right; and the answers are the same with the fast path switched off
(`RESTM_FAST_PATH=0`).
"""
import json
import os
import socket

import pytest

from restm_testlib import Server, unique


def request(method, path, body=None, headers=()):
    data = b'' if body is None else json.dumps(body).encode()
    lines = [f'{method} {path} HTTP/1.1', 'Host: 127.0.0.1', *headers]
    if body is not None:
        lines += ['Content-Type: application/json', f'Content-Length: {len(data)}']
    return ('\r\n'.join(lines) + '\r\n\r\n').encode() + data


def read_responses(sock, n, timeout=10):
    """Reads n HTTP/1.1 responses with Content-Length bodies; answers [(status, headers, json)]."""
    sock.settimeout(timeout)
    buf = b''
    out = []
    while len(out) < n:
        while b'\r\n\r\n' not in buf:
            chunk = sock.recv(65536)
            assert chunk, f'connection closed after {len(out)} of {n} answers'
            buf += chunk
        head, buf = buf.split(b'\r\n\r\n', 1)
        lines = head.decode().split('\r\n')
        status = int(lines[0].split()[1])
        headers = {l.split(':', 1)[0].strip().lower(): l.split(':', 1)[1].strip() for l in lines[1:]}
        length = int(headers.get('content-length', '0'))
        while len(buf) < length:
            chunk = sock.recv(65536)
            assert chunk, 'connection closed inside a body'
            buf += chunk
        body, buf = buf[:length], buf[length:]
        out.append((status, headers, json.loads(body) if body else None))
    return out


def connect(server):
    return socket.create_connection(('127.0.0.1', server.port), timeout=10)


def fast_path_count(server):
    s, text, _ = server.call('GET', '/metrics')
    assert s == 200, s
    if isinstance(text, bytes):
        text = text.decode()
    for line in str(text).splitlines():
        if line.startswith('restm_http_fast_path_requests_total '):
            return int(line.split()[1])
    raise AssertionError('no restm_http_fast_path_requests_total in /metrics')


def test_pipelined_mix_of_fast_and_other_routes_answers_in_order(server):
    p = unique('fp')
    before = fast_path_count(server)
    s, r, _ = server.put(p + 'a', {'n': 1})
    assert s == 200
    with connect(server) as sock:
        # All sent at once: fast, Hummingbird, fast, Hummingbird, fast, fast.
        sock.sendall(
            request('POST', '/txn/begin', {'reads': [p + 'a']})
            + request('GET', f'/ptr/{p}a')
            + request('POST', '/txn', {'writes': {p + 'b': 2}})
            + request('GET', '/sys/health')
            + request('POST', '/txn/begin', {'reads': [p + 'b']})
            + request('POST', '/txn/nosuch/commit', {}))
        answers = read_responses(sock, 6)
    (s1, _, b1), (s2, _, b2), (s3, _, b3), (s4, _, b4), (s5, _, b5), (s6, _, b6) = answers
    assert s1 == 201 and b1['values'][p + 'a']['value'] == {'n': 1}, answers[0]
    assert s2 == 200 and b2['value'] == {'n': 1}, answers[1]
    assert s3 == 200 and b3['status'] == 'committed', answers[2]
    assert s4 == 200 and b4['status'] == 'ok', answers[3]
    assert s5 == 201 and b5['values'][p + 'b']['value'] == 2, answers[4]
    assert s6 == 404 and b6['error'] == 'txn_not_found', answers[5]
    for t in (b1['txn'], b5['txn']):
        server.abort(t)
    # The first took the fast path; once Hummingbird has a request of a connection, the ones
    # pipelined behind it go to Hummingbird too (answers stay in order).
    assert fast_path_count(server) - before >= 1


def test_a_whole_transaction_on_one_connection_and_headers(server):
    p = unique('fp')
    before = fast_path_count(server)
    with connect(server) as sock:
        sock.sendall(request('POST', '/txn/begin', {'reads': [p + 'x']}, headers=['X-Request-Id: fp-1']))
        [(s, h, b)] = read_responses(sock, 1)
        assert s == 201 and h.get('x-request-id') == 'fp-1' and 'restm-ts' in h and h.get('server') == 'restm', h
        assert 'date' in h and h['content-type'].startswith('application/json'), h
        t = b['txn']
        sock.sendall(request('POST', f'/txn/{t}/read', {'ptrs': [p + 'y']}))
        [(s, _, b)] = read_responses(sock, 1)
        assert s == 200 and b['values'][p + 'y']['value'] is None, b
        sock.sendall(request('POST', f'/txn/{t}/commit', {'writes': {p + 'x': 'done'}}))
        [(s, _, b)] = read_responses(sock, 1)
        assert s == 200 and b['status'] == 'committed', b
        # Bad input on the fast path is the JSON error of API.md, and the connection stays usable.
        bad = b'POST /txn/begin HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n{oops'
        sock.sendall(bad)
        [(s, _, b)] = read_responses(sock, 1)
        assert s == 400 and b['error'] == 'bad_json' and b['retryable'] is False, b
        sock.sendall(request('GET', f'/ptr/{p}x'))
        [(s, _, b)] = read_responses(sock, 1)
        assert s == 200 and b['value'] == 'done', b
    # begin, read, commit and the malformed begin took the fast path (the path, not only answers).
    assert fast_path_count(server) - before == 4


def test_requests_the_fast_path_does_not_take_are_answered_too(server):
    p = unique('fp')
    body = json.dumps({'writes': {p + 'c': 3}}).encode()
    chunked = (b'POST /txn HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n'
               + f'{len(body):x}\r\n'.encode() + body + b'\r\n0\r\n\r\n')
    with connect(server) as sock:
        sock.sendall(chunked + request('POST', '/txn/begin', {'reads': [p + 'c']}, headers=['Expect: 100-continue']))
        answers = read_responses(sock, 2)
    # The Expect request may get a 100 Continue first; skip informational answers.
    finals = [a for a in answers if a[0] >= 200]
    assert finals[0][0] == 200 and finals[0][2]['status'] == 'committed', answers
    if len(finals) < 2:
        return
    assert finals[1][0] == 201 and finals[1][2]['values'][p + 'c']['value'] == 3, answers
    server.abort(finals[1][2]['txn'])


def test_answers_are_the_same_with_the_fast_path_off():
    srv = Server(name='nofast')
    os.environ['RESTM_FAST_PATH'] = '0'
    try:
        srv.start()
    finally:
        del os.environ['RESTM_FAST_PATH']
    try:
        p = unique('fp')
        with connect(srv) as sock:
            sock.sendall(request('POST', '/txn/begin', {'reads': [p + 'x']}))
            [(s, h, b)] = read_responses(sock, 1)
            assert s == 201 and set(b) >= {'txn', 'ts', 'values'} and h.get('server') == 'restm', (s, h, b)
            sock.sendall(request('POST', f'/txn/{b["txn"]}/commit', {'writes': {p + 'x': 1}}))
            [(s, _, b)] = read_responses(sock, 1)
            assert s == 200 and b['status'] == 'committed', b
            sock.sendall(request('POST', '/txn/nosuch/commit', {}))
            [(s, _, b)] = read_responses(sock, 1)
            assert s == 404 and b['error'] == 'txn_not_found', b
    finally:
        srv.close()
