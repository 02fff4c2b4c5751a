"""Pull mode engines: the pull repository (pull_repo.py), the record ingest (pull_ingest.py)
and the host's retry wrapper (roles/pull/files/mo_fleet_pull.py). Commands are recorded."""

import base64
import hashlib
import importlib.util
import io
import json
import os
import random
import tarfile
import urllib.error
from pathlib import Path

import pytest
import yaml

from ansible_collections.mo.fleet.plugins.module_utils._common import layout
from ansible_collections.mo.fleet.plugins.module_utils._release import pull_ingest
from ansible_collections.mo.fleet.plugins.module_utils._repo import collection_archive, pull_repo
from ansible_collections.mo.fleet.plugins.module_utils._release.rollout import RolloutError, halt_decisions, read_state

ROOT = Path(__file__).resolve().parents[2]
CATALOG = {
    "project": {"name": "demo", "architectures": ["amd64"]},
    "halt_after_failures": 0,
    "stores": [{"name": "main"}],
    "deployments": [
        {"name": "tools", "start_date": "2026-12-01", "store": "main", "packages": ["mo-tool_1.0_all.deb"],
         "packages_to_install": ["mo-tool"], "included_attributes": ["pull_hosts"],
         "comment": "{{ lookup('pipe', 'id') }}"},
    ],
}
SECRETS = {"web1": "a" * 43, "web2": "b" * 43}


