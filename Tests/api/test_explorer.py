"""The memory explorer in a real headless Chromium (Debian's `chromium`): scripted page loads
(the DOM after the page's scripts ran) whose content is asserted, and a screenshot of every
page kept in Tests/api/artifacts/explorer/ (or $RESTM_ARTIFACTS)."""
import os
import re
import shutil
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from restm_testlib import REPO_ROOT, begin, call, unique

ARTIFACTS = Path(os.environ.get('RESTM_ARTIFACTS', REPO_ROOT / 'Tests' / 'api' / 'artifacts')) / 'explorer'


def chromium():
    exe = shutil.which('chromium') or shutil.which('chromium-browser')
    if exe is None:
        # scripts/test.sh installs it; in CI a missing browser is a failure, not a skip.
        assert not os.environ.get('CI'), 'chromium is not installed (scripts/test.sh installs it)'
        pytest.skip('chromium is not installed')
    return exe


def browse(url, name=None, wait_ms=1500):
    """Loads `url` in headless Chromium; answers the DOM after scripts ran. With `name`, also
    saves a screenshot `<name>.png` in the artifacts directory."""
    base = [chromium(), '--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
            '--no-first-run', '--hide-scrollbars', f'--virtual-time-budget={wait_ms}']
    dom = subprocess.run(base + ['--dump-dom', url], capture_output=True, text=True, timeout=90)
    assert dom.returncode == 0, f'chromium failed on {url}: {dom.stderr[-2000:]}'
    if name:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / f'{name}.png'
        r = subprocess.run(base + ['--window-size=1280,1000', f'--screenshot={shot}', url],
                           capture_output=True, text=True, timeout=90)
        assert r.returncode == 0 and shot.exists() and shot.stat().st_size > 1000, f'no screenshot of {url}: {r.stderr[-2000:]}'
    return dom.stdout


def iso(ms):
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat(timespec='milliseconds').replace('+00:00', 'Z')


def test_home_lists_pointers_transactions_and_tasks(server):
    p = unique('explore')
    assert call('PUT', f'/ptr/{p}', {'n': 1})[0] == 200
    t = begin()
    s, body, _ = call('POST', '/task', {'kind': 'demo.sum', 'input': {'from': 0, 'to': 50, 'leaf': 10}})
    assert s == 201
    task = body['task']
    dom = browse(f'{server.url}/?prefix={p}', 'home')
    assert f'href="/ptr/{p}"' in dom
    assert 'Open transactions' in dom and t in dom, 'the open transaction is listed'
    assert 'id="tasks"' in dom and task in dom, 'the task is listed'
    call('POST', f'/txn/{t}/abort')


def test_pointer_page_renders_links_history_and_time_travel(server):
    p, q = unique('explore-p'), unique('explore-q')
    assert call('PUT', f'/ptr/{q}', 'target')[0] == 200
    assert call('PUT', f'/ptr/{p}', {'gen': 'first', 'next': {'$ptr': q}})[0] == 200
    time.sleep(0.05)
    between = int(time.time() * 1000)
    time.sleep(0.05)
    assert call('PUT', f'/ptr/{p}', {'gen': 'second'})[0] == 200
    dom = browse(f'{server.url}/ptr/{p}', 'pointer')
    assert '"second"' in dom and '"first"' in dom, 'the value and the history are shown'
    assert len(re.findall(r'<tr><td><a href="/ptr/' + re.escape(p) + r'\?at=', dom)) == 2, 'two versions in the history'
    assert 'id="ago"' in dom and 'type="range"' in dom, 'the time control is there'
    old = browse(f'{server.url}/ptr/{p}?at={iso(between)}', 'pointer-as-of')
    pre = old.split('<pre>', 1)[1].split('</pre>', 1)[0]
    assert '"first"' in pre and '"second"' not in pre, 'the value as of the past moment'
    assert f'<a href="/ptr/{q}">' in pre, '{"$ptr": id} is rendered as a link'


def test_task_page_shows_the_tree(server):
    s, body, _ = call('GET', '/demo/sort?n=100000&seed=5')
    assert s == 202
    task = body['task']
    s, res, _ = call('GET', f'/task/result/{task}?timeoutMs=60000')
    assert s == 200 and res['status'] == 'done', res
    dom = browse(f'{server.url}/task/info/{task}', 'task-tree')
    items = re.findall(r'<li data-status="(\w+)">', dom)
    # demo.sort → sort.range → 4 → leaves of ≤ 16,384: 1 + 1 + 4 + 4×4 tasks.
    assert len(items) == 22, f'{len(items)} tasks in the tree'
    assert set(items) == {'done'}
    assert 'sort.range' in dom and '22 of 22' in dom


def test_metrics_page_draws_charts(server):
    for i in range(20):
        call('PUT', f'/ptr/{unique("m")}', i)
    time.sleep(2.2)  # two samples at least
    dom = browse(f'{server.url}/sys/metrics', 'metrics')
    assert dom.count('<svg') == 8 and dom.count('<polyline') == 8, 'eight charts'
    assert 'commits / s' in dom and 'values in memory' in dom
    assert '"scalars"' in dom, 'the figures are shown too'


def test_pages_work_offline(server):
    """No external assets: every src/href is relative to the node."""
    for path in ['/', '/sys/metrics']:
        dom = browse(f'{server.url}{path}')
        ext = re.findall(r'(?:src|href)="(https?://[^"]+)"', dom)
        assert not ext, f'{path} loads external assets: {ext}'
