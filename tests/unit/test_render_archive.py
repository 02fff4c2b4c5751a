"""to_tasks with files_archive: the created directories and copied files as one tar."""

import tarfile

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from ansible.parsing.utils.yaml import from_yaml

from ansible_collections.mo.fleet.plugins.filter import render as render_filters
from ansible_collections.mo.fleet.plugins.module_utils._render import api as render

from test_render import CONTENT, apt_template, bundle, by_name  # noqa: F401 (bundle: a fixture)


def test_archive_replaces_the_directory_and_copy_loops(bundle, tmp_path):
    archive = str(tmp_path / "files.tar")
    tasks = render.to_tasks(str(bundle), {"files_archive": archive, "archive_min_files": 1})
    unpack = by_name(tasks, "one archive")
    assert unpack["ansible.builtin.unarchive"] == {"src": archive, "dest": "/"}
    assert "when" not in unpack  # no per-item loops left: they cost ansible time even when skipped
    names = [t["name"] for t in tasks]
    plain = [t["name"] for t in render.to_tasks(str(bundle))]
    loops = ["Create the directories the capture created", "Copy the files the capture created or changed"]
    assert names == [unpack["name"] if n == loops[0] else n for n in plain if n != loops[1]]
    # the configuration of a service keeps its own copy (it restarts the service)
    assert "Copy the configuration of nginx.service" in names


def test_archive_not_used_below_the_threshold_or_at_zero(bundle, tmp_path):
    for minimum in (0, 100):
        opts = {"files_archive": str(tmp_path / "files.tar"), "archive_min_files": minimum}
        assert not [t for t in render.to_tasks(str(bundle), opts) if "ansible.builtin.unarchive" in t]
        assert render.write_files_archive(str(bundle), opts) == 0
    assert not (tmp_path / "files.tar").exists()


def test_archive_members_modes_owners_content_and_stable_bytes(bundle, tmp_path):
    archive = tmp_path / "files.tar"
    opts = {"files_archive": str(archive), "archive_min_files": 1}
    assert render.write_files_archive(str(bundle), opts) == 3
    with tarfile.open(archive) as tar:
        members = dict((m.name, m) for m in tar.getmembers())
        assert sorted(members) == ["etc/hello.conf", "usr/local/bin/hello", "usr/local/share/hello"]
        hello = members["usr/local/bin/hello"]
        assert (hello.mode, hello.uname, hello.gname, hello.uid) == (0o755, "hello", "hello", 999)
        assert tar.extractfile(hello).read() == CONTENT["/usr/local/bin/hello"]
        assert members["usr/local/share/hello"].isdir() and members["usr/local/share/hello"].mode == 0o750
        assert len(set(m.mtime for m in members.values())) == 1
    first = archive.read_bytes()
    render.write_files_archive(str(bundle), opts)
    assert archive.read_bytes() == first  # unarchive compares mtimes: every render gives the same tar


def test_filter_writes_nothing_and_bad_options_fail(bundle, tmp_path):
    archive = tmp_path / "f.tar"
    tasks = render_filters.to_tasks(str(bundle), files_archive=str(archive), archive_min_files=1)
    assert by_name(tasks, "one archive") and not archive.exists()  # mo.fleet.template_render writes it
    render_filters.to_task_yaml(str(bundle), files_archive=str(archive), archive_min_files=1)
    assert not archive.exists()
    with pytest.raises(AnsibleFilterError, match="archive_min_files"):
        render_filters.to_tasks(str(bundle), files_archive=str(archive), archive_min_files=-1)
    with pytest.raises(AnsibleFilterError, match="files_archive"):
        render_filters.to_tasks(str(bundle), files_archive="relative.tar")
    doc = apt_template()
    with pytest.raises(render.RenderError, match="bundle directory"):
        render.write_files_archive(doc, {"files_archive": str(archive), "archive_min_files": 1,
                                         "verify_bundle": False})


def test_role_unpacks_its_archive_and_copies_one_by_one_only_in_check_or_diff_mode(bundle, tmp_path):
    archive = tmp_path / "role" / "files" / render.ROLE_ARCHIVE
    archive.parent.mkdir(parents=True)
    role = render_filters.to_role(str(bundle), role_name="hello", files_archive=str(archive), archive_min_files=1)
    assert role["archive"] == "files/mo-fleet-files.tar" and role["archive_changed"] and not archive.exists()
    main = from_yaml(role["files"]["tasks/main.yml"])
    unpack = by_name(main, "one archive")
    assert unpack["ansible.builtin.unarchive"] == {"src": "mo-fleet-files.tar", "dest": "/"}
    assert unpack["when"] == ["not ansible_check_mode", "not ansible_diff_mode"]
    include = by_name(main, "one by one")
    assert include["ansible.builtin.include_tasks"] == {"file": "files_per_item.yml"}
    assert include["when"] == "ansible_check_mode or ansible_diff_mode"
    per_item = from_yaml(role["files"]["tasks/files_per_item.yml"])
    assert [t["name"] for t in per_item] == ["Create the directories the capture created",
                                             "Copy the files the capture created or changed"]
    assert not [t for t in main if t["name"] in ("Create the directories the capture created",
                                                 "Copy the files the capture created or changed")]
    # below the threshold: no archive, no extra task file
    small = render_filters.to_role(str(bundle), role_name="hello", files_archive=str(tmp_path / "x.tar"))
    assert small["archive"] is None and "tasks/files_per_item.yml" not in small["files"]
    assert not (tmp_path / "x.tar").exists()
