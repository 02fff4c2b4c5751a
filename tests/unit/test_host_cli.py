"""The host CLI's pure parts: arguments, configuration, interception rule, hook records,
apt history, attribution, the baseline and the drift capture against it (temp trees)."""

import hashlib
import json
import os
import shutil
import subprocess
import tempfile

import pytest

from ansible_collections.mo.fleet.plugins.module_utils._capture import capture as cap
from ansible_collections.mo.fleet.plugins.module_utils._capture import confdiff
from ansible_collections.mo.fleet.plugins.module_utils._capture import drift
from ansible_collections.mo.fleet.plugins.module_utils._capture import host_cli
from ansible_collections.mo.fleet.plugins.module_utils._capture import host_config as hc
from ansible_collections.mo.fleet.plugins.module_utils._capture import pkg_hook
from ansible_collections.mo.fleet.plugins.module_utils._template import template as tpl
from ansible_collections.mo.fleet.plugins.module_utils._capture.capture_index import Store


# --------------------------------------------------------------------------- configuration

def test_missing_config_gives_the_defaults(tmp_path):
    config = hc.load_config(str(tmp_path / "absent.yaml"))
    assert config["intercepted_commands"] == ["apt-get", "apt", "dpkg", "make", "pip", "pip3"]
    assert config["snapshots"] == {"max_count": 50, "auto_cleanup": True}
    assert config["logging"]["max_bytes"] == 10 * 1024 * 1024


def test_seed_config_is_read_and_overrides_defaults(tmp_path):
    path = tmp_path / "capture.yaml"
    path.write_text(json.dumps({"version": "2.1", "system": "Devuan13-LXC", "capture_directories": ["/usr/local", "/etc"],
                                "ignore_patterns": ["*.log", "/tmp/*", "cache"], "intercepted_commands": ["apt-get"],
                                "logging": {"level": "debug", "file": "/var/log/x.log", "max_size": "2MB"},
                                "snapshots": {"max_count": 3}}))
    config = hc.load_config(str(path))
    assert config["capture_directories"] == ["/usr/local", "/etc"]
    assert config["logging"]["level"] == "DEBUG" and config["logging"]["max_bytes"] == 2 * 1024 * 1024
    assert config["snapshots"] == {"max_count": 3, "auto_cleanup": True}
    assert hc.exclude_list(config) == ["/*.log", "/tmp/*", "/*/cache"]


@pytest.mark.parametrize("data, field", [
    ({"intercepted_commands": ["rm"]}, "intercepted_commands"),
    ({"snapshots": {"max_count": 0}}, "snapshots.max_count"),
    ({"snapshots": {"auto_cleanup": "yes"}}, "snapshots.auto_cleanup"),
    ({"snapshots": {"keep": 1}}, "snapshots.keep"),
    ({"logging": {"max_size": "ten"}}, "logging.max_size"),
    ({"logging": {"level": "LOUD"}}, "logging.level"),
    ({"capture_directories": ["relative"]}, "capture_directories"),
    ({"ignore_patterns": ["a\nb"]}, "ignore_patterns"),
    ({"colour": True}, "colour"),
    (["not", "a", "mapping"], "mapping"),
])
def test_bad_config_is_one_sentence_naming_the_field(tmp_path, data, field):
    path = tmp_path / "capture.yaml"
    path.write_text(json.dumps(data))
    with pytest.raises(hc.ConfigError) as err:
        hc.load_config(str(path))
    assert field in str(err.value) and "\n" not in str(err.value)


def test_oversized_config_is_refused_before_parsing(tmp_path):
    path = tmp_path / "capture.yaml"
    path.write_bytes(b" " * (hc.MAX_CONFIG_BYTES + 1))
    with pytest.raises(hc.ConfigError, match="larger than"):
        hc.load_config(str(path))


# --------------------------------------------------------------------------- interception rule

