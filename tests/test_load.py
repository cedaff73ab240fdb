"""A short run of `bench/load.py`: the server (`leptonhub serve`) in its own process on loopback, load generators in others, a few
hundred mixed requests and a few streamed reads of a 200,000-row table. No request may fail, latency stays under a loose bound,
and the server's memory does not grow while it streams. The long run (2 million rows, 30 s a phase) is `bench/load.py` itself."""
import sys
from pathlib import Path
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]/'bench'))
import load

P99_BOUND_MS = 2000   # loose: two shared cores; the long run reports the real figures

def test_short_load_run(tmp_path):
    report, problems = load.run(seconds=4, workers=2, requests=300, small_rows=5_000, big_rows=200_000, stream_workers=2, stream_reads=3,
                                rss_bound_mib=64, work=tmp_path)
    assert problems == [], problems
    m = report['mixed']
    assert m['total']['requests'] >= 100 and m['total']['errors'] == 0 and m['worker_exit_codes'] == [0, 0]
    assert set(m['by_kind']) == {k for k, _ in load.MIX}
    assert all(v['p99_ms'] < P99_BOUND_MS for v in m['by_kind'].values()), m['by_kind']
    s, rss = report['streaming'], report['server_rss_mib']
    assert s['reads'] >= 2 and s['failed_reads'] == 0 and s['first_read_rows'] == 200_000 and s['largest_batch_rows'] <= 65_536
    assert rss['growth_while_streaming'] < 64 and rss['samples'] > 5
    assert report['host'] == '127.0.0.1' and report['server_exit_code'] == 0
