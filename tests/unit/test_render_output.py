"""_render/output.py: what mo.fleet.template_render writes, planned first (check and diff mode),
then written; a second plan of the same output changes nothing."""

import os
import stat

from ansible.parsing.utils.yaml import from_yaml

from ansible_collections.mo.fleet.plugins.module_utils._render import api as render
from ansible_collections.mo.fleet.plugins.module_utils._render import output

from test_render import bundle  # noqa: F401 (a fixture)


def _mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def _role(bundle, **options):
    return output.role_output(str(bundle), dict(options), role_name="hello", origin="captures/hello")


def test_a_role_is_planned_without_writing_then_written_once(bundle, tmp_path):
    role_dir = str(tmp_path / "role")
    out = _role(bundle, files_archive=os.path.join(role_dir, "files", render.ROLE_ARCHIVE), archive_min_files=1)
    plan = output.plan_role(role_dir, out)
    assert plan["changed"] and plan["archive"] and not os.path.exists(role_dir)  # planning writes nothing
    assert "tasks/main.yml" in plan["write"] and "tasks/files_per_item.yml" in plan["write"]
    assert [d["before"] for d in plan["diff"]] == [""] * len(plan["write"])
    output.write_role(role_dir, out, plan)
    main = from_yaml(open(os.path.join(role_dir, "tasks/main.yml")).read())
    assert any("ansible.builtin.unarchive" in t for t in main)
    for dest, src in out["copies"]:
        assert open(os.path.join(role_dir, dest), "rb").read() == open(src, "rb").read()
        assert _mode(os.path.join(role_dir, dest)) == 0o644
    assert os.path.isfile(os.path.join(role_dir, out["archive"]))
    again = output.plan_role(role_dir, _role(bundle, files_archive=os.path.join(role_dir, "files", render.ROLE_ARCHIVE),
                                             archive_min_files=1))
    assert again == {"write": [], "copy": [], "archive": False, "remove": [], "diff": [], "changed": False}


def test_what_an_earlier_generation_left_goes_and_nothing_else(bundle, tmp_path):
    role_dir = str(tmp_path / "role")
    big = _role(bundle, files_archive=os.path.join(role_dir, "files", render.ROLE_ARCHIVE), archive_min_files=1)
    output.write_role(role_dir, big, output.plan_role(role_dir, big))
    os.makedirs(os.path.join(role_dir, "files/etc/old"))
    open(os.path.join(role_dir, "files/etc/old/dropped.conf"), "w").close()
    open(os.path.join(role_dir, "notes.txt"), "w").close()  # not below a directory the role writes
    small = _role(bundle)
    plan = output.plan_role(role_dir, small)
    assert plan["remove"] == ["files/etc/old/dropped.conf", "files/mo-fleet-files.tar", "tasks/files_per_item.yml"]
    assert plan["write"] == ["tasks/main.yml"] and not plan["copy"] and not plan["archive"]
    assert plan["diff"][0]["before_header"] == "tasks/main.yml" and "unarchive" in plan["diff"][0]["before"]
    output.write_role(role_dir, small, plan)
    assert os.path.exists(os.path.join(role_dir, "notes.txt"))
    assert not os.path.exists(os.path.join(role_dir, "files/mo-fleet-files.tar"))
    assert not output.plan_role(role_dir, small)["changed"]


def test_a_changed_mode_or_content_is_written_again(bundle, tmp_path):
    role_dir = str(tmp_path / "role")
    out = _role(bundle)
    output.write_role(role_dir, out, output.plan_role(role_dir, out))
    os.chmod(os.path.join(role_dir, "README.md"), 0o600)
    dest = out["copies"][0][0]
    with open(os.path.join(role_dir, dest), "ab") as handle:
        handle.write(b"drift\n")
    plan = output.plan_role(role_dir, out)
    assert plan["write"] == ["README.md"] and [d for d, _s in plan["copy"]] == [dest]


def test_a_task_file_and_its_archive(bundle, tmp_path):
    dest, archive = str(tmp_path / "tasks.yml"), str(tmp_path / "files.tar")
    options = {"files_archive": archive, "archive_min_files": 1}
    text = output.task_text(str(bundle), options)
    plan = output.plan_tasks(dest, text, str(bundle), options)
    assert plan["changed"] and plan["archive"] and plan["write"] == [dest] and not os.path.exists(dest)
    output.write_tasks(dest, text, str(bundle), options, plan)
    assert open(dest).read() == text and _mode(dest) == 0o600 and os.path.isfile(archive)
    assert not output.plan_tasks(dest, text, str(bundle), options)["changed"]
    undo = output.task_text(str(bundle), {}, rollback=True)
    assert undo != text and output.plan_tasks(dest, undo, str(bundle), {})["write"] == [dest]


def test_the_default_role_name_is_the_directory_name_made_safe():
    assert output.role_name_of("out/My-Role.d/") == "my_role_d"
    assert output.role_name_of("/srv/roles/nginx") == "nginx"