@pytest.mark.parametrize("argv, change", [
    (["apt-get", "install", "-y", "nginx"], True),
    (["apt-get", "-o", "Debug::x=1", "install", "nginx"], True),
    (["apt-get", "-o", "install", "update"], False),
    (["apt", "full-upgrade"], True),
    (["apt-get", "update"], False),
    (["apt-get", "--help"], False),
    (["apt-get", "install", "-s", "nginx"], False),
    (["apt-get", "install", "--download-only", "nginx"], False),
    (["apt", "search", "nginx"], False),
    (["/usr/bin/apt-get", "remove", "nginx"], True),
    (["dpkg", "-i", "x.deb"], True),
    (["dpkg", "--purge", "x"], True),
    (["dpkg", "-l"], False),
    (["dpkg", "-i", "--dry-run", "x.deb"], False),
    (["make"], False),
    (["make", "-j4", "all"], False),
    (["make", "install"], True),
    (["make", "-C", "install", "all"], False),
    (["make", "PREFIX=/opt", "install-strip"], True),
    (["make", "-n", "install"], False),
    (["pip", "install", "requests"], True),
    (["pip3", "--proxy", "install", "list"], False),
    (["pip3", "uninstall", "-y", "requests"], True),
    (["pip", "list"], False),
    (["pip", "install", "--help"], False),
    (["rm", "-rf", "/"], False),
    ([], False),
])
def test_what_counts_as_a_change(argv, change):
    assert hc.is_change(argv) is change


def test_default_name_is_a_plain_unique_file_name_part():
    import datetime
    when = datetime.datetime(2026, 12, 2, 1, 2, 3, tzinfo=datetime.timezone.utc)
    name = host_cli.default_name(["apt-get", "install", "-y", "nginx", "x;rm"], when)
    assert name == "apt-get-install-nginx-20261202T010203"
    assert host_cli.default_name(["make", "PREFIX=/x", "install"], when) == "make-install-20261202T010203"
    assert host_cli.default_name(["../..", "$(id)"], when).startswith("_id_") is False
    from ansible_collections.mo.fleet.plugins.module_utils._common import names
    assert names.is_valid("file_part", host_cli.default_name(["../..", "$(id)\n"], when))


