"""Harvest's two halves without a host: the target side lists and packs what the controller
has not got; the controller side's state file is refused, in one sentence, when damaged."""

import base64
import io
import json
import os
import tarfile

import pytest

from ansible_collections.mo.fleet.plugins.action import harvest as action
from ansible_collections.mo.fleet.plugins.action.capture import BundleError
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
    assert action.read_state(str(tmp_path)) == []
    (tmp_path / action.STATE_FILE).write_text(json.dumps({"harvested": ["20261202-x-1a2b3c"]}))
    assert action.read_state(str(tmp_path)) == ["20261202-x-1a2b3c"]


def test_a_fetch_the_connection_refuses_is_one_sentence_and_leaves_nothing(tmp_path):
    """A transfer that fails (e.g. permission denied on the target) is a BundleError naming
    the archive, not a traceback, and nothing is written below the host's directory."""
    from ansible.errors import AnsibleError
    from ansible_collections.mo.fleet.plugins.action.capture import receive_bundle

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
