"""Issue 3: capture `make install` of a real autotools project built from a Debian source
package (GNU hello 2.10, `apt-get source hello`, `./configure --prefix=/usr/local && make`),
on the walk path (overlay root: fanotify refused) and on the fanotify path (plain root).

The tree is built once per base image (debian_source.py); the capture host gets the built
tree and `make` only, with no compiler, so `make install` there cannot recompile anything.
What `make install` installs is learnt on the same host first with `make install
DESTDIR=/tmp/expected`, and every one of those files must be in the template: created, not
from a package, bundled, with the same sha256 and mode, and the same bytes in files/.
"""

import json

import pytest

from debian_source import TREE, install_tree
from labhosts import run_module

from ansible_collections.mo.fleet.plugins.module_utils._template import template as tpl

pytestmark = pytest.mark.integration

STAGE = "/tmp/expected"

# Every file and directory under STAGE: relative path -> [type, mode, uid, gid, sha256 or None].
LIST_PY = r"""
import hashlib, json, os, stat, sys
top = sys.argv[1]
out = {}
for base, dirs, files in os.walk(top):
    for n in dirs + files:
        p = os.path.join(base, n)
        st = os.lstat(p)
        digest = None
        if stat.S_ISREG(st.st_mode):
            with open(p, "rb") as f:
                digest = hashlib.sha256(f.read()).hexdigest()
        kind = "file" if stat.S_ISREG(st.st_mode) else "directory" if stat.S_ISDIR(st.st_mode) else "other"
        out[p[len(top):]] = [kind, "%04o" % stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, digest]
json.dump(out, sys.stdout)
"""


def _listing(host, top):
    return json.loads(host.sh("python3 - %s" % top, input_text=LIST_PY).stdout)


@pytest.mark.parametrize("root", ["overlay", "rootfs"])
def test_make_install_of_hello_from_debian_source(lab, tmp_path, root):
    """overlay: fanotify refused, the walk finds the changes; rootfs: fanotify drives a rescan."""
    host = lab.host(groups=["capture_hosts"], rootfs=(root == "rootfs"))
    tree = install_tree(host)
    host.sh("touch /tmp/unpacked")
    assert host.sh("command -v gcc cc", check=False).returncode != 0, "the capture host must have no compiler"

    # what make install puts where, learnt on the same host into a staging directory
    host.sh("cd %s && make install DESTDIR=%s >/dev/null" % (tree, STAGE))
    staged = _listing(host, STAGE)
    files = {p: v for p, v in staged.items() if v[0] == "file"}
    assert "/usr/local/bin/hello" in files and "/usr/local/share/man/man1/hello.1" in files
    assert sum(1 for p in files if p.endswith("/LC_MESSAGES/hello.mo")) > 30
    assert all(v[0] != "other" for v in staged.values()), staged
    new_dirs = sorted(p for p, v in staged.items() if v[0] == "directory"
                      and host.sh("test -e %s" % p, check=False).returncode != 0)
    assert "/usr/local/share/locale/de/LC_MESSAGES" in new_dirs

    run = run_module(lab.inventory(host), host.name, "mo.fleet.capture",
                     {"cmd": "make install", "chdir": tree, "name": "hello", "trace": "auto"}, cwd=tmp_path)
    assert run.rc == 0, run.stdout[-3000:] + run.stderr[-2000:]
    bundle = tmp_path / "captures" / host.name / "hello"
    doc = tpl.verify_bundle(str(bundle))  # schema, and every bundled file matches its sha256
    assert doc["MO_template"]["status"] == "succeeded" and doc["MO_template"]["chdir"] == tree

    trace = doc["metadata"]["trace"]
    if root == "overlay":
        assert trace["used"] == "walk" and trace["fallback"], trace
        assert doc["metadata"]["analysis_method"] == "snapshot"
    else:
        assert trace["used"] == "fanotify" and not trace["fallback"], trace
        assert doc["metadata"]["analysis_method"] == "fanotify_and_snapshot"
        assert trace["events"] > 0 and trace["touched"] >= len(files)

    # nothing was compiled, nothing in the tree was written
    assert host.sh("find %s -newer /tmp/unpacked" % tree).stdout == ""

    ops = doc["operations"]
    created = {e["path"]: e for e in ops["files_created"]}
    assert sorted(p for p in created if p.startswith("/usr/local/")) == sorted(files)
    for path, (_, mode, uid, gid, digest) in files.items():
        entry = created[path]
        assert entry["type"] == "file" and entry["package"] is None and entry["bundled"] is True, entry
        assert entry["hash"] == digest, path
        assert entry["permissions"] == mode, (path, entry["permissions"], mode)
        assert (entry["owner"], entry["group"], entry["uid"], entry["gid"]) == ("root", "root", uid, gid), entry
        assert tpl.sha256_file(str(bundle / ("files" + path))) == digest, path
    if root == "rootfs":
        # fanotify names the writers (comm[pid], or [pid] once a short-lived `install` is gone)
        writers = [p for e in files for p in created[e].get("processes", [])]
        assert writers, created["/usr/local/bin/hello"]
    assert created["/usr/local/bin/hello"]["permissions"] == "0755"
    assert created["/usr/local/share/man/man1/hello.1"]["permissions"] == "0644"
    live = host.sh("sha256sum /usr/local/bin/hello").stdout.split()[0]
    assert live == files["/usr/local/bin/hello"][4]

    dirs = {e["path"]: e for e in ops["directories_created"]}
    assert sorted(p for p in dirs if p.startswith("/usr/local/")) == new_dirs
    for path in new_dirs:
        assert dirs[path]["permissions"] == staged[path][1], dirs[path]
    for op in ("files_modified", "files_deleted", "directories_deleted", "symlinks_created"):
        assert not [e["path"] for e in ops[op] if e["path"].startswith("/usr/local/")], (op, ops[op])
    assert ops["packages_installed"] == [] and ops["units_added"] == [] and ops["users_created"] == []
    assert host.sh("/usr/local/bin/hello").stdout == "Hello, world!\n"
