"""The repository server's nginx under load: cache headers, 304s, admission control (429 with
Retry-After) and a small run of the load generator, against a real lab host set up by the role."""

import asyncio
import http.client
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import bench_scale  # noqa: E402
import scale_load  # noqa: E402

# low whole-server limits, so a small run meets them: 429s must come, and be retried
LIMITS = {
    "repo_server_retry_after": 1,
    "repo_server_limit_rate_per_client": 1000, "repo_server_limit_burst_per_client": 1000,
    "repo_server_limit_rate_total": 20, "repo_server_limit_burst_total": 10,
}


def get(address, path, headers=None):
    conn = http.client.HTTPConnection(address, 80, timeout=30)
    try:
        conn.request("GET", path, headers=headers or {})
        answer = conn.getresponse()
        return answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read()
    finally:
        conn.close()


def get_paced(address, path, headers=None):
    """GET below the 20 requests/s limit of LIMITS (this test's own probes are never refused)."""
    time.sleep(0.2)
    return get(address, path, headers)


@pytest.mark.long
def test_cache_headers_304_and_429_with_retry_after_then_a_small_load_run(lab, tmp_path):
    server, address, inrelease = bench_scale.prepare_server(lab, tmp_path, 5, LIMITS)
    time.sleep(1)

    # InRelease: short max-age and validators; both kinds of conditional GET answer 304
    status, headers, body = get_paced(address, inrelease)
    assert status == 200 and headers["cache-control"] == "public, max-age=60", headers
    assert headers.get("etag") and headers.get("last-modified"), headers
    for conditional in ({"If-None-Match": headers["etag"]}, {"If-Modified-Since": headers["last-modified"]}):
        again, again_headers, again_body = get_paced(address, inrelease, conditional)
        assert again == 304 and again_body == b"", (conditional, again, again_headers)
    stale, _, _ = get_paced(address, inrelease, {"If-None-Match": '"0-0"'})
    assert stale == 200

    # by-hash index and pool file: long and immutable
    (by_hash, sha, size), = scale_load.by_hash_paths(inrelease, body.decode())
    status, headers, index = get_paced(address, by_hash)
    assert status == 200 and len(index) == size, (by_hash, status)
    assert headers["cache-control"] == "public, max-age=2592000, immutable", headers
    pool = f"/pub/{bench_scale.PROJECT}/repos/{bench_scale.DEPLOYMENT}/pool/base/base-set/mo-scale-000_1.0-1_all.deb"
    status, headers, _ = get_paced(address, pool)
    assert status == 200 and headers["cache-control"] == "public, max-age=2592000, immutable", headers
    status, headers, _ = get_paced(address, f"/pub/{bench_scale.PROJECT}/repos/")
    assert status == 200 and headers["cache-control"] == "public, max-age=60"

    # a burst above the limit: the excess is refused with 429, Retry-After and no-store
    time.sleep(2)
    with ThreadPoolExecutor(max_workers=40) as pool_:
        answers = list(pool_.map(lambda _n: get(address, inrelease), range(80)))
    refused = [headers for status, headers, _ in answers if status == 429]
    assert refused and len(refused) < len(answers), sorted({status for status, _, _ in answers})
    assert {status for status, _, _ in answers} == {200, 429}
    assert all(h.get("retry-after") == "1" and h.get("cache-control") == "no-store" for h in refused), refused[0]

    # 100 clients started within 3 s: far above 20 requests/s, so many are refused; every
    # refused request succeeds on a retry and no cycle fails
    time.sleep(2)
    target = scale_load.Target(host=address, port=80, inrelease=inrelease)
    target.etag, target.last_modified = bench_scale.validators(address, inrelease)
    stats, _wall = asyncio.run(scale_load.run(target, 100, 3.0, 300.0, changed_share=0.5))
    assert stats.errors == {}, stats.errors
    assert stats.cycles_ok == 100
    assert stats.retried > 0 and stats.statuses.get(429) == stats.retried, (stats.retried, stats.statuses)
    assert set(stats.statuses) == {200, 304, 429}, stats.statuses
    assert stats.cycle_bytes["changed"] and stats.cycle_bytes["unchanged"]
