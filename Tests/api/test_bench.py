"""A short `restm bench` run over HTTP and embedded: it finishes, prints the JSON line of
issue #3 on standard output, and the total read back checks out."""
import json
import subprocess
import tempfile

import pytest

from restm_testlib import restm_bin

KEYS = {"workload", "transfers_per_s", "conflicts_per_commit", "p50_ms", "p99_ms", "p999_ms", "max_attempts", "total_ok"}


def run_bench(args):
    r = subprocess.run([str(restm_bin()), 'bench', *args], capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, f'restm bench {args} exited {r.returncode}:\n{r.stderr[-2000:]}'
    line = r.stdout.strip().splitlines()[-1]
    result = json.loads(line)
    assert KEYS <= set(result), f'missing keys in {line}'
    assert 't=1s' in r.stderr, 'no progress line on standard error'
    return result


@pytest.mark.parametrize('workload,accounts', [('bank', 200), ('hot', None), ('read-mostly', 500)])
def test_bench_over_http(server, workload, accounts):
    args = [workload, '--url', server.url, '--clients', '4', '--seconds', '2', '--warmup', '0']
    if accounts:
        args += ['--accounts', str(accounts)]
    r = run_bench(args)
    assert r['total_ok'] is True and r['total'] == 100 * r['accounts'], r
    assert r['transfers_per_s'] > 0, r


def test_bench_embedded():
    with tempfile.TemporaryDirectory() as d:
        r = run_bench(['bank', '--embedded', '--data', d + '/data', '--accounts', '100', '--clients', '8', '--seconds', '2', '--warmup', '0'])
    assert r['total_ok'] is True and r['mode'] == 'embedded' and r['transfers_per_s'] > 0, r


def test_bench_with_async_http_client_and_the_memory_store(server):
    r = run_bench(['bank', '--url', server.url, '--http-client', 'ahc', '--accounts', '100', '--clients', '4', '--seconds', '1', '--warmup', '0'])
    assert r['total_ok'] is True and r['http_client'] == 'ahc', r
    r = run_bench(['bank', '--embedded', '--store', 'memory', '--accounts', '100', '--clients', '4', '--seconds', '1', '--warmup', '0'])
    assert r['total_ok'] is True and r['mode'] == 'embedded-memory', r


def test_bench_ping(server):
    p = subprocess.run([str(restm_bin()), 'bench', 'ping', '--url', server.url, '--clients', '4', '--seconds', '1'],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr[-2000:]
    r = json.loads(p.stdout.strip().splitlines()[-1])
    assert r['workload'] == 'ping' and r['requests_per_s'] > 0 and r['bench_cpu_us_per_request'] > 0, r
    # ping is for HTTP only.
    p = subprocess.run([str(restm_bin()), 'bench', 'ping', '--embedded'], capture_output=True, text=True, timeout=60)
    assert p.returncode != 0 and 'use --url' in p.stderr, (p.returncode, p.stderr[-500:])


@pytest.mark.parametrize('cache,batching', [('on', '2'), ('off', '2'), ('on', '0'), ('off', '0')])
def test_bench_read_cache_and_batching(server, cache, batching):
    """Every combination keeps the total; the cache makes a transfer one request, batching
    carries several requests per HTTP exchange (under load), and the JSON says which ran."""
    r = run_bench(['bank', '--url', server.url, '--read-cache', cache, '--batching', batching, '--accounts', '50',
                   '--clients', '8', '--seconds', '2', '--warmup', '0'])
    assert r['total_ok'] is True and r['read_cache'] == cache and r['batching'] == int(batching), r
    # 50 accounts, 8 clients: some conflicts, each costing requests of its own.
    per = r['requests_per_transfer']
    assert (1.0 <= per < 2.0) if cache == 'on' else (2.0 <= per < 3.0), r
    if batching == '0':
        assert r['exchanges_per_transfer'] == per, r
    else:
        assert r['exchanges_per_transfer'] < per, r
    # Embedded, the cache is off unless asked for.
    if cache == 'on' and batching == '2':
        with tempfile.TemporaryDirectory() as d:
            e = run_bench(['bank', '--embedded', '--data', d + '/data', '--accounts', '50', '--clients', '4', '--seconds', '1', '--warmup', '0'])
            assert e['read_cache'] == 'off' and e['total_ok'] is True, e
            e = run_bench(['bank', '--embedded', '--data', d + '/data2', '--read-cache', 'on', '--accounts', '50', '--clients', '4',
                           '--seconds', '1', '--warmup', '0'])
            assert e['read_cache'] == 'on' and e['total_ok'] is True, e


def test_read_mostly_needs_five_accounts():
    """read-mostly reads 5 distinct accounts per transaction: fewer is refused at once (it
    used to loop forever looking for a fifth)."""
    r = subprocess.run([str(restm_bin()), 'bench', 'read-mostly', '--embedded', '--store', 'memory', '--accounts', '4',
                        '--seconds', '1', '--warmup', '0'], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and 'at least 5' in r.stderr, f'exit {r.returncode}: {r.stderr[-500:]}'
    r = run_bench(['read-mostly', '--embedded', '--store', 'memory', '--accounts', '5', '--clients', '2',
                   '--seconds', '1', '--warmup', '0'])
    assert r['total_ok'] is True and r['accounts'] == 5, r
