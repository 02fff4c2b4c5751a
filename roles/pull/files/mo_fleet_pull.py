# -*- coding: utf-8 -*-
# Copyright: mo.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""mo-fleet-pull: one pull cycle of a host in pull mode (run by mo-fleet-pull.service).

1. ansible-pull clones or updates the server's pull repository over HTTP, verifies that its
   commit is signed by the server's archive key (--verify-commit) and runs site.yml, which
   converges the host with the mo.fleet.release role and writes its sync record;
2. the record is uploaded with ``PUT /records/<host>.json`` (HTTP basic auth, the host's own
   secret).

Both steps honour an overloaded server: a 429 or 503 answer waits for its Retry-After (else
an exponential backoff), plus a random jitter, and tries again up to ``attempts`` times.
Standard library only; the configuration is the JSON file given as the only argument.
"""

from __future__ import annotations

import base64
import email.utils
import json
import os
import random
import subprocess
import sys
import time
import urllib.error
import urllib.request

BUSY = (429, 503)


def retry_after(value, now=None) -> float | None:
    """Seconds a Retry-After header value asks for (delta-seconds or an HTTP date), None if unusable."""
    if value is None:
        return None
    value = str(value).strip()
    if value.isdigit():
        return float(min(int(value), 3600))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    delta = when.timestamp() - (time.time() if now is None else now)
    return max(0.0, min(delta, 3600.0))


def backoff(attempt: int, asked: float | None, base: float, cap: float, rand=random.random) -> float:
    """Delay before retry ATTEMPT (1-based): Retry-After when given, else base * 2**(attempt-1), capped,
    plus a jitter of up to half of it, so refused clients do not come back together."""
    delay = asked if asked is not None else base * (2 ** (attempt - 1))
    delay = min(delay, cap)
    return delay + rand() * delay / 2


def busy_status(text: str) -> int | None:
    """429 or 503 when git's output says the server answered so (``The requested URL returned error: 429``)."""
    for code in BUSY:
        if f"returned error: {code}" in text:
            return code
    return None


def with_retries(step, config, sleep=time.sleep, log=print):
    """Call STEP() -> (done, busy_seconds_or_None, result) until done or attempts run out."""
    attempts = int(config.get("attempts", 8))
    result = None
    for attempt in range(1, attempts + 1):
        done, asked, result = step()
        if done:
            return True, result
        if attempt == attempts:
            break
        delay = backoff(attempt, asked, float(config.get("backoff_base", 2)), float(config.get("backoff_cap", 300)))
        log(f"mo-fleet-pull: server busy, retry {attempt}/{attempts - 1} in {delay:.1f}s")
        sleep(delay)
    return False, result


def pull_command(config) -> list:
    """The ansible-pull command line (argv, never a shell line)."""
    return [config["ansible_pull"], "-U", config["url"], "-C", config["branch"], "--full",
            "--verify-commit", "-d", config["checkout"], "-i", "inventory.json",
            "-l", config["host"], "site.yml"]


def pull_step(config, runner=subprocess.run):
    def step():
        proc = runner(pull_command(config), capture_output=True, text=True, check=False)
        output = (proc.stdout or "") + (proc.stderr or "")
        sys.stdout.write(output[-20000:])
        code = busy_status(output)
        if proc.returncode != 0 and code:
            return False, None, proc.returncode
        return True, None, proc.returncode
    return step


def upload_step(config, opener=urllib.request.urlopen):
    def step():
        with open(config["record"], "rb") as handle:
            body = handle.read()
        with open(config["secret_file"], encoding="ascii") as handle:
            secret = handle.read().strip()
        token = base64.b64encode(f"{config['host']}:{secret}".encode()).decode()
        request = urllib.request.Request(config["records_url"], data=body, method="PUT",
                                         headers={"Authorization": f"Basic {token}",
                                                  "Content-Type": "application/json"})
        try:
            with opener(request, timeout=60) as answer:
                return True, None, answer.status
        except urllib.error.HTTPError as exc:
            if exc.code in BUSY:
                return False, retry_after(exc.headers.get("Retry-After")), exc.code
            return True, None, exc.code
        except (urllib.error.URLError, OSError):
            return False, None, 0
    return step


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    with open(argv[0], encoding="utf-8") as handle:
        config = json.load(handle)
    started = time.time()
    pulled, rc = with_retries(pull_step(config), config)
    try:
        if os.stat(config["record"]).st_mtime < started - 1:
            print(f"mo-fleet-pull: ansible-pull exited {rc} and wrote no new sync record; nothing uploaded",
                  file=sys.stderr)
            return 1
        uploaded, status = with_retries(upload_step(config), config)
    except FileNotFoundError as exc:
        print(f"mo-fleet-pull: no sync record to upload ({exc.filename})", file=sys.stderr)
        return 2
    if not uploaded or status not in (200, 201, 204):
        print(f"mo-fleet-pull: the record upload to {config['records_url']} failed (HTTP {status})", file=sys.stderr)
        return 3
    print(f"mo-fleet-pull: record uploaded (HTTP {status}); ansible-pull exited {rc}")
    return 0 if pulled and rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
