"""The load generator of bench_scale.py: simulated pulling hosts over asyncio streams.

Each client is one host's timer run, one HTTP/1.1 keep-alive connection at a time:

  1. conditional GET of the deployment's InRelease (If-None-Match / If-Modified-Since with
     the validators a host kept from its last run: the current ones for an "unchanged"
     client, which gets 304 and stops there as apt does, none for a "changed" one);
  2. a changed client then GETs the by-hash index files its InRelease names (one compressed
     form of each Packages file, as apt takes) and checks their sha256;
  3. the pull repository (optional): GET /pull/<repo>/info/refs and the object of its first
     ref (loose object, or the pack index naming it);
  4. the sync record (optional): PUT /records/<host>.json with that host's basic auth.

A 429 or 503 answer is retried after Retry-After seconds times 2**attempt, with full jitter
(a random share of 50-150 %), up to MAX_ATTEMPTS; any other failure is an error of its kind.
Everything is bounded: the clients, the attempts, each request's timeout and one global
deadline, after which the clients still running are counted as errors ("deadline").
Standard library only.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import hashlib
import json
import math
import random
import re
import time
from dataclasses import dataclass, field

MAX_ATTEMPTS = 8
MAX_BACKOFF = 60.0
MAX_BODY = 64 * 2**20       # a response body larger than this is an error, not read
MAX_HEADER_LINES = 100
SHA256_LINE = re.compile(r"^ ([0-9a-f]{64}) +(\d+) (\S+)$")
PREFERRED = (".xz", ".gz", "")  # apt takes one compressed form of each index


class RequestError(Exception):
    """One failed request; KIND names the failure for the report."""

    def __init__(self, kind: str, detail: str = ""):
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


@dataclass
class Response:
    status: int
    headers: dict
    body: bytes


@dataclass
class Stats:
    latencies: list = field(default_factory=list)   # seconds, every answered request
    statuses: dict = field(default_factory=dict)    # status -> count
    errors: dict = field(default_factory=dict)      # kind -> count (failed for good)
    retried: int = 0                                # 429/503 answers that were retried
    bytes_in: int = 0
    bytes_out: int = 0
    cycles_ok: int = 0
    cycle_bytes: dict = field(default_factory=lambda: {"changed": [], "unchanged": []})

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


@dataclass
class Target:
    host: str                  # address the sockets connect to
    port: int
    inrelease: str             # path of the InRelease file
    pull_repo: str = ""        # e.g. /pull/fleet.git ("" skips the pull repository)
    records: bool = False      # PUT /records/<client>.json
    password_of: object = None  # callable(client name) -> password for the record PUT
    deployments: tuple = ()    # what the uploaded sync records say the host has
    etag: str = ""             # validators of the current InRelease (unchanged clients send them)
    last_modified: str = ""


class Connection:
    """One keep-alive HTTP/1.1 connection, reopened when the server closes it."""

    def __init__(self, target: Target, stats: Stats, timeout: float):
        self.target, self.stats, self.timeout = target, stats, timeout
        self.reader = self.writer = None
        self.bytes = 0  # both directions, this client's requests only

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except OSError:
                pass
        self.reader = self.writer = None

    async def _open(self) -> None:
        try:
            self.reader, self.writer = await asyncio.wait_for(
                asyncio.open_connection(self.target.host, self.target.port), self.timeout)
        except asyncio.TimeoutError:
            raise RequestError("connect timeout") from None
        except OSError as exc:
            raise RequestError("connect error", str(exc)) from None

    async def request(self, method: str, path: str, headers: dict | None = None,
                      body: bytes = b"") -> Response:
        if self.writer is None:
            await self._open()
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.target.host}", "User-Agent: mo-fleet-bench"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        if body or method == "PUT":
            lines.append(f"Content-Length: {len(body)}")
        raw = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        start = time.monotonic()
        try:
            self.writer.write(raw)
            await self.writer.drain()
            response = await asyncio.wait_for(self._read_response(method), self.timeout)
        except asyncio.TimeoutError:
            await self.close()
            raise RequestError("timeout", path) from None
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            await self.close()
            raise RequestError("connection lost", f"{path}: {exc!r}") from None
        self.stats.latencies.append(time.monotonic() - start)
        self.stats.bytes_out += len(raw)
        self.bytes += len(raw)
        self.stats.statuses[response.status] = self.stats.statuses.get(response.status, 0) + 1
        if response.headers.get("connection", "").lower() == "close":
            await self.close()
        return response

    async def _read_response(self, method: str) -> Response:
        status_line = await self.reader.readuntil(b"\r\n")
        parts = status_line.decode("latin-1").split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise ValueError(f"bad status line {status_line[:80]!r}")
        headers = {}
        for _line in range(MAX_HEADER_LINES):
            line = (await self.reader.readuntil(b"\r\n")).decode("latin-1").rstrip("\r\n")
            if not line:
                break
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        else:
            raise ValueError("too many header lines")
        status = int(parts[1])
        size = len(status_line) + sum(len(k) + len(v) + 4 for k, v in headers.items()) + 2
        body = b""
        if method != "HEAD" and status not in (204, 304) and not 100 <= status < 200:
            if "chunked" in headers.get("transfer-encoding", "").lower():
                body = await self._read_chunked()
            else:
                length = int(headers.get("content-length", "0"))
                if length > MAX_BODY:
                    raise ValueError(f"body of {length} bytes is above the cap")
                body = await self.reader.readexactly(length)
        self.stats.bytes_in += size + len(body)
        self.bytes += size + len(body)
        return Response(status, headers, body)

    async def _read_chunked(self) -> bytes:
        chunks, total = [], 0
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            total += size
            if total > MAX_BODY:
                raise ValueError("chunked body above the cap")
            if size == 0:
                await self.reader.readuntil(b"\r\n")
                return b"".join(chunks)
            chunks.append(await self.reader.readexactly(size))
            await self.reader.readexactly(2)


async def fetch(conn: Connection, rng: random.Random, method: str, path: str,
                headers: dict | None = None, body: bytes = b"", ok=(200,)) -> Response:
    """One request, retried on 429/503 after Retry-After with exponential backoff + jitter."""
    for attempt in range(MAX_ATTEMPTS):
        response = await conn.request(method, path, headers, body)
        if response.status in ok:
            return response
        if response.status not in (429, 503):
            raise RequestError(f"HTTP {response.status}", path)
        if attempt == MAX_ATTEMPTS - 1:
            break
        conn.stats.retried += 1
        try:
            base = float(response.headers.get("retry-after", "1"))
        except ValueError:
            base = 1.0
        await conn.close()  # a refused client lets go of its connection while it waits
        await asyncio.sleep(min(MAX_BACKOFF, max(base, 0.1) * 2 ** attempt) * rng.uniform(0.5, 1.5))
    raise RequestError(f"HTTP {response.status} after {MAX_ATTEMPTS} attempts", path)


def by_hash_paths(inrelease: str, text: str) -> list:
    """(path, sha256, size) of the by-hash files of one compressed form of each Packages index
    named in the SHA256 section of INRELEASE's TEXT."""
    base = inrelease.rsplit("/", 1)[0]
    entries, in_sha = {}, False
    for line in text.splitlines():
        if not line.startswith(" "):
            in_sha = line.rstrip() == "SHA256:"
            continue
        found = SHA256_LINE.match(line) if in_sha else None
        if found:
            entries[found.group(3)] = (found.group(1), int(found.group(2)))
    stems = set()
    for name in entries:
        if name.rsplit("/", 1)[-1].startswith("Packages"):
            stems.add(name[:-3] if name.endswith((".xz", ".gz")) else name)
    chosen = []
    for stem in sorted(stems):
        ext = next(ext for ext in PREFERRED if stem + ext in entries)
        sha, size = entries[stem + ext]
        directory = stem.rsplit("/", 1)[0]
        chosen.append((f"{base}/{directory}/by-hash/SHA256/{sha}", sha, size))
    return chosen


