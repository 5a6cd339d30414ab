"""Shared helpers of the black-box HTTP suite: an HTTP client (standard library only), a
launcher for `restm serve` nodes, and small transaction helpers.

Everything here talks to a node only through the HTTP contract in API.md.
"""
import atexit
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

API_DIR = Path(__file__).resolve().parent
REPO_ROOT = API_DIR.parents[1]
LOG_DIR = Path(tempfile.gettempdir()) / 'restm-api-logs'
HTTP_TIMEOUT = 30.0


def restm_bin():
    """The server binary: $RESTM_BIN (relative paths are taken from the repo root), else the debug build."""
    b = os.environ.get('RESTM_BIN') or '.build/debug/restm'
    p = Path(b)
    if not p.is_absolute():
        p = REPO_ROOT / p
    return p


def new_seed():
    s = os.environ.get('RESTM_SEED')
    return int(s) if s else random.SystemRandom().randrange(1, 2**31)


def unique(tag):
    """A fresh pointer-id prefix (ids are 1-256 bytes of [A-Za-z0-9._:~-])."""
    return f'{tag}.{uuid.uuid4().hex[:10]}.'


def error_shape(body, code=None):
    return (isinstance(body, dict) and isinstance(body.get('error'), str)
            and isinstance(body.get('message'), str) and isinstance(body.get('retryable'), bool)
            and (code is None or body['error'] == code))


def show(x, limit=600):
    s = x if isinstance(x, str) else json.dumps(x, default=repr)
    return s if len(s) <= limit else s[:limit] + f'... ({len(s)} chars)'


# --------------------------------------------------------------------------------------------
# HTTP client

_local = threading.local()


class Api:
    """A node's HTTP API. One keep-alive connection per thread and node; a request that meets a
    connection the server closed while it was idle is sent once more on a fresh connection."""

    host = '127.0.0.1'
    port = None

    @property
    def url(self):
        return f'http://{self.host}:{self.port}'

    def _conns(self):
        c = getattr(_local, 'conns', None)
        if c is None:
            c = _local.conns = {}
        return c

    def _drop(self, key):
        conn = self._conns().pop(key, None)
        if conn is not None:
            try:
                conn.close()
            except Exception:
                pass

    def call(self, method, path, body=None, raw=None, headers=None, fresh=False, timeout=HTTP_TIMEOUT):
        """-> (status, parsed JSON or text, headers with lower-case names). status 0: no answer
        (connection refused/reset, timeout); the second item then describes the failure."""
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        h = {'Accept': 'application/json'}
        if data is not None:
            h['Content-Type'] = 'application/json'
        h.update(headers or {})
        key = (self.host, self.port, timeout)
        last_err = None
        for attempt in range(2):
            conns = self._conns()
            if fresh or attempt > 0:
                self._drop(key)
            conn = conns.get(key)
            reused = conn is not None
            if conn is None:
                conn = conns[key] = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
            sent = True
            try:
                conn.request(method, path, body=data, headers=h)
            except (BrokenPipeError, ConnectionResetError) as e:
                # The server may have answered (e.g. 413) and closed before reading everything.
                sent, last_err = False, e
            except (OSError, http.client.HTTPException) as e:
                self._drop(key)
                last_err = e
                if reused and attempt == 0:
                    continue
                return 0, f'no answer: {e!r}', {}
            try:
                r = conn.getresponse()
                text = r.read()
                hdrs = {k.lower(): v for k, v in r.getheaders()}
                if r.will_close:
                    self._drop(key)
            except (OSError, http.client.HTTPException, AttributeError) as e:
                # AttributeError: http.client dropped the socket after a reset while sending
                self._drop(key)
                last_err = e
                stale = isinstance(e, (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError))
                if reused and attempt == 0 and stale:
                    continue
                return 0, f'no answer: {e!r}' + ('' if sent else ' (while sending)'), {}
            try:
                parsed = json.loads(text) if text else None
            except (ValueError, RecursionError):
                parsed = text.decode(errors='replace')
            return r.status, parsed, hdrs
        return 0, f'no answer: {last_err!r}', {}

    # -- transaction helpers -------------------------------------------------------------
    def begin(self, read_only=None, **opts):
        """POST /txn/begin -> the transaction id (asserts 201)."""
        body = dict(opts)
        if read_only is not None:
            body['readOnly'] = read_only
        s, r, _ = self.call('POST', '/txn/begin', body)
        assert s == 201 and isinstance(r, dict) and isinstance(r.get('txn'), str), f'begin -> {s} {show(r)}'
        return r['txn']

    def read(self, t, p):
        """GET /ptr/{p}?txn={t} -> (status, body)."""
        s, r, _ = self.call('GET', f'/ptr/{p}?txn={t}')
        return s, r

    def read_many(self, t, ptrs):
        s, r, _ = self.call('POST', f'/txn/{t}/read', {'ptrs': list(ptrs)})
        return s, r

    def write(self, t, p, v):
        """PUT /ptr/{p}?txn={t} -> (status, body)."""
        s, r, _ = self.call('PUT', f'/ptr/{p}?txn={t}', raw=json.dumps(v).encode())
        return s, r

    def delete(self, t, p):
        s, r, _ = self.call('DELETE', f'/ptr/{p}?txn={t}')
        return s, r

    def commit(self, t, body=None):
        """POST /txn/{t}/commit -> (status, body)."""
        s, r, _ = self.call('POST', f'/txn/{t}/commit', body if body is not None else {})
        return s, r

    def abort(self, t):
        s, r, _ = self.call('POST', f'/txn/{t}/abort', {})
        return s, r

    def txn_status(self, t):
        s, r, _ = self.call('GET', f'/txn/{t}')
        return s, r

    # -- pointers without a transaction --------------------------------------------------
    def get(self, p, **kw):
        """GET /ptr/{p} -> (status, body, headers)."""
        return self.call('GET', f'/ptr/{p}', **kw)

    def value(self, p, default=None):
        """The current value of p, or default if it is absent (404)."""
        s, r, _ = self.call('GET', f'/ptr/{p}')
        if s == 404:
            assert error_shape(r, 'not_found'), f'GET /ptr/{p} -> 404 {show(r)}'
            return default
        assert s == 200 and isinstance(r, dict) and 'value' in r, f'GET /ptr/{p} -> {s} {show(r)}'
        return r['value']

    def put(self, p, v, if_match=None):
        """PUT /ptr/{p} -> (status, body, headers)."""
        h = {'If-Match': f'"{if_match}"'} if if_match is not None else None
        return self.call('PUT', f'/ptr/{p}', raw=json.dumps(v).encode(), headers=h)

    def one_shot(self, reads=None, expect=None, writes=None, deletes=None):
        body = {}
        if reads is not None:
            body['reads'] = list(reads)
        if expect is not None:
            body['expect'] = expect
        if writes is not None:
            body['writes'] = writes
        if deletes is not None:
            body['deletes'] = list(deletes)
        s, r, _ = self.call('POST', '/txn', body)
        return s, r

    def healthy(self, timeout=5.0):
        s, r, _ = self.call('GET', '/sys/health', fresh=True, timeout=timeout)
        return s == 200 and isinstance(r, dict) and r.get('status') == 'ok'


