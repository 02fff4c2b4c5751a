"""Hostile .debs against the repository server on lab hosts, judged by a real apt client.

A crafted control file tries to show one package to mo.fleet and another (``openssh-server
1:99``) to apt: through a U+2028 line separator (str.splitlines breaks there, apt does not)
or a case-twisted duplicate ``package:`` field (apt keeps the last one).  Both are refused at
upload with one sentence and the stores stay as they were.  A case-twisted but unambiguous
control file is accepted, and the apt client on another lab host sees exactly the name and
version that mo.fleet.repo_info reports.
"""

import io
import json
import sys
import tarfile
import zlib
from pathlib import Path

from labhosts import run_playbook

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from debtools import gzip_bytes, tar_bytes  # noqa: E402
from test_repo_server import (  # noqa: E402  (helpers shared with the repository server test)
    PROJECT, add_source, catalog, clean_update, failed_msg, store_state, trust_server,
)


_gz, _tar = gzip_bytes, tar_bytes


def crafted_deb(path, control):
    """A .deb whose control file is CONTROL, byte for byte (dpkg-deb would not build these)."""
    data = _tar([("./usr/share/doc/mo-crafted/README", b"crafted\n")])
    members = [("debian-binary", b"2.0\n"), ("control.tar.gz", _gz(_tar([("./control", control.encode("utf-8"))]))),
               ("data.tar.gz", _gz(data))]
    out = b"!<arch>\n"
    for name, blob in members:
        out += f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(blob):<10}`\n".encode() + blob + (b"\n" if len(blob) % 2 else b"")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(out)
    return Path(path)


TAIL = "Maintainer: mo.fleet tests <tests@example.invalid>\nDescription: crafted\n"


def test_smuggled_package_names_are_refused_and_apt_sees_what_repo_info_reports(lab, tmp_path):
    server = lab.host(groups=["repo_server"])
    client = lab.host(groups=["clients"])
    smugglers = {
        "line-separator": crafted_deb(tmp_path / "a" / "mo-innocent_1.0_all.deb",
                                      "Package: mo-innocent\u2028Package: openssh-server\nVersion: 1:99\n"
                                      "Architecture: all\n" + TAIL),
        "case-twisted-twin": crafted_deb(tmp_path / "b" / "mo-innocent_1.0_all.deb",
                                         "Package: mo-innocent\nVersion: 1.0\nArchitecture: all\n"
                                         "package: openssh-server\nversion: 1:99\n" + TAIL),
    }
    twisted = crafted_deb(tmp_path / "c" / "mo-twisted_2.0-1_all.deb",
                          "PACKAGE: mo-twisted\nversion: 2.0-1\narchitecture: all\n" + TAIL)
    empty = catalog([{"name": "hostile", "packages": []}])
    inventory = lab.inventory(server, client, group_vars={"mo_fleet_catalog": empty})
    first = run_playbook("playbooks/repo_server.yml", inventory)
    assert first.rc == 0, first.stdout[-3000:] + first.stderr[-2000:]

    before = store_state(server)
    for what, deb in smugglers.items():
        run = run_playbook("playbooks/upload.yml", inventory, extra_vars={"upload_src": str(deb), "upload_store": "main"})
        msg = failed_msg(run, server.name)
        assert run.rc != 0, (what, run.stdout[-2000:])
        assert "mo-innocent_1.0_all.deb" in msg and ("U+2028" in msg or "twice" in msg), (what, msg)
        assert msg.endswith(".") and "\n" not in msg and "Traceback" not in msg, msg
        assert store_state(server) == before, what

    up = run_playbook("playbooks/upload.yml", inventory, extra_vars={"upload_src": str(twisted), "upload_store": "main"})
    assert up.rc == 0, failed_msg(up, server.name) or up.stdout[-2000:]
    full = catalog([{"name": "hostile", "packages": ["mo-twisted_2.0-1_all.deb"]}])
    pub = run_playbook("playbooks/publish.yml", inventory, extra_vars={"mo_fleet_catalog": full})
    assert pub.rc == 0, failed_msg(pub, server.name) or pub.stdout[-2000:]

    report_file = tmp_path / "repo-report.json"
    rep = run_playbook("playbooks/repo_report.yml", inventory,
                       extra_vars={"mo_fleet_catalog": full, "repo_report_file": str(report_file)})
    assert rep.rc == 0, rep.stdout[-2000:]
    reported = {(p["name"], p["version"]) for p in json.loads(report_file.read_text())["packages"]}
    assert reported == {("mo-twisted", "2.0-1")}

    trust_server(client, server)
    add_source(client, server, "hostile")
    clean_update(client, "hostile")
    show = client.sh("apt-cache show mo-twisted").stdout
    fields = {}
    for line in show.split("\n"):
        key, sep, value = line.partition(": ")
        if sep and not line.startswith(" "):
            fields.setdefault(key.lower(), value)
    assert (fields["package"], fields["version"]) == ("mo-twisted", "2.0-1"), show
    served = client.sh(f"for f in /var/lib/apt/lists/*_{PROJECT}_repos_hostile_dists_hostile_main_binary-amd64_Packages*; "
                       "do /usr/lib/apt/apt-helper cat-file \"$f\"; done").stdout
    names = [line.split(":", 1)[1].strip() for line in served.split("\n") if line.lower().startswith("package:")]
    assert names == ["mo-twisted"], served
    policy = client.sh("apt-cache policy openssh-server").stdout
    assert "1:99" not in policy and "hostile" not in policy, policy
