"""Renderers faithful to the host (issue 13): a package installed, then the mode of a
directory it created and the mode and owner of a file it ships changed, in one capture on A.
Applied with apply_template on a fresh B (while capturing that) and as a generated role on a
fresh C (captured the same way), both captures must equal A's: the package's own 0755 must not
win over the recorded 0750.

The command ends with `apt-get clean`, so the capture on A reads what the package ships from
the archive it downloads again (pkgfiles.Shipped), not from apt's cache.
"""

import pytest

from test_render_roundtrip import (apply, capture, capture_while, comparable, diff_report, generated_role_on_fresh_host,
                                   load, prepare)

pytestmark = pytest.mark.integration

COMMAND = ("DEBIAN_FRONTEND=noninteractive apt-get install -y hello >/dev/null && apt-get clean"
           " && chmod 0750 /usr/share/doc/hello"
           " && chmod 0700 /usr/bin/hello && chown nobody:staff /usr/bin/hello")


def test_package_owned_modes_survive_the_round_trip(lab, tmp_path):
    a, b = lab.host(groups=["test_hosts"]), lab.host(groups=["test_hosts"])
    inventory = lab.inventory(a, b)
    for host in (a, b):
        prepare(host)
    bundle_a = capture(inventory, a, COMMAND, "hello-modes", tmp_path / "captures", shell=True)
    doc = load(bundle_a)
    entries = {e["path"]: e for op in ("directories_created", "files_created") for e in doc["operations"][op]}
    docdir, binary = entries["/usr/share/doc/hello"], entries["/usr/bin/hello"]
    assert docdir["package"] == "hello" and docdir["permissions"] == "0750"
    assert docdir["package_differs"] == {"permissions": "0755"}
    assert binary["package_differs"] == {"permissions": "0755", "owner": "root", "group": "root"}
    assert binary["bundled"] is True and binary["package_default"] is True  # the package's content, its own mode
    assert doc["metadata"]["stats"]["package_reference"]["hello"] == "download"
    assert "/usr/share/doc/hello/copyright" in entries and "package_differs" not in entries["/usr/share/doc/hello/copyright"]

    bundle_b, run = capture_while(inventory, b, "hello-modes-applied", tmp_path / "captures",
                                  lambda: apply(inventory, b, bundle_a))
    assert run.rc == 0, run.stdout[-3000:]
    assert b.sh("stat -c '%a %U:%G' /usr/share/doc/hello /usr/bin/hello").stdout.split("\n")[:2] == \
        ["750 root:root", "700 nobody:staff"]
    diff = diff_report(comparable(doc), comparable(load(bundle_b)))
    assert not diff, "\n".join(diff[:40])
    again = apply(inventory, b, bundle_a)
    assert again.rc == 0 and again.changed(b.name) == 0, again.stdout[-3000:]

    # the generated role on a fresh host, captured while it runs
    _role_dir, c, inv_c, apply_role = generated_role_on_fresh_host(lab, inventory, bundle_a, tmp_path,
                                                                   "hello_modes", prepare)
    bundle_c, run = capture_while(inv_c, c, "hello-modes-role", tmp_path / "captures", apply_role)
    assert run.rc == 0, run.stdout[-3000:] + run.stderr[-2000:]
    diff = diff_report(comparable(doc), comparable(load(bundle_c)))
    assert not diff, "\n".join(diff[:40])
    second = apply_role()
    assert second.rc == 0 and second.changed(c.name) == 0, second.stdout[-3000:]