# --------------------------------------------------------------------------------------------
# Server launcher

SERVERS = []          # every Server created in this process, for logs on failure and cleanup
_TEST_START = [0.0]   # monotonic start of the running test (set by conftest)


def read_json_answer(sock):
    """Reads one HTTP answer whose JSON body ends the stream's bytes so far, from a raw socket
    -> (head bytes, body bytes)."""
    answer = b''
    while b'\r\n\r\n' not in answer or not answer.rstrip().endswith(b'}'):
        chunk = sock.recv(65536)
        if not chunk:
            break
        answer += chunk
    head, _, body = answer.partition(b'\r\n\r\n')
    return head, body


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class Server(Api):
    """One `restm serve` process on a free port. The data dir is a fresh temporary one unless
    given; it survives restarts of this object and is removed by close() if it was made here."""

    def __init__(self, data_dir=None, durability=None, extra_args=(), name='node'):
        self.own_dir = data_dir is None
        self.data_dir = str(data_dir or tempfile.mkdtemp(prefix='restm-api-data-'))
        self.durability = durability
        self.extra_args = list(extra_args)
        self.name = name
        self.proc = None
        self.port = None
        self.closed_at = None
        self.started_at = time.monotonic()
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        self.log_path = LOG_DIR / f'{name}-{os.getpid()}-{uuid.uuid4().hex[:8]}.log'
        self.starts = 0
        SERVERS.append(self)

    def command(self, port):
        cmd = [str(restm_bin()), 'serve', '--host', '127.0.0.1', '--port', str(port), '--data', self.data_dir]
        if self.durability:
            cmd += ['--durability', self.durability]
        return cmd + self.extra_args

    def _log(self, text):
        with open(self.log_path, 'a', encoding='utf-8') as f:
            f.write(text)

    def start(self, timeout=30.0):
        """Start on a fresh free port and wait until GET /sys/health answers {"status": "ok"}."""
        assert not self.alive(), 'already running'
        binary = restm_bin()
        if not binary.exists():
            raise AssertionError(f'server binary {binary} not found: build it (swift build) or set RESTM_BIN')
        for attempt in range(3):
            self.port = free_port()
            cmd = self.command(self.port)
            self.starts += 1
            self._log(f'\n===== start #{self.starts}: {" ".join(cmd)}\n')
            spawn_deadline = time.monotonic() + 60
            while True:
                try:
                    with open(self.log_path, 'ab') as log:
                        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                                     stdin=subprocess.DEVNULL, cwd=self.data_dir,
                                                     start_new_session=True)
                    break
                except OSError as e:
                    # e.g. ETXTBSY or ENOENT while the binary is being relinked by a build
                    if time.monotonic() > spawn_deadline:
                        raise AssertionError(f'cannot run {cmd[0]}: {e!r}')
                    self._log(f'spawn failed ({e!r}); retrying\n')
                    time.sleep(0.5)
            self.started_at = time.monotonic()
            self.closed_at = None
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                if self.healthy(timeout=2.0):
                    return self
                time.sleep(0.05)
            if self.proc.poll() is None:
                self.kill9()
                raise AssertionError(f'{self.name}: not healthy within {timeout}s\n{self.log_tail()}')
            tail = self.log_tail()
            if 'in use' in tail.lower() and attempt < 2:
                continue  # lost the race for the port; try another one
            raise AssertionError(f'{self.name}: exited with {self.proc.returncode} while starting\n{tail}')
        raise AssertionError('unreachable')

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def wait_exit(self, timeout):
        """-> the exit code, or None if still running after timeout seconds."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill9(self):
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait()
            self._log(f'\n===== killed -9 (exit {self.proc.returncode})\n')

    def shutdown(self, timeout=10.0):
        """POST /sys/shutdown -> (status, body, exit code or None if still running after timeout)."""
        s, r, _ = self.call('POST', '/sys/shutdown', {}, fresh=True)
        rc = self.wait_exit(timeout)
        self._log(f'\n===== shutdown requested: {s}, exit {rc}\n')
        return s, r, rc

    def terminate(self, timeout=10.0):
        """SIGTERM -> exit code or None if still running after timeout."""
        self.proc.send_signal(signal.SIGTERM)
        rc = self.wait_exit(timeout)
        self._log(f'\n===== SIGTERM: exit {rc}\n')
        return rc

    def restart(self, timeout=30.0):
        """Stop (gracefully if running) and start again on the same data dir."""
        if self.alive():
            self.stop()
        return self.start(timeout)

    def stop(self):
        """Best effort: SIGTERM, then SIGKILL after 10 s."""
        if self.alive():
            try:
                self.proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
            if self.wait_exit(10.0) is None:
                self.kill9()

    def close(self):
        self.stop()
        self.closed_at = time.monotonic()
        if self.own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def log_tail(self, limit=20000):
        try:
            data = self.log_path.read_bytes()
        except OSError:
            return '(no log)'
        text = data[-limit:].decode(errors='replace')
        return text if len(data) <= limit else f'... (last {limit} bytes of {len(data)})\n' + text


def servers_of_current_test():
    t0 = _TEST_START[0]
    return [s for s in SERVERS if s.closed_at is None or s.closed_at >= t0]


@atexit.register
def _kill_leftovers():
    for s in SERVERS:
        try:
            if s.alive():
                s.proc.kill()
        except Exception:
            pass


# --------------------------------------------------------------------------------------------
# Module-level helpers on the default node (set by the `server` fixture)

DEFAULT = [None]


def _node():
    assert DEFAULT[0] is not None, 'no default node: use the server fixture'
    return DEFAULT[0]


def call(method, path, body=None, raw=None, headers=None):
    return _node().call(method, path, body=body, raw=raw, headers=headers)


def begin(**kw):
    return _node().begin(**kw)


def read(t, p):
    return _node().read(t, p)


def write(t, p, v):
    return _node().write(t, p, v)


def commit(t, body=None):
    return _node().commit(t, body)


def backoff(rng, attempt, base=0.002, cap=0.05):
    time.sleep(rng.uniform(0, min(cap, base * (2 ** min(attempt, 10)))))
