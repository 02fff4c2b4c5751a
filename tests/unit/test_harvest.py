"""Harvest's two halves without a host: the target side lists and packs what the controller
has not got; the controller side's state file is refused, in one sentence, when damaged."""

import base64
import io
import json
import os
import tarfile

import pytest

from ansible_collections.mo.fleet.plugins.plugin_utils import _harvest_state as action
from ansible_collections.mo.fleet.plugins.plugin_utils._bundle_receive import BundleError, receive_bundle
from ansible_collections.mo.fleet.plugins.module_utils._capture import harvest
from ansible_collections.mo.fleet.plugins.module_utils._template import template as tpl
from ansible_collections.mo.fleet.plugins.module_utils._capture.capture_index import Store


def _template(store, template_id, name, origin):
    path = os.path.join(store.templates, template_id)
    os.makedirs(path)
    doc = tpl.build({"argv": ["dpkg", "-i", "x.deb"], "name": name, "system": "debian 12 (x86_64)",
                     "timestamp": "2026-12-02T01:00:00+00:00"}, {}, {"origin": origin})
    tpl.atomic_write(os.path.join(path, tpl.BUNDLE_TEMPLATE), tpl.dump(doc))
    store.add_template({"id": template_id, "name": name, "created": len(template_id), "command": "dpkg -i x.deb",
                        "status": "succeeded", "rc": 0, "path": path, "archive": None, "summary": "{}", "bytes": 0})
    return doc


def test_pending_skips_what_was_harvested_and_what_is_gone(tmp_path):
    store = Store(str(tmp_path / "store"))
    store.ensure()
    _template(store, "a-1", "a", "intercepted")
    _template(store, "b-22", "b", "dpkg-hook")
    _template(store, "c-333", "c", None)
    store.add_template({"id": "gone", "name": "gone", "created": 9, "command": "x", "status": "succeeded", "rc": 0,
                        "path": os.path.join(store.templates, "gone"), "archive": None, "summary": "{}", "bytes": 0})
    items = harvest.pending(store, skip=["a-1"])
    assert [(i["id"], i["origin"]) for i in items] == [("b-22", "dpkg-hook"), ("c-333", "module")]


def test_pack_inlines_within_the_budget_and_leaves_the_rest_as_files(tmp_path):
    store = Store(str(tmp_path / "store"))
    store.ensure()
    doc = _template(store, "a-1", "a", "intercepted")
    _template(store, "b-22", "b", "drift")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    first, second = harvest.pack(store, harvest.pending(store), inline_max=10 ** 9, archive_dir=str(out_dir))
    blob = base64.b64decode(first["content"])
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        assert json.loads(tar.extractfile(tpl.BUNDLE_TEMPLATE).read()) == doc
    assert first["archive"] is None and "path" not in first
    (big,) = harvest.pack(store, harvest.pending(store, ["a-1"]), inline_max=10, archive_dir=str(out_dir))
    assert os.path.dirname(big["archive"]) == str(out_dir) and tpl.sha256_file(big["archive"]) == big["sha256"]
    assert "content" not in big and second["name"] == "b"


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root, as the module has under become")
def test_an_archive_left_as_a_file_goes_to_the_owner_of_the_login_users_tmp_dir(tmp_path):
    """Under become the module is root and writes into the login user's tmp directory; that user
    fetches the archive (file transfers never become), so it must be theirs."""
    store = Store(str(tmp_path / "store"))
    store.ensure()
    _template(store, "a-1", "a", "intercepted")
    login_tmp = tmp_path / "home-mo-ansible-tmp"
    login_tmp.mkdir(mode=0o700)
    os.chown(login_tmp, 1000, 1000)
    (big,) = harvest.pack(store, harvest.pending(store), inline_max=10, archive_dir=str(login_tmp))
    st = os.stat(big["archive"])
    assert (st.st_uid, st.st_gid) == (1000, 1000)
    (small,) = harvest.pack(store, harvest.pending(store), inline_max=10 ** 9, archive_dir=str(login_tmp))
    assert small["archive"] is None and os.listdir(login_tmp) == [os.path.basename(big["archive"])]


@pytest.mark.parametrize("text", ["not json", '{"harvested": "x"}', '{"harvested": ["../x"]}', "[1]"])
def test_a_damaged_harvest_state_is_one_sentence(tmp_path, text):
    (tmp_path / action.STATE_FILE).write_text(text)
    with pytest.raises(BundleError) as err:
        action.read_state(str(tmp_path))
    assert "remove it to harvest everything again" in str(err.value) and "\n" not in str(err.value)


