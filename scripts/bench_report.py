"""Turns a bench-compare run into a dated section of docs/PERFORMANCE.md and the SVG chart
docs/bench-clients.svg (throughput against clients for reSTM, PostgreSQL and Redis)."""
import datetime
import json
import os
import platform
import re
import subprocess
import sys

results_path, peers_main_path, peers_sweep_path, main_s, sweep_s = sys.argv[1:6]
rows = [json.loads(l) for l in open(results_path) if l.strip().startswith('{')]


def peers(text):
    out = {}
    for line in text.splitlines():
        m = re.search(r'(postgresql-serializable|redis-script-appendfsync-always|redis-script-appendfsync-everysec) transfers/s: ([0-9.]+)', line)
        if m:
            c = re.match(r'clients=(\d+)', line)
            out[(int(c.group(1)) if c else 32, m.group(1))] = float(m.group(2))
    return out


main_peers = peers(open(peers_main_path).read())
sweep_peers = peers(open(peers_sweep_path).read())
headline = {r['workload']: r for r in rows if not r.get('sweep') and r.get('mode') == 'http' and not r.get('variant')}
variants = [(r['variant'], r) for r in rows if not r.get('sweep') and r.get('variant')]
VARIANT_NAMES = {'ahc': 'reSTM HTTP, AsyncHTTPClient load generator',
                 'no-cache': 'reSTM HTTP, no read cache (2 requests per transfer)',
                 'no-batching': 'reSTM HTTP, no batching (each request its own exchange)'}
ping = next((r for r in rows if r.get('workload') == 'ping'), None)
embedded = sorted((r for r in rows if r.get('mode') == 'embedded'), key=lambda r: r['clients'])
embedded_memory = [r for r in rows if r.get('mode') == 'embedded-memory']
sweep = sorted((r for r in rows if r.get('sweep')), key=lambda r: r['clients'])

cpu = subprocess.run(['sh', '-c', "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"], capture_output=True, text=True).stdout.strip()
now = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')
pg = main_peers.get((32, 'postgresql-serializable'))
ra = main_peers.get((32, 'redis-script-appendfsync-always'))
re_ = main_peers.get((32, 'redis-script-appendfsync-everysec'))


def ratio(a, b):
    return f'{a / b:.2f}×' if a and b else 'n/a'


lines = [f'## Run of {now}', '',
         f'Machine: {os.cpu_count()} cores, {cpu}, {platform.system()} {platform.release()}. '
         f'Command: `scripts/bench-compare` ({main_s} s headline runs, {sweep_s} s sweep runs; 10,000 accounts unless noted). '
         'The load generator runs on the same two cores as the server.', '',
         '| system | workload | clients | transfers/s | conflicts/commit | p50 ms | p99 ms | p999 ms | max attempts | total ok | server CPU % | bench CPU % | requests / exchanges per transfer |',
         '|---|---|---|---|---|---|---|---|---|---|---|---|---|']


def traffic(r):
    q, e = r.get('requests_per_transfer'), r.get('exchanges_per_transfer')
    return f'{q} / {e}' if q is not None else ''

for w in ('bank', 'hot', 'read-mostly'):
    r = headline.get(w)
    if r:
        extra = f" ({r.get('txns_per_s')} txns/s)" if 'txns_per_s' in r else ''
        lines.append(f"| reSTM HTTP | {w} ({r['accounts']} accounts) | {r['clients']} | {r['transfers_per_s']}{extra} | {r['conflicts_per_commit']} | "
                     f"{r['p50_ms']} | {r['p99_ms']} | {r['p999_ms']} | {r['max_attempts']} | {r['total_ok']} | {r.get('server_cpu_percent', '')} | {r['bench_cpu_percent']} | {traffic(r)} |")
for v, r in variants:
    lines.append(f"| {VARIANT_NAMES.get(v, 'reSTM HTTP, ' + v)} | bank ({r['accounts']} accounts) | {r['clients']} | {r['transfers_per_s']} | {r['conflicts_per_commit']} | "
                 f"{r['p50_ms']} | {r['p99_ms']} | {r['p999_ms']} | {r['max_attempts']} | {r['total_ok']} | {r.get('server_cpu_percent', '')} | {r['bench_cpu_percent']} | {traffic(r)} |")
for name, r in ([('reSTM embedded (SQLite, durable)', r) for r in embedded]
                + [('reSTM embedded, memory store (not durable: the store\'s cost)', r) for r in embedded_memory]):
    if r:
        lines.append(f"| {name} | bank | {r['clients']} | {r['transfers_per_s']} | {r['conflicts_per_commit']} | {r['p50_ms']} | {r['p99_ms']} | "
                     f"{r['p999_ms']} | {r['max_attempts']} | {r['total_ok']} | (same process) | {r['bench_cpu_percent']} | none |")
