"""Pull mode engines: the pull repository (pull_repo.py), the record ingest (pull_ingest.py)
and the host's retry wrapper (roles/pull/files/mo_fleet_pull.py). Commands are recorded."""

import base64
import hashlib
import importlib.util
import io
import json
import os
import tarfile
import urllib.error
from pathlib import Path

import pytest

from ansible_collections.mo.fleet.plugins.module_utils._common import layout
from ansible_collections.mo.fleet.plugins.module_utils._release import pull_ingest
from ansible_collections.mo.fleet.plugins.module_utils._repo import pull_repo
from ansible_collections.mo.fleet.plugins.module_utils._release.rollout import RolloutError, read_state

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