def test_harvest_state_roundtrip(tmp_path):
    assert action.read_state(str(tmp_path)) == {}
    (tmp_path / action.STATE_FILE).write_text(json.dumps({"harvested": ["20261202-x-1a2b3c"]}))
    assert action.read_state(str(tmp_path)) == {"20261202-x-1a2b3c": None}  # the older format
    action.write_state(str(tmp_path), {"a-1": "a", "b-2": "a@b-2", "bad-3": None})
    assert action.read_state(str(tmp_path)) == {"a-1": "a", "b-2": "a@b-2", "bad-3": None}


def _harvest(tmp_path, store, state=None, present=None, extra=()):
    """The controller half of a run against STORE's pending templates, inline (no connection)."""
    host_dir = tmp_path / "captures" / "web1"
    if state is not None:
        action.write_state(str(host_dir), state)
    items = harvest.pack(store, harvest.pending(store, list(action.read_state(str(host_dir)))), inline_max=10 ** 9)
    ids = harvest.present_ids(store) if present is None else present

    def receive(final, directory, bundle, content):
        return receive_bundle(None, "web1", str(host_dir), final, directory, bundle, content)

    shown, refused, written = action.harvest("web1", str(host_dir), list(extra) + items, set(ids), receive)
    return host_dir, {"templates": shown, "refused": refused, "changed": bool(written)}


def test_two_captures_of_one_name_both_come_home_and_a_later_one_never_replaces_an_earlier(tmp_path):
    """The dpkg hook names by the second and a weekly drift capture reuses its name: the second
    bundle goes to <name>@<id>, and a third run of the same name does not touch either."""
    store = Store(str(tmp_path / "store"))
    store.ensure()
    first = _template(store, "dpkg-1-aa", "dpkg-20261202T010000", "dpkg-hook")
    _template(store, "dpkg-22-bb", "dpkg-20261202T010000", "dpkg-hook")
    host_dir, result = _harvest(tmp_path, store)
    assert [os.path.basename(t["dest"]) for t in result["templates"]] == [
        "dpkg-20261202T010000", "dpkg-20261202T010000@dpkg-22-bb"]
    _template(store, "dpkg-333-cc", "dpkg-20261202T010000", "dpkg-hook")
    _, again = _harvest(tmp_path, store)
    assert [os.path.basename(t["dest"]) for t in again["templates"]] == ["dpkg-20261202T010000@dpkg-333-cc"]
    kept = json.loads((host_dir / "dpkg-20261202T010000" / tpl.BUNDLE_TEMPLATE).read_text())
    assert kept == first and len(action.read_state(str(host_dir))) == 3
    _, third = _harvest(tmp_path, store)
    assert third["templates"] == [] and third["changed"] is False


def test_a_name_taken_on_disk_by_something_else_is_not_replaced(tmp_path):
    store = Store(str(tmp_path / "store"))
    store.ensure()
    _template(store, "a-1", "notes", "cli")
    (tmp_path / "captures" / "web1" / "notes").mkdir(parents=True)
    (tmp_path / "captures" / "web1" / "notes" / "mine.txt").write_text("by hand")
    host_dir, result = _harvest(tmp_path, store)
    assert result["templates"][0]["dest"].endswith("/notes@a-1")
    assert (host_dir / "notes" / "mine.txt").read_text() == "by hand"


@pytest.mark.parametrize("bad, sentence", [
    ("not a dict", "web1 reported a template that is not a mapping."),
    ({"id": "x-1", "name": "x"}, "web1 reported a template without a sha256."),
    ({"id": "../x", "name": "x", "sha256": "0" * 64}, "web1 reported a capture id that is not a plain file name part"),
    ({"id": "x-9", "name": "../../etc", "sha256": "0" * 64}, "The bundle x-9 was not kept: its name is not"),
    ({"id": "x-8", "name": "x", "sha256": "0" * 64, "content": "!!"}, "not valid base64"),
])
def test_a_bad_item_is_reported_and_recorded_and_the_rest_still_comes_home(tmp_path, bad, sentence):
    store = Store(str(tmp_path / "store"))
    store.ensure()
    _template(store, "a-1", "a", "intercepted")
    host_dir, result = _harvest(tmp_path, store, present=["a-1", "x-9", "x-8"], extra=[bad])
    assert [t["id"] for t in result["templates"]] == ["a-1"] and (host_dir / "a" / tpl.BUNDLE_TEMPLATE).is_file()
    (refused,) = result["refused"]
    assert sentence in refused and "\n" not in refused
    state = action.read_state(str(host_dir))
    if isinstance(bad, dict) and bad["id"] in ("x-9", "x-8"):
        assert state[bad["id"]] is None  # never asked for again
    assert state["a-1"] == "a"