async def pull_cycle(name: str, target: Target, stats: Stats, changed: bool, seed: int,
                     timeout: float) -> None:
    """One simulated host's timer run (see the module docstring)."""
    rng = random.Random(seed)
    conn = Connection(target, stats, timeout)
    try:
        conditional = {} if changed else {"If-None-Match": target.etag,
                                          "If-Modified-Since": target.last_modified}
        inrelease = await fetch(conn, rng, "GET", target.inrelease,
                                {k: v for k, v in conditional.items() if v}, ok=(200, 304))
        if inrelease.status == 200:
            for path, sha, size in by_hash_paths(target.inrelease, inrelease.body.decode("utf-8", "replace")):
                index = await fetch(conn, rng, "GET", path)
                if len(index.body) != size or hashlib.sha256(index.body).hexdigest() != sha:
                    raise RequestError("bad index", path)
        if target.pull_repo:
            await pull_repository(conn, rng, target.pull_repo)
        if target.records:
            secret = target.password_of(name) if target.password_of else ""
            auth = base64.b64encode(f"{name}:{secret}".encode()).decode()
            record = sync_record(name, target.deployments)
            await fetch(conn, rng, "PUT", f"/records/{name}.json",
                        {"Authorization": f"Basic {auth}", "Content-Type": "application/json"},
                        record, ok=(200, 201, 204))
        stats.cycles_ok += 1
        stats.cycle_bytes["changed" if inrelease.status == 200 else "unchanged"].append(conn.bytes)
    except RequestError as exc:
        stats.error(exc.kind)
    finally:
        await conn.close()