def test_cli_arguments(capsys, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(json.dumps({"logging": {"file": str(tmp_path / "log/capture.log")}}))
    assert host_cli.main_capture(["--config", str(config), "version"]) == 0
    assert "template version %s" % tpl.TEMPLATE_VERSION in capsys.readouterr().out
    assert host_cli.main_capture([]) == 2
    assert "mo-capture [--name NAME]" in capsys.readouterr().err
    assert host_cli.main_capture(["--colour", "status"]) == 2
    assert "--colour is not an option" in capsys.readouterr().err
    assert host_cli.main_capture(["--name"]) == 2
    assert "--name needs a value" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text('{"trace": "loud"}')
    assert host_cli.main_capture(["--config", str(bad), "version"]) == 1
    assert capsys.readouterr().err.startswith("mo-capture: trace must be")
    assert host_cli.main_install(["--frobnicate", "x"]) == 2
    assert not (tmp_path / "log").exists()  # version only checks the file: it writes no log
    config.write_text(json.dumps({"logging": {"file": str(tmp_path / "log/capture.log")},
                                  "capture_directory": str(tmp_path / "store")}))
    assert host_cli.main_capture(["--config", str(config), "status"]) == 0
    assert (tmp_path / "log/capture.log").is_file()  # the log went where the configuration said


@pytest.mark.parametrize("mode, owner", [(0o666, 0), (0o644, 1000), (0o620, 0)])
def test_config_others_could_write_is_refused_except_for_version(tmp_path, capsys, mode, owner):
    """A narrow sudo rule (sudo mo-capture status) must not let a user point the store and the
    log anywhere: --config names a file of root's that only root can write, or it is refused
    before it is read; version (the role's validate:) accepts any file and writes no log."""
    config = tmp_path / "c.yaml"
    config.write_text(json.dumps({"logging": {"file": str(tmp_path / "log/x.log")}, "capture_directory": str(tmp_path / "s")}))
    os.chmod(config, mode)
    os.chown(config, owner, 0)
    assert host_cli.main_capture(["--config", str(config), "status"]) == 2
    assert capsys.readouterr().err == (f"mo-capture: --config {config} must be a regular file owned by root that only "
                                       "root can write (any file is accepted with version).\n")
    assert host_cli.main_capture(["--config", str(config), "version"]) == 0
    assert not (tmp_path / "log").exists() and not (tmp_path / "s").exists()


def test_the_index_is_roots_only_and_so_are_the_listings(tmp_path, capsys, monkeypatch):
    """The index holds every captured command line (tokens in URLs, dpkg requesters): 0600,
    also when an older index was readable, and listing it needs root."""
    store = Store(str(tmp_path / "store"))
    store.ensure()
    assert os.stat(store.db_path).st_mode & 0o777 == 0o600
    os.chmod(store.db_path, 0o644)
    store.ensure()
    assert os.stat(store.db_path).st_mode & 0o777 == 0o600
    config = tmp_path / "c.yaml"
    config.write_text(json.dumps({"capture_directory": store.root, "logging": {"file": str(tmp_path / "log")}}))
    monkeypatch.setattr(host_cli.os, "geteuid", lambda: 1000)
    for word in ("status", "list-templates", "list-snapshots"):
        assert host_cli.main_capture(["--config", str(config), word]) == 2
        assert capsys.readouterr().err == f"mo-capture: mo-capture {word} must run as root.\n"
    assert host_cli.main_capture(["--config", str(config), "version"]) == 0


def _intercepting(tmp_path, monkeypatch, fail_after_start):
    config = hc.merge({"capture_directory": str(tmp_path / "store")})
    ran = []

    def capture(options, store):
        if fail_after_start:
            options["on_start"]()
        raise cap.CaptureError("The configured root /srv/gone does not exist.")

    def execvp(program, argv):
        ran.append(argv)
        raise SystemExit(0)
    monkeypatch.setattr(cap, "capture", capture)
    monkeypatch.setattr(host_cli.os, "execvp", execvp)
    monkeypatch.setattr(host_cli.os, "geteuid", lambda: 0)
    monkeypatch.delenv("MO_FLEET_CAPTURE", raising=False)
    return config, ran


def test_a_capture_that_cannot_start_steps_aside_and_the_command_runs_as_typed(tmp_path, capsys, monkeypatch):
    config, ran = _intercepting(tmp_path, monkeypatch, fail_after_start=False)
    with pytest.raises(SystemExit):
        host_cli.intercept(config, ["apt-get", "install", "-y", "hello"])
    assert ran == [["apt-get", "install", "-y", "hello"]]
    assert capsys.readouterr().err == ("mo-capture: The configured root /srv/gone does not exist. apt-get runs "
                                       "without a capture.\n")


def test_a_capture_that_fails_after_the_command_ran_never_runs_it_twice(tmp_path, monkeypatch):
    config, ran = _intercepting(tmp_path, monkeypatch, fail_after_start=True)
    with pytest.raises(cap.CaptureError):
        host_cli.intercept(config, ["apt-get", "install", "-y", "hello"])
    assert ran == []


def test_an_invalid_config_steps_aside_for_an_intercepted_command(tmp_path, capsys, monkeypatch):
    bad = tmp_path / "bad.yaml"
    bad.write_text('{"trace": "loud"}')
    monkeypatch.setattr(hc, "CONFIG_PATH", str(bad))
    monkeypatch.setattr(host_cli.hc, "CONFIG_PATH", str(bad))
    ran = []
    monkeypatch.setattr(host_cli.os, "execvp", lambda p, a: ran.append(a) or (_ for _ in ()).throw(SystemExit(0)))
    with pytest.raises(SystemExit):
        host_cli.main_capture(["--intercept", "apt-get", "install", "-y", "hello"])
    assert ran == [["apt-get", "install", "-y", "hello"]]
    err = capsys.readouterr().err
    assert err.startswith("mo-capture: trace must be") and err.endswith(" apt-get runs without a capture.\n")


def test_options_split_stops_at_the_command():
    opts, rest = host_cli._split_options(["--name", "n", "--trace", "none", "make", "--name", "install"])
    assert opts["name"] == "n" and opts["trace"] == "none" and rest == ["make", "--name", "install"]
    opts, rest = host_cli._split_options(["--intercept", "apt-get", "--help"])
    assert opts["intercept"] and rest == ["apt-get", "--help"]


# --------------------------------------------------------------------------- dpkg hook records

CHAIN = [("sh", "sh -c 'mo-capture hook post'"), ("dpkg", "dpkg -i /src/x.deb"),
         ("bash", "bash ./install-x.sh"), ("bash", "-bash"), ("sshd", "sshd: root@pts/0")]
APT_CHAIN = [("sh", "sh -c x"), ("dpkg", "/usr/bin/dpkg --status-fd 23 --configure"),
             ("apt-get", "apt-get install -y hello"), ("python3", "python3 /usr/local/bin/mo-capture --intercept"),
             ("bash", "-bash")]


def test_requester_is_the_outermost_package_tool_and_its_parent():
    assert pkg_hook.requester(CHAIN) == ("dpkg -i /src/x.deb", "bash ./install-x.sh")
    assert pkg_hook.requester(APT_CHAIN) == ("apt-get install -y hello", "-bash")
    assert pkg_hook.requester([("cron", "cron -f")]) == ("cron -f", None)


def test_attribution_stops_at_sudo_and_at_processes_a_user_owns():
    """A user's script named apt (argv "apt install harmless") runs sudo apt-get install other:
    the walk stops at sudo, so the record says apt-get install other, and the sudo process is
    only the parent; a user-owned process is a boundary as well, whatever its comm."""
    forged = [("sh", "sh -c x", ["sh", "-c", "x"], 0), ("dpkg", "dpkg --configure", ["dpkg", "--configure"], 0),
              ("apt-get", "apt-get install other", ["apt-get", "install", "other"], 0),
              ("sudo", "sudo apt-get install other", ["sudo", "apt-get", "install", "other"], 0),
              ("apt", "apt install harmless", ["apt", "install", "harmless"], 1000)]
    assert pkg_hook.requester(forged) == ("apt-get install other", "sudo apt-get install other")
    assert pkg_hook.requester_argv(forged) == ["apt-get", "install", "other"]
    user_owned = [("dpkg", "dpkg -i x.deb", ["dpkg", "-i", "x.deb"], 0), ("apt", "apt install harmless", [], 1000),
                  ("apt", "apt install decoy", [], 0)]
    assert pkg_hook.requester(user_owned) == ("dpkg -i x.deb", "apt install harmless")


def test_the_walk_up_from_this_process_stops_at_the_first_boundary():
    chain = pkg_hook.parents(os.getpid())
    assert chain and all(len(item) == 4 for item in chain)
    assert all(not pkg_hook._boundary(item) for item in chain[:-1])


def test_a_long_requester_command_keeps_its_words_and_its_template(tmp_path, monkeypatch):
    """A cut inside a quoted word used to make the template's shlex.split fail: the words are
    kept as words, capped, and the packages-only template is still written."""
    raw = b"\0".join([b"apt-get", b"install", b"-y"] + [b"pkg%d=1.2~rc 'x" % i for i in range(900)])
    words = pkg_hook._words(raw)
    assert words[:3] == ["apt-get", "install", "-y"] and sum(len(w) + 1 for w in words) <= pkg_hook.MAX_COMMAND
    command = " ".join(__import__("shlex").quote(w) for w in words)[:pkg_hook.MAX_COMMAND]
    chain = [("apt-get", command, words, 0), ("bash", "-bash", ["-bash"], 0)]
    store = Store(str(tmp_path / "store"))
    store.ensure()
    monkeypatch.setattr(pkg_hook, "read_auto", lambda: set())
    record = pkg_hook.make_record(_pkgs(), _pkgs(("hello", "2.10-3", "amd64")), chain, {}, now=0)
    template_id = pkg_hook.write_template(store, record, _pkgs(("hello", "2.10-3", "amd64")))
    doc = tpl.load_file(os.path.join(store.templates, template_id))
    assert doc["MO_template"]["command"] == "apt-get" and doc["metadata"]["requested_by"]["command"] == command
    assert record["argv"] == words


def _pkgs(*items):
    return dict(((n, a), {"name": n, "version": v, "architecture": a, "status": "installed"}) for n, v, a in items)


def test_make_record_lists_the_package_changes_and_who():
    before = _pkgs(("old", "1", "all"), ("keep", "1", "amd64"), ("up", "1.0", "amd64"))
    after = _pkgs(("keep", "1", "amd64"), ("up", "1.1", "amd64"), ("new", "2", "all"))
    record = pkg_hook.make_record(before, after, CHAIN, {"SUDO_USER": "alice", "DPKG_HOOK_ACTION": "install"},
                                  now=0)
    assert record["packages"] == [
        {"name": "new", "architecture": "all", "version": "2", "change": "installed"},
        {"name": "up", "architecture": "amd64", "version": "1.1", "change": "upgraded", "version_before": "1.0"},
        {"name": "old", "architecture": "all", "version": "1", "change": "removed"}]
    assert record["user"] == "alice" and record["action"] == "install" and record["capture"] is None
    assert record["command"] == "dpkg -i /src/x.deb" and record["time"] == "1970-01-01T00:00:00+00:00"


def test_parse_records_skips_what_is_not_a_record():
    good = {"packages": [{"name": "x", "change": "installed", "version": "1"}], "command": "dpkg -i x.deb"}
    text = "\n".join([json.dumps(good), "not json", "[1, 2]", json.dumps({"packages": "x"}), "",
                      json.dumps({"packages": [1]}), "x" * (pkg_hook.MAX_RECORD_LINE + 1)])
    assert pkg_hook.parse_records(text) == [good]


def test_hook_pre_and_post_write_a_record_and_a_packages_only_template(tmp_path, monkeypatch):
    store = Store(str(tmp_path / "store"))
    states = [_pkgs(("keep", "1", "all")), _pkgs(("keep", "1", "all"), ("mo-demo", "1.2-3", "all"))]
    monkeypatch.setattr(pkg_hook, "read_packages", lambda: (states.pop(0), {}))
    monkeypatch.setattr(pkg_hook, "read_auto", lambda: set())
    monkeypatch.setattr(pkg_hook, "parents", lambda pid=None: CHAIN)
    pkg_hook.pre(store)
    record = pkg_hook.post(store, {"SUDO_USER": "alice"})
    assert [p["name"] for p in record["packages"]] == ["mo-demo"]
    assert pkg_hook.read_records(store)[0]["command"] == "dpkg -i /src/x.deb"
    (item,) = store.list_templates()
    doc = tpl.verify_bundle(item["path"])
    assert doc["operations"]["packages_installed"] == [
        {"name": "mo-demo", "version": "1.2-3", "architecture": "all", "status": "installed", "manual": True}]
    assert doc["metadata"]["origin"] == "dpkg-hook"
    assert doc["metadata"]["requested_by"] == {"command": "dpkg -i /src/x.deb", "parent": "bash ./install-x.sh",
                                               "user": "alice"}
    # no pending state (post without pre) records nothing
    assert pkg_hook.post(store, {}) is None


def test_hook_inside_a_capture_only_records(tmp_path, monkeypatch):
    store = Store(str(tmp_path / "store"))
    states = [_pkgs(), _pkgs(("hello", "2.10-3", "amd64"))]
    monkeypatch.setattr(pkg_hook, "read_packages", lambda: (states.pop(0), {}))
    monkeypatch.setattr(pkg_hook, "parents", lambda pid=None: APT_CHAIN)
    pkg_hook.pre(store)
    record = pkg_hook.post(store, {"MO_FLEET_CAPTURE": "20261202-x"})
    assert record["capture"] == "20261202-x" and "template" not in record
    assert store.list_templates() == []


# --------------------------------------------------------------------------- apt history

HISTORY = """
Start-Date: 2026-12-01  10:00:00
Commandline: apt-get install -y nginx
Requested-By: alice (1000)
Install: nginx:amd64 (1.22.1-9), nginx-common:amd64 (1.22.1-9, automatic)
Upgrade: libssl3:amd64 (3.0.11-1~deb12u1, 3.0.15-1~deb12u1)
End-Date: 2026-12-01  10:00:09

Start-Date: 2026-12-01  11:00:00
Commandline: apt-get purge -y nginx
Purge: nginx:amd64 (1.22.1-9)
End-Date: 2026-12-01  11:00:02
"""


def test_parse_history():
    entries = drift.parse_history(HISTORY)
    assert [e["commandline"] for e in entries] == ["apt-get install -y nginx", "apt-get purge -y nginx"]
    first = entries[0]
    assert first["requested_by"] == "alice (1000)"
    assert first["packages"] == [
        {"name": "nginx", "architecture": "amd64", "automatic": False, "change": "installed", "version": "1.22.1-9"},
        {"name": "nginx-common", "architecture": "amd64", "automatic": True, "change": "installed",
         "version": "1.22.1-9"},
        {"name": "libssl3", "architecture": "amd64", "automatic": False, "change": "upgraded",
         "version_before": "3.0.11-1~deb12u1", "version": "3.0.15-1~deb12u1"}]
    assert entries[1]["packages"][0]["change"] == "removed"


def test_attribute_prefers_hook_records_then_history():
    ops = {"packages_installed": [{"name": "nginx-common", "version": "1.22.1-9"},
                                  {"name": "mo-demo", "version": "1.2-3"}, {"name": "ghost", "version": "1"}],
           "packages_upgraded": [{"name": "libssl3", "version": "3.0.15-1~deb12u1"}],
           "packages_removed": [{"name": "nginx", "version": "1.22.1-9"}]}
    records = [{"packages": [{"name": "mo-demo", "version": "1.2-3", "change": "installed"}],
                "command": "dpkg -i /src/mo-demo_1.2-3_all.deb", "parent": "bash ./x.sh", "user": "root",
                "time": "t"}]
    got = {(a["package"], a["change"]): a for a in drift.attribute(ops, records, drift.parse_history(HISTORY))}
    assert got[("mo-demo", "installed")]["source"] == "dpkg-hook"
    assert got[("mo-demo", "installed")]["parent"] == "bash ./x.sh"
    assert got[("nginx-common", "installed")]["command"] == "apt-get install -y nginx"
    assert got[("libssl3", "upgraded")]["source"] == "apt-history"
    assert got[("nginx", "removed")]["command"] == "apt-get purge -y nginx"
    assert got[("ghost", "installed")]["source"] is None


# --------------------------------------------------------------------------- baseline and drift

@pytest.fixture
def area():
    base = tempfile.mkdtemp(prefix="mo-fleet-drift-", dir="/var/tmp")
    root = os.path.join(base, "root")
    os.makedirs(os.path.join(root, "etc"))
    with open(os.path.join(root, "etc/app.conf"), "w") as handle:
        handle.write("v=1\n")
    with open(os.path.join(root, "gone"), "w") as handle:
        handle.write("x\n")
    yield base, root
    shutil.rmtree(base, ignore_errors=True)


def test_baseline_roundtrip_and_damage(area):
    base, root = area
    store = Store(base + "/store")
    store.ensure()
    info = drift.take_baseline(store, [root], [])
    before, state, loaded = drift.load_baseline(store)
    assert loaded["entries"] == info["entries"] == 4 and before.entries[root + "/etc/app.conf"].size == 4
    assert state["packages"] == cap.snap.read_state()["packages"]
    with open(drift.baseline_path(store), "wb") as handle:
        handle.write(b"\x1f\x8bnot gzip")
    with pytest.raises(drift.DriftError, match="damaged"):
        drift.load_baseline(store)
    os.unlink(drift.baseline_path(store))
    with pytest.raises(drift.DriftError, match="no baseline"):
        drift.load_baseline(store)


def test_drift_capture_records_what_changed_since_the_baseline(area):
    base, root = area
    store = Store(base + "/store")
    store.ensure()
    drift.take_baseline(store, [root], [])
    with open(os.path.join(root, "etc/app.conf"), "a") as handle:
        handle.write("v=2\n")
    with open(os.path.join(root, "by-hand"), "w") as handle:
        handle.write("written by hand\n")
    os.unlink(os.path.join(root, "gone"))
    config = hc.merge({"capture_directory": store.root, "analyze_config": False})
    result = host_cli.drift_capture(config, "drifted")
    doc = result["template"]
    assert tpl.verify_bundle(result["bundle"]["path"]) == doc
    ops = doc["operations"]
    assert [e["path"] for e in ops["files_created"]] == [root + "/by-hand"]
    assert [e["path"] for e in ops["files_modified"]] == [root + "/etc/app.conf"]
    assert [e["path"] for e in ops["files_deleted"]] == [root + "/gone"]
    assert doc["metadata"]["origin"] == "drift" and doc["metadata"]["trace"]["used"] == "baseline"
    assert doc["metadata"]["package_sources"] == []
    assert doc["MO_template"]["command"] == "mo-capture" and doc["MO_template"]["arguments"] == "drift drifted"
    with open(os.path.join(result["bundle"]["path"], "files", root.lstrip("/"), "by-hand")) as handle:
        assert handle.read() == "written by hand\n"
    assert [t["name"] for t in store.list_templates()] == ["drifted"]


# --------------------------------------------------------------------------- conffile diffs

def test_unified_diff_and_its_caps():
    text = confdiff.unified("/etc/a.conf", b"a=1\nb=2\n", b"a=1\nb=3\n")
    assert "-b=2\n" in text and "+b=3\n" in text and text.startswith("--- /etc/a.conf (packaged)")
    with pytest.raises(confdiff.ConfDiffError, match="not UTF-8"):
        confdiff.unified("/etc/a.conf", b"\xff", b"a")
    with pytest.raises(confdiff.ConfDiffError, match="longer than"):
        confdiff.unified("/etc/a.conf", b"", b"x\n" * (confdiff.MAX_DIFF // 2 + 1))


def test_find_deb_refuses_hostile_names_and_reads_the_cache(tmp_path):
    with pytest.raises(confdiff.ConfDiffError, match="package"):
        confdiff.find_deb("../../etc", "1", "all", archives=str(tmp_path))
    (tmp_path / "nginx_1%3a1.22-9_amd64.deb").write_bytes(b"x")
    assert confdiff.find_deb("nginx", "1:1.22-9", "amd64", archives=str(tmp_path)) == (
        str(tmp_path / "nginx_1%3a1.22-9_amd64.deb"), "apt-cache")
    with pytest.raises(confdiff.ConfDiffError, match="not in apt's cache"):
        confdiff.find_deb("nginx", "2", "amd64", archives=str(tmp_path))


def test_analyze_reports_a_missing_package_as_an_error_item():
    ops = {"files_modified": [{"path": "/etc/x.conf", "conffile": True, "conffile_changed": True, "package": "x"},
                              {"path": "/etc/y.conf", "conffile": True, "conffile_changed": False, "package": "y"}]}
    out = confdiff.analyze(ops, {"packages": {}})["conffile_diffs"]
    assert out == [{"path": "/etc/x.conf", "package": "x", "version": None,
                    "error": "The package x is not installed."}]


def test_a_diff_with_an_escape_sequence_is_not_kept():
    with pytest.raises(confdiff.ConfDiffError, match=r"^/etc/a.conf holds control characters other than line "
                                                     r"breaks and tabs; it is not diffed\.$"):
        confdiff.unified("/etc/a.conf", b"a=1\n", b"a=\x1b]0;owned\x07\n")
    assert "+a=\t2\n" in confdiff.unified("/etc/a.conf", b"a=1\n", b"a=\t2\n")


def test_analyze_fetches_each_package_once_and_stops_downloading_at_its_deadline(monkeypatch, tmp_path):
    """Many changed conffiles of one package cost one download (a failure is kept too), and
    every download together has one deadline: root's shell is not held for minutes."""
    calls = []

    def find(name, version, arch, workdir=None, timeout=None):
        calls.append((name, timeout))
        raise confdiff.ConfDiffError(f"apt-get download of {name} {version} did not finish.")
    monkeypatch.setattr(confdiff, "find_deb", find)
    monkeypatch.setattr(confdiff, "APT_ARCHIVES", str(tmp_path))
    now = [0.0]
    debs = confdiff._Debs(deadline=100, clock=lambda: now[0])
    ops = {"files_modified": [{"path": f"/etc/{p}/{i}.conf", "conffile": True, "conffile_changed": True, "package": p}
                              for p in ("a", "b") for i in range(5)]}
    packages = {"packages": dict((p, {"name": p, "version": "1.0", "architecture": "all"}) for p in "abc")}
    original = debs.get

    def later(package):
        if package["name"] == "b":
            now[0] = 101.0
        return original(package)
    monkeypatch.setattr(debs, "get", later)
    out = confdiff.analyze(ops, packages, debs)["conffile_diffs"]
    assert calls == [("a", 100)]
    assert [i["error"] for i in out] == ["apt-get download of a 1.0 did not finish."] * 5 + [
        "b 1.0 was not downloaded: the analysis's 90 s for downloads ran out."] * 5


def _info_doc(**metadata):
    doc = tpl.build({"argv": ["apt-get", "install", "-y", "x"], "name": "x", "system": "debian 12 (x86_64)",
                     "timestamp": "2026-12-02T01:00:00+00:00"}, {}, {})
    doc["metadata"].update(metadata)
    return doc


@pytest.mark.parametrize("metadata, field", [
    ({"conffile_diffs": [{"path": "/etc/a", "diff": "+\x1b[2J\n"}]}, "metadata/conffile_diffs/0/diff"),
    ({"conffile_diffs": [{"package": "a"}]}, "metadata/conffile_diffs/0"),
    ({"conffile_diffs": ["x"]}, "metadata/conffile_diffs/0"),
    ({"package_sources": [{"package": "a", "change": "installed", "command": "apt\x1b[8m"}]},
     "metadata/package_sources/0/command"),
    ({"package_sources": [{"package": "a", "change": "owned"}]}, "metadata/package_sources/0/change"),
    ({"requested_by": {"user": "root", "shell": "x"}}, "metadata/requested_by"),
    ({"origin": "cli\nx"}, "metadata/origin"),
    ({"baseline": {"created": "x", "entries": -1}}, "metadata/baseline/entries"),
])
def test_what_hosts_add_to_the_metadata_is_checked_by_the_one_validator(metadata, field, tmp_path, capsys):
    """A bundle from elsewhere cannot carry escape sequences or odd shapes into mo-install --info:
    the validator refuses it in one sentence naming the field, and the CLI exits 1."""
    doc = _info_doc(**metadata)
    with pytest.raises(tpl.TemplateError) as err:
        tpl.loads(json.dumps(doc))
    assert field in str(err.value) and "\n" not in str(err.value)
    (tmp_path / "template.json").write_text(json.dumps(doc))
    assert host_cli.main_install(["--info", str(tmp_path)]) == 1
    out = capsys.readouterr()
    assert out.out == "" and out.err.startswith("mo-install: ") and out.err.count("\n") == 1


def test_info_shows_the_host_metadata_printably(tmp_path, capsys):
    doc = _info_doc(origin="intercepted", package_sources=[
        {"package": "nginx", "version": "1.22.1-9", "change": "installed", "source": "dpkg-hook",
         "command": "apt-get install -y nginx", "user": "mo", "parent": "-bash"}],
        conffile_diffs=[{"path": "/etc/nginx/nginx.conf", "package": "nginx", "version": "1.22.1-9",
                         "source": "apt-cache", "diff": "--- a\n+++ b\n-\tworker 1;\n+\tworker 2;\n"},
                        {"path": "/etc/x", "package": "x", "version": None, "error": "The package x is not installed."}])
    (tmp_path / "template.json").write_text(json.dumps(tpl.loads(json.dumps(doc))))
    assert host_cli.main_install(["--info", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "package installed nginx 1.22.1-9: apt-get install -y nginx (dpkg-hook, by mo)\n" in out
    assert "conffile /etc/nginx/nginx.conf changed from nginx 1.22.1-9 (apt-cache):\n  --- a\n  +++ b\n  -\tworker 1;\n" in out
    assert "conffile /etc/x: no diff: The package x is not installed.\n" in out


def test_the_capture_directory_setting_is_still_read_under_its_old_name_store(tmp_path):
    assert hc.merge({"store": str(tmp_path / "old")})["capture_directory"] == str(tmp_path / "old")
    assert hc.merge({"store": "/x", "capture_directory": "/x"})["capture_directory"] == "/x"
    with pytest.raises(hc.ConfigError) as caught:
        hc.merge({"store": "/x", "capture_directory": "/y"})
    assert str(caught.value) == ("capture_directory and its old name store are both set, to different values; "
                                 "keep capture_directory.")


def _deb_with(tmp_path, path, content, name="demo", version="1.0", arch="all"):
    """A real .deb of NAME VERSION ARCH shipping CONTENT at PATH, in a directory used as apt's cache."""
    root = tmp_path / "pkg"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(f"Package: {name}\nVersion: {version}\nArchitecture: {arch}\n"
                                             "Maintainer: t <t@example.org>\nDescription: t\n")
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True)
    target.write_bytes(content)
    cache = tmp_path / "archives"
    cache.mkdir()
    subprocess.run(["dpkg-deb", "--root-owner-group", "-b", str(root), str(cache / confdiff.deb_file_name(name, version, arch))],
                   check=True, capture_output=True)
    return cache


@pytest.mark.parametrize("recorded, diffed", [
    ("md5 of the packaged file", True),
    ("0123456789abcdef0123456789abcdef", False),   # a .deb that is not the one dpkg installed
    ("newconffile", True),                        # dpkg recorded nothing to compare with
    (None, True),
])
def test_the_packaged_default_must_be_the_one_dpkg_installed(monkeypatch, tmp_path, recorded, diffed):
    """A .deb in the cache under the installed version's name whose conffile is not the one
    dpkg recorded gives an error, never a diff against another file."""
    path = str(tmp_path / "etc" / "demo.conf")
    packaged = b"a=1\nb=2\n"
    monkeypatch.setattr(confdiff, "APT_ARCHIVES", str(_deb_with(tmp_path, path, packaged)))
    os.makedirs(os.path.dirname(path))
    with open(path, "wb") as handle:
        handle.write(b"a=1\nb=3\n")
    if recorded == "md5 of the packaged file":
        recorded = hashlib.md5(packaged).hexdigest()
    state = {"packages": {("demo", "all"): {"name": "demo", "version": "1.0", "architecture": "all"}},
             "conffiles": {} if recorded is None else {path: ("demo", recorded, False)}}
    ops = {"files_modified": [{"path": path, "conffile": True, "conffile_changed": True, "package": "demo"}]}
    (item,) = confdiff.analyze(ops, state)["conffile_diffs"]
    if diffed:
        assert item["source"] == "apt-cache" and "-b=2\n+b=3\n" in item["diff"], item
    else:
        assert "diff" not in item and "source" not in item, item
        assert item["error"] == (f"The packaged {path} in that .deb is not the one dpkg installed (its md5 differs); "
                                 "it is not diffed."), item