def test_the_state_is_pruned_to_the_ids_the_host_still_has(tmp_path):
    store = Store(str(tmp_path / "store"))
    store.ensure()
    _template(store, "a-1", "a", "intercepted")
    host_dir, result = _harvest(tmp_path, store, state={"old-1": "old", "old-2": None})
    assert result["changed"] and action.read_state(str(host_dir)) == {"a-1": "a"}


def test_a_fetch_the_connection_refuses_is_one_sentence_and_leaves_nothing(tmp_path):
    """A transfer that fails (e.g. permission denied on the target) is a BundleError naming
    the archive, not a traceback, and nothing is written below the host's directory."""
    from ansible.errors import AnsibleError

    class Refusing:
        def fetch_file(self, remote, local):
            raise AnsibleError(f"failed to transfer file to {local}: Permission denied")

    host_dir = tmp_path / "captures" / "web1"
    with pytest.raises(BundleError, match=r"^The bundle from web1 was not kept: The bundle archive /home/mo/\.ansible/tmp/a\.tar\.gz "
                                          r"could not be fetched: "
                                          r"failed to transfer file .*Permission denied"):
        receive_bundle(Refusing(), "web1", str(host_dir), str(host_dir / "a"), "a",
                       {"sha256": "0" * 64, "archive": "/home/mo/.ansible/tmp/a.tar.gz"})
    assert list(host_dir.iterdir()) == []  # no staging directory, no partial bundle