for key, name in (('postgresql-serializable', 'PostgreSQL SERIALIZABLE (pgbench)'),
                  ('redis-script-appendfsync-always', 'Redis script, appendfsync always'),
                  ('redis-script-appendfsync-everysec', 'Redis script, appendfsync everysec')):
    v = main_peers.get((32, key))
    lines.append(f'| {name} | bank | 32 | {v if v else "n/a"} | | | | | | | | | |')
bank = headline.get('bank', {}).get('transfers_per_s')
hot = headline.get('hot', {}).get('transfers_per_s')
lines += ['', f'Ratios (bank over HTTP, 32 clients): reSTM / PostgreSQL {ratio(bank, pg)}, '
          f'reSTM / Redis always {ratio(bank, ra)}, reSTM / Redis everysec {ratio(bank, re_)}. '
          f'Hot / bank: {ratio(hot, bank)}.']


def us_per(r, key, per=1.0):
    """CPU microseconds per unit of work (a transfer, or a request) on one side."""
    rate = r.get(key) if r else None
    if not rate or rate == 0:
        return None
    return lambda pct: pct / 100.0 * 1e6 / (rate * per)


b = headline.get('bank')
if b and b.get('server_cpu_percent') is not None:
    f = us_per(b, 'transfers_per_s')
    lines.append(f"CPU per bank transfer over HTTP ({b.get('requests_per_transfer')} requests in {b.get('exchanges_per_transfer')} exchanges): "
                 f"server {f(float(b['server_cpu_percent'])):.0f} µs, load generator {f(float(b['bench_cpu_percent'])):.0f} µs.")
if ping and ping.get('server_cpu_percent') is not None:
    f = us_per(ping, 'requests_per_s')
    lines.append(f"A request alone (`restm bench ping`, GET /sys/health, 32 clients): {ping['requests_per_s']} requests/s; "
                 f"server {f(float(ping['server_cpu_percent'])):.0f} µs, load generator {ping['bench_cpu_us_per_request']} µs per request.")
lines += ['', '![throughput against clients](bench-clients.svg)', '']

# The chart: a plain SVG, no dependencies.
series = {'reSTM (HTTP)': [(r['clients'], r['transfers_per_s']) for r in sweep]}
for key, name in (('postgresql-serializable', 'PostgreSQL SERIALIZABLE'), ('redis-script-appendfsync-always', 'Redis (fsync always)'),
                  ('redis-script-appendfsync-everysec', 'Redis (everysec)')):
    series[name] = sorted((c, v) for (c, k), v in sweep_peers.items() if k == key)
colors = ['#d62728', '#1f77b4', '#2ca02c', '#9467bd']
W, H, L, B = 640, 360, 70, 40
xs = sorted({c for s in series.values() for c, _ in s}) or [1]
ymax = max([v for s in series.values() for _, v in s] + [1]) * 1.1
import math
def px(c): return L + (math.log2(c) - math.log2(xs[0])) / max(1e-9, math.log2(xs[-1]) - math.log2(xs[0])) * (W - L - 20)
def py(v): return H - B - v / ymax * (H - B - 20)
svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="11">',
       f'<rect width="{W}" height="{H}" fill="white"/>',
       f'<line x1="{L}" y1="{H-B}" x2="{W-20}" y2="{H-B}" stroke="black"/><line x1="{L}" y1="20" x2="{L}" y2="{H-B}" stroke="black"/>',
       f'<text x="{W/2}" y="{H-8}" text-anchor="middle">clients (log scale) — bank transfers/s, durable, {now}</text>']
for c in xs:
    svg.append(f'<text x="{px(c):.1f}" y="{H-B+14}" text-anchor="middle">{c}</text>')
for i in range(5):
    v = ymax * i / 4
    svg.append(f'<text x="{L-6}" y="{py(v)+4:.1f}" text-anchor="end">{v:,.0f}</text><line x1="{L}" y1="{py(v):.1f}" x2="{W-20}" y2="{py(v):.1f}" stroke="#eee"/>')
for i, (name, pts) in enumerate(series.items()):
    if not pts:
        continue
    col = colors[i % len(colors)]
    svg.append(f'<polyline fill="none" stroke="{col}" stroke-width="2" points="' + ' '.join(f'{px(c):.1f},{py(v):.1f}' for c, v in pts) + '"/>')
    svg.append(f'<text x="{L+10}" y="{30+14*i}" fill="{col}">{name}</text>')
svg.append('</svg>')
open('docs/bench-clients.svg', 'w').write('\n'.join(svg) + '\n')

path = 'docs/PERFORMANCE.md'
old = open(path).read() if os.path.exists(path) else '# Performance\n'
marker = '<!-- runs: newest first -->'
if marker not in old:
    old = old.rstrip() + '\n\n' + marker + '\n'
head, tail = old.split(marker, 1)
open(path, 'w').write(head + marker + '\n\n' + '\n'.join(lines) + tail)
print('\n'.join(lines))