def _wrapper():
    spec = importlib.util.spec_from_file_location("mo_fleet_pull", ROOT / "roles/pull/files/mo_fleet_pull.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _collection_tar(path, extra=()):
    with tarfile.open(path, "w:gz") as tar:
        for name, data in [("MANIFEST.json", b"{}"), ("playbooks/pull_site.yml", b"---\n[]\n"), *extra]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return str(path)


class RecordedGit:
    """Stands in for run_command: records every argv, answers as git and gpg did on a lab server."""

    def __init__(self, diff_rc=1, head=True):
        self.calls, self.diff_rc, self.head = [], diff_rc, head

    def __call__(self, argv, env):
        self.calls.append((argv, env))
        if argv[0] == "gpg":
            return 0, "sec:u:255:22:AAAA:1:::u:::scESC:::+:::ed25519:::0:\nfpr:::::::::0123456789ABCDEF0123456789ABCDEF01234567:\n", ""
        if "rev-parse" in argv and "-q" in argv:
            return (0 if self.head else 1), "", ""
        if "diff" in argv:
            return self.diff_rc, "", ""
        if "rev-parse" in argv:
            return 0, "f" * 40 + "\n", ""
        return 0, "", ""


@pytest.fixture
def server(tmp_path):
    paths = layout.pull_paths(str(tmp_path / "pull"))
    os.makedirs(paths["state"])
    pull_repo.ensure_secrets(paths["secrets"], ["web1", "web2"], token=lambda n: SECRETS["web1"])
    inventory = {"web1": {"groups": ["pull_hosts", "web"], "attributes": ["CTX-A"]},
                 "web2": {"groups": ["pull_hosts"]}, "push1": {"groups": ["web"]}, "repo1": {"groups": ["repo_server"]}}
    settings = {"server_url": "http://repo1", "today": "2026-12-02", "pull_hosts": ["web1", "web2"]}
    pull_repo.write_source(paths, CATALOG, inventory, settings, _collection_tar(tmp_path / "c.tar.gz"))
    return paths


def test_htpasswd_lines_are_nginx_ssha_of_the_secret(tmp_path):
    secrets = str(tmp_path / "s")
    made = pull_repo.ensure_secrets(secrets, ["web1", "web2"], token=lambda n: SECRETS["web1"])
    assert made == ["web1", "web2"] and oct(os.stat(os.path.join(secrets, "web1")).st_mode & 0o777) == "0o600"
    assert pull_repo.ensure_secrets(secrets, ["web1"]) == []  # kept
    text = pull_repo.htpasswd_text(secrets, ["web2", "web1"], salt=lambda h: b"12345678")
    user, value = text.splitlines()[0].split(":", 1)
    raw = base64.b64decode(value[len("{SSHA}"):])
    assert user == "web1" and raw[20:] == b"12345678"
    assert raw[:20] == hashlib.sha1(SECRETS["web1"].encode() + b"12345678").digest()
    assert pull_repo.htpasswd_text(secrets, ["web1"]) == pull_repo.htpasswd_text(secrets, ["web1"])  # stable


def test_a_host_name_that_could_escape_is_refused(tmp_path):
    with pytest.raises(ValueError, match="pull host '../x'"):
        pull_repo.ensure_secrets(str(tmp_path / "s"), ["../x"])
    with pytest.raises(ValueError, match="field 'inventory': host 'web1': group"):
        pull_repo.check_inventory({"web1": {"groups": ["a\nb"]}})


def test_collection_archive_members_are_checked(tmp_path):
    paths = layout.pull_paths(str(tmp_path / "pull"))
    settings = {"server_url": "http://repo1", "pull_hosts": []}
    bad = _collection_tar(tmp_path / "bad.tar.gz", [("../evil", b"x")])
    with pytest.raises(pull_repo.PullError, match="'..' component"):
        pull_repo.write_source(paths, CATALOG, {}, settings, bad)
    assert not os.path.exists(paths["collection"])
    link = tmp_path / "link.tar.gz"
    with tarfile.open(link, "w:gz") as tar:
        info = tarfile.TarInfo("plugins")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc"
        tar.addfile(info)
    with pytest.raises(pull_repo.PullError, match="not a plain file or directory"):
        pull_repo.write_source(paths, CATALOG, {}, settings, str(link))


def test_the_tree_keeps_data_inert_and_lists_every_host(server):
    catalog, inventory, settings = pull_repo.load_source(server)
    files = pull_repo.tree_files(catalog, inventory, settings, {"version": 1, "halted": {}}, "/r")
    text = files["group_vars/all.yml"]
    assert "mo_fleet_catalog: !unsafe\n" in text and "comment: \"{{ lookup('pipe', 'id') }}\"" in text
    inv = json.loads(files["inventory.json"])["all"]
    assert sorted(inv["hosts"]) == ["push1", "repo1", "web1", "web2"]
    assert sorted(inv["children"]["pull_hosts"]["hosts"]) == ["web1", "web2"]
    assert "CTX-A" in files["host_vars/web1.yml"] and "host_vars/web2.yml" not in files


def test_build_commits_signed_only_when_the_tree_changed(server, tmp_path):
    git = RecordedGit(diff_rc=1)
    result = pull_repo.build(server, str(tmp_path / "state.json"), "/gnupg/demo", git, "/r")
    commit = [argv for argv, env in git.calls if "commit" in argv][0]
    assert "-S" in commit and "user.signingkey=0123456789ABCDEF0123456789ABCDEF01234567" in commit
    assert [env for argv, env in git.calls if "commit" in argv][0]["GNUPGHOME"] == "/gnupg/demo"
    assert git.calls[-2][0][-1] == "update-server-info" and result == {"changed": True, "commit": "f" * 40}
    assert os.path.isfile(os.path.join(server["work"], "site.yml"))
    same = RecordedGit(diff_rc=0)
    assert pull_repo.build(server, str(tmp_path / "state.json"), "/gnupg/demo", same, "/r")["changed"] is False
    assert not any("commit" in argv for argv, env in same.calls)


def _record(host, status="ok", failed=(), day="2026-12-02"):
    return {"host": host, "time": f"{day}T07:00:00Z", "date": day, "status": status, "message": "",
            "planned": ["tools"], "deployments": ["tools"], "failed_deployments": list(failed)}


def _upload(paths, host, record):
    os.makedirs(paths["incoming"], exist_ok=True)
    Path(paths["incoming"], f"{host}.json").write_text(json.dumps(record))


def test_ingest_halts_a_failing_deployment_and_rebuilds(server, tmp_path):
    state, status = str(tmp_path / "www/status/release-state.json"), str(tmp_path / "www/status")
    _upload(server, "web1", _record("web1", "error", ["tools"]))
    _upload(server, "web2", _record("web2"))
    git = RecordedGit()
    result = pull_ingest.ingest(server, state, status, "/g", git, now="2026-12-02T08:00:00Z")
    assert result["records"] == ["web1", "web2"] and result["halted_now"] == ["tools"]
    assert read_state(state)["halted"]["tools"]["hosts"] == ["web1"]
    assert json.loads(Path(server["work"], "release-state.json").read_text())["halted"]["tools"]["failed"] == 1
    assert 'data-halted' in Path(status, "index.html").read_text() and os.listdir(server["incoming"]) == []
    assert os.path.isfile(os.path.join(server["reports"], "sync", "web1.json"))


def test_ingest_refuses_a_record_naming_another_host(server, tmp_path):
    _upload(server, "web1", _record("web2", "error", ["tools"]))
    _upload(server, "push1", _record("push1", "error", ["tools"]))
    result = pull_ingest.ingest(server, str(tmp_path / "s.json"), str(tmp_path / "st"), "/g", RecordedGit())
    assert result["records"] == [] and result["halted_now"] == []
    assert any("field 'host' names 'web2'" in r for r in result["refused"])
    assert any("'push1' is not a pull host" in r for r in result["refused"])
    assert os.path.exists(os.path.join(server["incoming"], "web1.json.refused"))


def test_ingest_caps_what_a_record_makes_it_read(server, tmp_path):
    Path(server["incoming"]).mkdir(exist_ok=True)
    Path(server["incoming"], "web1.json").write_text(" " * (pull_ingest.MAX_RECORD + 1))
    with pytest.raises(RolloutError, match="larger than 256 KiB"):
        pull_ingest.read_incoming(os.path.join(server["incoming"], "web1.json"), "web1", {"web1"})


def test_wrapper_backoff_honours_retry_after_with_jitter():
    w = _wrapper()
    assert w.retry_after("7") == 7.0 and w.retry_after("junk") is None and w.retry_after(None) is None
    assert w.retry_after("Wed, 02 Dec 2026 05:00:10 GMT", now=1796187600.0) == 10.0
    assert w.backoff(1, 7.0, 2, 300, rand=lambda: 0.0) == 7.0
    assert w.backoff(3, None, 2, 300, rand=lambda: 1.0) == 12.0   # 2*2**2 + half of it
    assert w.backoff(20, None, 2, 300, rand=lambda: 0.0) == 300   # capped
    assert w.busy_status("fatal: unable to access: The requested URL returned error: 503") == 503
    assert w.busy_status("fatal: repository not found") is None


def test_wrapper_retries_a_busy_upload_then_succeeds(tmp_path):
    w = _wrapper()
    (tmp_path / "r.json").write_text("{}")
    (tmp_path / "secret").write_text("s3cret\n")
    config = {"host": "web1", "record": str(tmp_path / "r.json"), "secret_file": str(tmp_path / "secret"),
              "records_url": "http://repo1/records/web1.json", "attempts": 3, "backoff_base": 1}
    answers, seen, sleeps = [429, 503, 204], [], []

    class Answer:
        status = 204

        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

    def opener(request, timeout):
        seen.append(request)
        code = answers.pop(0)
        if code != 204:
            raise urllib.error.HTTPError(request.full_url, code, "busy", {"Retry-After": "4"}, None)
        return Answer()

    ok, status = w.with_retries(w.upload_step(config, opener), config, sleep=sleeps.append, log=lambda m: None)
    assert ok and status == 204 and len(seen) == 3 and all(4 <= s <= 6 for s in sleeps)
    assert seen[0].get_method() == "PUT"
    assert seen[0].headers["Authorization"] == "Basic " + base64.b64encode(b"web1:s3cret").decode()


def test_wrapper_pull_command_verifies_the_commit():
    w = _wrapper()
    argv = w.pull_command({"ansible_pull": "/v/bin/ansible-pull", "url": "http://repo1/pull/fleet.git",
                           "branch": "main", "checkout": "/c", "host": "web1"})
    assert "--verify-commit" in argv and "--full" in argv and argv[-1] == "site.yml"
    assert argv[argv.index("-l") + 1] == "web1"


SEQUENCES = yaml.safe_load((ROOT / "tests/unit/data/pull_halt_sequences.yaml").read_text())


def _sequence_catalog(threshold):
    deployments = [{"name": name, "start_date": "2026-12-01", "store": "main", "packages": [f"mo-{name}_1.0_all.deb"],
                    "included_attributes": ["pull_hosts"]} for name in ("risky", "tools")]
    return {"project": {"name": "demo"}, "halt_after_failures": threshold, "stores": [{"name": "main"}],
            "deployments": deployments}


def _sequence_records(case):
    out = []
    for host, time, status, failed in case["steps"]:
        record = dict(SEQUENCES["record"], host=host, time=time, date=SEQUENCES["date"], status=status,
                      failed_deployments=list(failed))
        if status == "error":
            record.update(message="sync failed", new_deployments=[], installed=[])
        out.append(record)
    return out


def _splits(count):
    """Ways the server may have received COUNT records: all in one ingest, one by one, cut anywhere once."""
    yield [count]
    yield [1] * count
    for cut in range(1, count):
        yield [cut, count - cut]


@pytest.mark.parametrize("case", SEQUENCES["cases"], ids=[c["id"] for c in SEQUENCES["cases"]])
def test_halts_are_decided_at_the_record_that_crosses_the_threshold(case):
    catalog, records = _sequence_catalog(case["threshold"]), _sequence_records(case)
    want = {name: {"failed": h["failed"], "total": h["total"], "hosts": h["hosts"], "threshold": case["threshold"],
                   "date": SEQUENCES["date"], "time": records[h["step"]]["time"], "record": records[h["step"]]["host"]}
            for name, h in case["halt"].items()}
    for sizes in _splits(len(records)):
        before, halted, start = {}, {}, 0
        for size in sizes:  # one ingest run per chunk, each seeing the last records of the runs before
            chunk = records[start:start + size]
            start += size
            for name, details in pull_ingest.halts_by_record(catalog, before, chunk, halted).items():
                assert name not in halted
                halted[name] = details
            before.update({r["host"]: r for r in chunk})
        assert halted == want, sizes


def test_halts_count_only_the_records_own_day_and_no_check_mode_runs():
    catalog = _sequence_catalog(40)
    case = SEQUENCES["cases"][0]
    yesterday = [dict(r, date="2026-12-04", time=r["time"].replace("12-07", "12-04")) for r in _sequence_records(case)]
    failing = _sequence_records({"steps": [["x", "2026-12-07T09:00:00Z", "error", ["risky"]]]})[0]
    before = {"a": dict(yesterday[0], status="ok"), "b": yesterday[1]}  # b failed on another day
    got = pull_ingest.halts_by_record(catalog, before, [failing], {})
    assert got["risky"]["total"] == 1 and got["risky"]["hosts"] == ["x"]  # only today's hosts
    assert pull_ingest.halts_by_record(catalog, {}, [dict(failing, check_mode=True)], {}) == {}
    assert pull_ingest.halts_by_record(catalog, {}, [failing], {"risky": {}}) == {}  # already halted


def _naive_halts(catalog, before, arrivals, halted):
    """The rule read literally: after each failing record, count the day's latest records afresh."""
    out, days = {}, {}
    for record in sorted(arrivals, key=lambda r: (r["time"], r["host"])):
        if record.get("check_mode") in (True, "yes"):
            continue
        day = record["date"]
        if day not in days:
            days[day] = {h: r for h, r in before.items() if r.get("date") == day and r.get("check_mode") not in (True, "yes")}
        days[day][record["host"]] = record
        if record["status"] == "error":
            for name, details in halt_decisions(catalog, days[day], halted=set(halted) | set(out)).items():
                out[name] = dict(details, date=day, time=record["time"], record=record["host"])
    return out


def _random_record(rng, day, second):
    names = ["risky", "tools", "ghost"]  # ghost: a deployment the catalog does not have
    have = rng.sample(names, rng.randint(0, 3))
    status = rng.choice(["ok", "ok", "error"])
    failed = rng.sample(names, rng.randint(0, 2)) if status == "error" else []
    record = dict(SEQUENCES["record"], host=rng.choice("abcdefg"), date=day, status=status, planned=have,
                  deployments=rng.sample(have, len(have) // 2), failed_deployments=failed,
                  time=f"{day}T07:{second // 60:02d}:{second % 60:02d}Z", check_mode=rng.choice([False] * 8 + [True, "yes"]))
    if rng.random() < 0.05:
        record["failed_deployments"] = [["risky"]]  # not a sync record: both readings refuse it
    return record


def _outcome(fn, *args):
    try:
        return fn(*args)
    except RolloutError as exc:
        return ("refused", str(exc))


@pytest.mark.parametrize("seed", range(8))
def test_halts_by_record_decides_as_the_naive_reading_on_random_sequences(seed):
    """Running counts against a fresh count after each failing record: the same halts, counts,
    times and refusals, whether a host's later record drops a deployment, blames one it does not
    have or none, comes from an earlier run (BEFORE) or another day."""
    rng, outcomes = random.Random(seed), []
    for _case in range(60):
        catalog = _sequence_catalog(rng.choice([0, 20, 34, 50, 75]))
        days = ["2026-12-06", "2026-12-07"]
        before = {}
        for _ in range(rng.randint(0, 5)):
            record = _random_record(rng, rng.choice(days), rng.randrange(600))
            before[record["host"]] = record
        arrivals = [_random_record(rng, rng.choice(days), rng.randrange(600, 1200)) for _ in range(rng.randint(1, 30))]
        halted = rng.choice([(), ["tools"], {"risky": {}}])
        want = _outcome(_naive_halts, catalog, before, arrivals, halted)
        assert _outcome(pull_ingest.halts_by_record, catalog, before, arrivals, halted) == want
        outcomes.append("refused" if isinstance(want, tuple) else len(want))
    assert {"refused", 0} <= set(outcomes) and any(isinstance(n, int) and n > 0 for n in outcomes), outcomes


def test_halts_by_record_names_the_first_bad_record_in_the_days_order():
    catalog = _sequence_catalog(50)
    steps = [["a", "2026-12-07T07:00:00Z", "ok", []], ["x", "2026-12-07T07:00:10Z", "error", ["risky"]],
             ["b", "2026-12-07T07:00:20Z", "ok", []], ["a", "2026-12-07T07:00:30Z", "ok", []],
             ["c", "2026-12-07T07:00:40Z", "error", ["risky"]]]
    earlier, *arrivals = _sequence_records({"steps": steps})
    arrivals[1]["planned"] = arrivals[2]["planned"] = {"risky": 1}  # b's, then a's (a came first that day)
    want = _outcome(_naive_halts, catalog, {"a": earlier}, arrivals, ())
    assert want[0] == "refused" and "host 'a'" in want[1]
    assert _outcome(pull_ingest.halts_by_record, catalog, {"a": earlier}, arrivals, ()) == want


def test_ingest_takes_records_of_one_run_in_time_order(server, tmp_path):
    """The four records of the first sequence arrive before the ingest runs once: the failing
    second one halts, although the day's last records fail only one host in four."""
    case = SEQUENCES["cases"][0]
    inventory = {h: {"groups": ["pull_hosts"]} for h in "abcd"}
    settings = {"server_url": "http://repo1", "today": "2026-12-07", "pull_hosts": list("abcd")}
    pull_repo.write_source(server, _sequence_catalog(case["threshold"]), inventory, settings)
    for record in reversed(_sequence_records(case)):  # file names do not give the order
        _upload(server, record["host"], record)
    state = str(tmp_path / "www/status/release-state.json")
    result = pull_ingest.ingest(server, state, str(tmp_path / "www/status"), "/g", RecordedGit(), now="2026-12-07T08:00:00Z")
    assert result["halted_now"] == ["risky"]
    assert read_state(state)["halted"]["risky"] == {"failed": 1, "total": 2, "threshold": 40, "hosts": ["b"],
                                                   "date": "2026-12-07", "time": "2026-12-07T07:01:10Z", "record": "b"}


def _push(paths, name, records):
    os.makedirs(paths["pushed"], exist_ok=True)
    Path(paths["pushed"], name).write_text(json.dumps({"mode": "push", "records": records}))


def test_pushed_records_reach_the_status_page_and_halt_nothing(server, tmp_path):
    status = tmp_path / "www/status"
    _push(server, "20261202T070000000000Z-aaaa.json", {"push1": _record("push1", "error", ["tools"])})
    _upload(server, "web1", _record("web1"))
    result = pull_ingest.ingest(server, str(status / "release-state.json"), str(status), "/g", RecordedGit(),
                                now="2026-12-02T08:00:00Z")
    assert result["pushed"] == ["push1"] and result["records"] == ["web1"] and result["refused"] == []
    assert result["halted_now"] == []  # its rollout decided on it, batch by batch
    page = json.loads((status / "status.json").read_text())
    assert page["hosts"]["push1"]["date"] == "2026-12-02" and page["hosts"]["push1"]["status"] == "error"
    assert page["summary"] == {"ok": 1, "error": 1, "never": 2}  # web2 and repo1 never synced
    assert 'data-host="push1" data-status="error"' in (status / "index.html").read_text()
    assert os.listdir(server["pushed"]) == []
    assert os.path.isfile(os.path.join(server["reports"], "sync", "history", "push1", "2026-12-02T070000Z-2026-12-02.json"))


def test_pushed_records_are_checked_as_uploads_are(server, tmp_path):
    _push(server, "1.json", {"web1": _record("web1")})                      # a pull host's, not pushed
    _push(server, "2.json", {"ghost": _record("ghost")})                    # no such host
    _push(server, "3.json", {"push1": _record("repo1")})                    # names another host
    _push(server, "4.json", {"push1": dict(_record("push1"), status="maybe")})
    Path(server["pushed"], "5.json").write_text('{"records": {}}')           # not marked as pushed
    result = pull_ingest.ingest(server, str(tmp_path / "s.json"), str(tmp_path / "st"), "/g", RecordedGit())
    assert result["pushed"] == [] and len(result["refused"]) == 5
    said = "\n".join(result["refused"])
    assert "'web1' is a pull host" in said and "'ghost': is not a host of the inventory" in said
    assert "field 'host' names 'repo1'" in said and "field 'status'" in said and "'mode': 'push'" in said
    assert sorted(os.listdir(server["pushed"])) == [f"{n}.json.refused" for n in range(1, 6)]
    assert not os.path.exists(os.path.join(server["reports"], "sync", "push1.json"))


def test_a_bad_pushed_record_is_refused_alone(server, tmp_path):
    _push(server, "1.json", {"push1": _record("push1"), "web2": _record("web2"), "new9": _record("new9")})
    result = pull_ingest.ingest(server, str(tmp_path / "s.json"), str(tmp_path / "st"), "/g", RecordedGit())
    assert result["pushed"] == ["push1"] and len(result["refused"]) == 2
    kept = json.loads(Path(server["pushed"], "1.json.refused").read_text())
    assert sorted(kept["records"]) == ["new9", "web2"] and os.listdir(server["pushed"]) == ["1.json.refused"]


def test_the_service_runs_again_for_what_arrived_meanwhile(server, tmp_path):
    state = str(tmp_path / "release-state.json")
    assert pull_ingest.pending(server, state, {"halted": {}}) is False
    _upload(server, "web1", _record("web1"))
    assert pull_ingest.pending(server, state, {"halted": {}}) is True
    os.unlink(os.path.join(server["incoming"], "web1.json"))
    Path(state).write_text(json.dumps({"version": 1, "halted": {"tools": {"failed": 1}}}))
    assert pull_ingest.pending(server, state, {"halted": {}}) is True  # resume.yml or a rollout copied it


def _installed(root, files=None, names=None):
    """An installed collection tree as ansible-galaxy leaves it: MANIFEST.json, FILES.json, files."""
    files = files if files is not None else {"README.md": b"hello\n", "playbooks/pull_site.yml": b"---\n[]\n"}
    entries = [{"name": ".", "ftype": "dir", "chksum_type": None, "chksum_sha256": None, "format": 1}]
    for name in sorted({str(Path(n).parent) for n in files} - {"."}):
        entries.append({"name": name, "ftype": "dir", "chksum_type": None, "chksum_sha256": None, "format": 1})
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
        entries.append({"name": name, "ftype": "file", "chksum_type": "sha256",
                        "chksum_sha256": hashlib.sha256(data).hexdigest(), "format": 1})
    for entry, name in zip(entries[1:], names or []):
        entry["name"] = name
    files_json = json.dumps({"files": entries, "format": 1}, indent=True).encode()
    (root / "FILES.json").write_bytes(files_json)
    (root / "MANIFEST.json").write_text(json.dumps({
        "collection_info": {"namespace": "mo", "name": "fleet", "version": "0.1.0"},
        "file_manifest_file": {"name": "FILES.json", "ftype": "file", "chksum_type": "sha256",
                               "chksum_sha256": hashlib.sha256(files_json).hexdigest(), "format": 1}, "format": 1}))
    return root


def test_an_installed_collection_is_packed_as_it_was_installed(tmp_path):
    root = _installed(tmp_path / "fleet")
    (root / "playbooks/__pycache__").mkdir()
    (root / "playbooks/__pycache__/x.pyc").write_bytes(b"\0")  # Python's, not the install's
    assert collection_archive.kind(str(root)) == "installed"
    packed = collection_archive.pack_installed(str(root), str(tmp_path / "out"))
    assert packed["path"].endswith("/mo-fleet-0.1.0.tar.gz") and packed["changed"] is True
    with tarfile.open(packed["path"]) as tar:
        assert tar.getnames() == ["MANIFEST.json", "FILES.json", "playbooks", "README.md", "playbooks/pull_site.yml"]
        assert {m.uid for m in tar} == {0} and tar.getmember("playbooks").mode == 0o755
    assert collection_archive.files_checksum(packed["path"]) == packed["files_sha256"]
    again = collection_archive.pack_installed(str(root), str(tmp_path / "out"))
    assert again["changed"] is False


@pytest.mark.parametrize("spoil, said", [
    (lambda r: (r / "README.md").write_text("changed\n"), "'README.md': its content differs from the sha256"),
    (lambda r: (r / "README.md").unlink(), "'README.md': is listed in FILES.json but missing"),
    (lambda r: ((r / "README.md").unlink(), (r / "README.md").symlink_to("/etc/passwd")), "is a symbolic link"),
    (lambda r: (r / "FILES.json").write_text('{"files": []}'), "FILES.json differs from the sha256 MANIFEST.json"),
])
def test_an_installed_collection_that_is_not_what_was_installed_is_refused(tmp_path, spoil, said):
    root = _installed(tmp_path / "fleet")
    spoil(root)
    with pytest.raises(collection_archive.ArchiveError, match=said):
        collection_archive.pack_installed(str(root), str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_an_installed_collection_naming_a_path_outside_is_refused(tmp_path):
    root = _installed(tmp_path / "fleet", names=["../outside"])
    with pytest.raises(collection_archive.ArchiveError, match="'..' component"):
        collection_archive.pack_installed(str(root), str(tmp_path / "out"))
    with pytest.raises(collection_archive.ArchiveError, match="neither galaxy.yml"):
        collection_archive.kind(str(tmp_path))