def test_the_module_says_it_needs_root_before_it_tries_the_drift_capture(tmp_path, monkeypatch, capsys):
    """As a non-root login the drift attempt would fail on the 0700 baseline directory with a
    misleading sentence; the root check comes first."""
    from ansible.module_utils.testing import patch_module_args
    from ansible_collections.mo.fleet.plugins.modules import harvest as module

    monkeypatch.setattr(module.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(module, "drift_capture", lambda *a: pytest.fail("the drift capture ran as non-root"))
    with patch_module_args({"drift": "web1-drift", "store": str(tmp_path / "store")}):
        with pytest.raises(SystemExit):
            module.main()
    out = json.loads(capsys.readouterr().out)
    assert out["failed"] and out["msg"] == "mo.fleet.harvest must run as root on the target; use become: true."


def test_check_mode_items_need_no_sha256_but_packed_ones_do():
    """What the module lists in check mode is not packed yet: it has an id and a name only."""
    listed = {"id": "a-1", "name": "a", "origin": "intercepted"}
    assert action.check_item("web1", listed, packed=False) == ""
    assert action.check_item("web1", listed) == "web1 reported a template without a sha256."
    assert action.check_item("web1", dict(listed, name="../x"), packed=False).startswith("The bundle a-1 was not kept")


def test_capture_and_harvest_share_the_destination_and_the_archive_options(tmp_path, monkeypatch):
    """Both action plugins resolve dest and ask for the archive through _bundle_receive: the
    default dest is ./captures of the controller's current directory, and the remote tmp
    directory is made only when the task has none yet."""
    from ansible_collections.mo.fleet.plugins.plugin_utils import _bundle_receive as receive
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert receive.destination(None) == str(tmp_path / "captures")
    assert receive.destination("~/out") == str(tmp_path / "home" / "out")
    assert receive.destination("/srv/c") == "/srv/c"

    class Shell:
        tmpdir = None

    class Action:
        made = 0

        def __init__(self):
            self._connection = type("Connection", (), {"_shell": Shell()})()

        def _make_tmp_path(self):
            self.made += 1
            self._connection._shell.tmpdir = f"/tmp/ansible-tmp-{self.made}"

    plugin = Action()
    assert receive.take_away_args(plugin) == {"inline_max": receive.INLINE_MAX, "archive_dir": "/tmp/ansible-tmp-1"}
    assert receive.take_away_args(plugin, 1024) == {"inline_max": 1024, "archive_dir": "/tmp/ansible-tmp-1"}
    assert plugin.made == 1


def test_only_what_is_safely_home_is_removed_from_the_host_and_then_forgotten(tmp_path):
    """remove_harvested: a bundle on the controller (recorded with its directory, its
    template.json there) goes from the host; a refused one, one the controller lost and one not
    harvested yet stay; the host's index, directory and archive of a removed one are gone."""
    store = Store(str(tmp_path / "store"))
    store.ensure()
    _template(store, "a-1", "a", "intercepted")
    _template(store, "b-22", "b", "dpkg-hook")
    host_dir, result = _harvest(tmp_path, store, present=["a-1", "b-22", "x-9"],
                                extra=[{"id": "x-9", "name": "../x", "sha256": "0" * 64}])
    assert [t["id"] for t in result["templates"]] == ["a-1", "b-22"]
    _template(store, "c-333", "c", "drift")  # captured after the harvest: not home
    with open(os.path.join(store.outbox, "a-1.tar.gz"), "wb") as handle:
        handle.write(b"an archive never fetched")
    os.unlink(host_dir / "b" / tpl.BUNDLE_TEMPLATE)  # lost on the controller since
    state = action.read_state(str(host_dir))
    assert state["x-9"] is None  # refused: recorded, never home
    home = action.safely_home(str(host_dir), state, harvest.present_ids(store) + ["x-9"])
    assert home == ["a-1"]
    removed, problem = harvest.remove_home(store, home + ["not-there"])
    assert (removed, problem) == (["a-1"], None)
    assert [t["id"] for t in store.list_templates()] == ["b-22", "c-333"]
    assert sorted(os.listdir(store.templates)) == ["b-22", "c-333"] and store.outbox_files() == []
    action.forget(str(host_dir), removed)
    assert sorted(action.read_state(str(host_dir))) == ["b-22", "x-9"]
    # the next run brings c home and nothing else; a's bundle stays where it was
    _, again = _harvest(tmp_path, store)
    assert [t["id"] for t in again["templates"]] == ["c-333"]
    assert (host_dir / "a" / tpl.BUNDLE_TEMPLATE).is_file()


def test_a_busy_capture_directory_leaves_the_harvested_templates_for_the_next_harvest(tmp_path):
    store = Store(str(tmp_path / "store"))
    store.ensure()
    _template(store, "a-1", "a", "intercepted")
    holder = Store(store.root).lock(wait=0)
    try:
        removed, problem = harvest.remove_home(store, ["a-1"], wait=0.1)
    finally:
        holder.unlock()
    assert removed == [] and problem.endswith("The harvested templates stay on the host until the next harvest.")
    assert "\n" not in problem and [t["id"] for t in store.list_templates()] == ["a-1"]


def test_the_module_removes_only_the_ids_it_is_given(tmp_path, monkeypatch, capsys):
    from ansible.module_utils.testing import patch_module_args
    from ansible_collections.mo.fleet.plugins.modules import harvest as module

    store = Store(str(tmp_path / "store"))
    store.ensure()
    _template(store, "a-1", "a", "intercepted")
    _template(store, "b-22", "b", "intercepted")
    monkeypatch.setattr(module.os, "geteuid", lambda: 0)
    with patch_module_args({"remove": ["b-22"], "capture_directory": store.root}):
        with pytest.raises(SystemExit):
            module.main()
    out = json.loads(capsys.readouterr().out)
    assert out["changed"] and out["removed"] == ["b-22"] and "templates" not in out
    assert [t["id"] for t in store.list_templates()] == ["a-1"]


@pytest.mark.parametrize("module_result", [
    {"templates": [], "present": [{"id": "a-1"}]},   # an unhashable id would be a traceback
    {"templates": [], "present": [["a-1"]]},
    {"templates": [], "present": [5]},
    {"templates": {}, "present": []},
    {"templates": [], "present": "a-1"},
])
@pytest.mark.parametrize("check_mode", [False, True])
def test_a_hostile_harvest_result_is_one_sentence_and_writes_nothing(tmp_path, module_result, check_mode):
    from unittest import mock
    from ansible_collections.mo.fleet.plugins.action import harvest as plugin_module

    task = mock.MagicMock()
    task.async_val = 0
    task.check_mode = check_mode
    task.args = {"dest": str(tmp_path / "dest"), "remove_harvested": True}
    conn = mock.MagicMock()
    conn._shell.tmpdir = "/tmp/remote"
    plugin = plugin_module.ActionModule(task, conn, mock.MagicMock(), mock.MagicMock(), mock.MagicMock(),
                                        mock.MagicMock())
    ran = []
    plugin._execute_module = lambda **kw: ran.append(kw) or dict(module_result)
    result = plugin.run(task_vars={"inventory_hostname": "web1"})
    assert result["failed"] is True and result["msg"] == "web1 returned no list of templates; nothing was harvested."
    assert len(ran) == 1 and not (tmp_path / "dest").exists()