def sync_record(host: str, deployments) -> bytes:
    """A sync record as the pull role uploads it (the fields of rollout.SYNC_RECORD_SCHEMA)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    return json.dumps({
        "host": host, "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"), "date": now.strftime("%Y-%m-%d"),
        "status": "ok", "server": "", "message": "", "check_mode": False, "attributes": ["all"],
        "planned": list(deployments), "halted": [], "deployments": list(deployments), "new_deployments": [],
        "failed_deployments": [], "sources_written": [], "sources_removed": [], "removed": [],
        "installed": [], "upgraded": [], "failed_packages": [],
    }).encode() + b"\n"


async def pull_repository(conn: Connection, rng: random.Random, repo: str) -> None:
    """What a dumb-HTTP git fetch reads first: info/refs, then the object of its first ref
    (loose, or the index of the pack that holds it)."""
    refs = await fetch(conn, rng, "GET", f"{repo}/info/refs")
    first = refs.body.decode("ascii", "replace").split("\t", 1)[0].strip()
    if not re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", first):
        raise RequestError("bad info/refs", repo)
    loose = await fetch(conn, rng, "GET", f"{repo}/objects/{first[:2]}/{first[2:]}", ok=(200, 404))
    if loose.status == 404:
        packs = await fetch(conn, rng, "GET", f"{repo}/objects/info/packs")
        names = re.findall(r"^P (pack-[0-9a-f]+\.pack)$", packs.body.decode("ascii", "replace"), re.M)
        if not names:
            raise RequestError("object not found", f"{repo} {first}")
        await fetch(conn, rng, "GET", f"{repo}/objects/pack/{names[0][:-5]}.idx")


async def run(target: Target, clients: int, spread: float, deadline: float, changed_share: float = 0.5,
              timeout: float = 30.0, seed: int = 16, prefix: str = "sim") -> tuple:
    """CLIENTS cycles started uniformly over SPREAD seconds, all ended by DEADLINE seconds.

    Returns (Stats, wall seconds)."""
    stats = Stats()
    rng = random.Random(seed)
    starts = sorted(rng.uniform(0, spread) for _client in range(clients))
    width = len(str(clients))

    async def one(number: int, at: float) -> None:
        await asyncio.sleep(at)
        await pull_cycle(f"{prefix}{number:0{width}d}", target, stats, rng.random() < changed_share,
                         seed * 100003 + number, timeout)

    t0 = time.monotonic()
    tasks = [asyncio.ensure_future(one(n, at)) for n, at in enumerate(starts)]
    _done, pending = await asyncio.wait(tasks, timeout=deadline)
    for task in pending:
        task.cancel()
        stats.error("deadline")
    await asyncio.gather(*pending, return_exceptions=True)
    return stats, time.monotonic() - t0


def percentile(values: list, share: float) -> float:
    """The SHARE (0..1) percentile of VALUES, nearest rank; nan when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered), max(1, math.ceil(share * len(ordered)))) - 1]
