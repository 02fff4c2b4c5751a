"""The repository server on fresh lab hosts: role, uploads, signed publish, a real apt client."""

import hashlib
import json
import sys
from pathlib import Path

from labhosts import run_playbook

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from debtools import build_deb  # noqa: E402

import labctl  # noqa: E402  (labhosts put lab/ on sys.path)

PROJECT = "demo"
FETCH = r"""
import sys, urllib.request, urllib.error
url = sys.argv[1]
try:
    r = urllib.request.urlopen(url, timeout=120)
    print(r.status); print(r.headers.get("Cache-Control", "")); print(r.headers.get("X-Mo-Fleet-Cache", ""))
    sys.stdout.write(r.read().decode("utf-8", "replace"))
except urllib.error.HTTPError as e:
    print(e.code); print(""); print("")
except Exception as e:  # connection problems: status 0 and the reason as body
    print(0); print(""); print(""); print(repr(e))
"""


def catalog(deployments, externals=()):
    return {
        "project": {"name": PROJECT, "architectures": ["amd64"]},
        "stores": [{"name": "main"}, {"name": "base"}],
        "package_sets": [{"name": "base-set", "store": "base"}],
        "deployments": [dict({"start_date": "2026-11-02"}, **d) for d in list(deployments) + list(externals)],
    }


def fetch(host, url):
    out = host.sh(f"python3 - {url!r}", check=False, input_text=FETCH).stdout.split("\n", 3)
    while len(out) < 4:
        out.append("")
    return int(out[0] or 0), out[1], out[2], out[3]


def store_state(server):
    return server.sh(f"cd /var/lib/mo-fleet/repo/{PROJECT} && find stores -type f | sort | xargs -r sha256sum").stdout


def changed_tasks(run, host):
    out = []
    for play in run.result.get("plays", []):
        for task in play.get("tasks", []):
            res = task.get("hosts", {}).get(host)
            if res and res.get("changed"):
                out.append((task["task"]["name"], {k: res.get(k) for k in ("msg", "diff", "deployments", "stdout")}))
    return out


def failed_msg(run, host):
    msgs = [r.get("msg", "") for r in run.task_results(host) if r.get("failed")]
    return msgs[0] if msgs else ""


def add_source(client, server, dep, key_path="/etc/apt/keyrings/mo-fleet-demo.asc"):
    client.sh(
        f"printf 'Types: deb\\nURIs: http://{server.name}/pub/{PROJECT}/repos/{dep}\\nSuites: {dep}\\n"
        f"Components: main\\nSigned-By: {key_path}\\n' > /etc/apt/sources.list.d/mo-fleet-{dep}.sources")


def apt_update(client, dep):
    """apt-get update of one deployment's source only (fast); return the CompletedProcess."""
    return client.sh(
        f"apt-get update -o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts=/nonexistent "
        f"-o Dir::Etc::SourceList=/etc/apt/sources.list.d/mo-fleet-{dep}.sources "
        f"-o APT::Get::List-Cleanup=0 2>&1", check=False)


def test_repo_server_role_upload_publish_and_apt_client(lab, tmp_path):
    server = lab.host(groups=["repo_server"])
    client = lab.host(groups=["clients"])
    debs = tmp_path / "debs"
    hello = build_deb(debs, "mo-hello", files={"usr/bin/mo-hello": "#!/bin/sh\necho hello from mo.fleet\n"})
    hello2 = build_deb(tmp_path / "v2", "mo-hello", version="1.1-1",
                       files={"usr/bin/mo-hello": "#!/bin/sh\necho hello again\n"})
    other_same_id = build_deb(tmp_path / "clash", "mo-hello", files={"usr/bin/mo-hello": "#!/bin/sh\necho clash\n"})
    base_set = tmp_path / "base-set"
    build_deb(base_set, "mo-base-a")
    build_deb(base_set, "mo-base-b", arch="amd64")
    (tmp_path / "not-a-deb.deb").write_text("this is text\n")
    truncated = tmp_path / "truncated.deb"
    truncated.write_bytes(hello.read_bytes()[:300])

    mirror, _ = labctl.debian_mirror()  # read from this machine's apt sources at run time
    external = [{"name": "debian", "source": "external", "base_url": mirror, "suite": "bookworm",
                 "components": ["main"], "frozen": True}]
    empty = catalog([{"name": "hello", "packages": []}], external)
    inventory = lab.inventory(server, client, group_vars={"mo_fleet_catalog": empty})

    # role converges, then changes nothing
    first = run_playbook("playbooks/repo_server.yml", inventory)
    assert first.rc == 0, first.stdout[-3000:] + first.stderr[-2000:]
    second = run_playbook("playbooks/repo_server.yml", inventory)
    assert second.rc == 0 and second.changed(server.name) == 0, changed_tasks(second, server.name)
    assert server.sh("systemctl is-active nginx").stdout.strip() == "active"

    # key material: private key 0600 in a 0700 keyring outside the served tree
    gnupg = f"/var/lib/mo-fleet/gnupg/{PROJECT}"
    assert server.sh(f"stat -c %a {gnupg}").stdout.strip() == "700"
    modes = server.sh(f"stat -c %a {gnupg}/private-keys-v1.d/*.key").stdout.split()
    assert modes and set(modes) == {"600"}

    # bad uploads: one sentence each, stores unchanged
    before = store_state(server)
    for extra, words in [
        ({"upload_src": str(tmp_path / "not-a-deb.deb"), "upload_store": "main"}, ["not-a-deb.deb is not a .deb"]),
        ({"upload_src": str(truncated), "upload_store": "main"}, ["truncated.deb", "truncated"]),
        ({"upload_src": str(hello), "upload_store": "../etc"}, ["store name", "path separators"]),
        ({"upload_src": str(hello), "upload_store": "a..b"}, ["store name", "'..'"]),
        ({"upload_src": str(base_set), "upload_store": "base", "upload_set": "x/y"}, ["package set name"]),
    ]:
        run = run_playbook("playbooks/upload.yml", inventory, extra_vars=extra)
        msg = failed_msg(run, server.name)
        assert run.rc != 0 and all(w in msg for w in words), (extra, msg, run.stdout[-2000:])
        assert msg.endswith(".") and "\n" not in msg and "Traceback" not in msg
        assert store_state(server) == before

    # good uploads: a file, then a directory as a package set; the same again is ok
    up = run_playbook("playbooks/upload.yml", inventory, extra_vars={"upload_src": str(hello), "upload_store": "main"})
    assert up.rc == 0 and up.changed(server.name) == 1, up.stdout[-2000:]
    up_set = run_playbook("playbooks/upload.yml", inventory, extra_vars={"upload_src": str(base_set), "upload_store": "base"})
    assert up_set.rc == 0 and up_set.changed(server.name) == 1, up_set.stdout[-2000:]
    again = run_playbook("playbooks/upload.yml", inventory, extra_vars={"upload_src": str(hello), "upload_store": "main"})
    assert again.rc == 0 and again.changed(server.name) == 0
    stored = store_state(server)
    assert hashlib.sha256(hello.read_bytes()).hexdigest() in stored
    assert "stores/base/base-set/mo-base-b_1.0-1_amd64.deb" in stored
    # a different file under the same name, version and architecture: refused unless forced
    clash = run_playbook("playbooks/upload.yml", inventory, extra_vars={"upload_src": str(other_same_id), "upload_store": "main"})
    assert clash.rc != 0 and "force=true" in failed_msg(clash, server.name)
    assert store_state(server) == stored

    # publish: check + diff first (nothing written), then for real
    full = catalog([{"name": "hello", "packages": ["mo-hello_1.0-1_all.deb"], "package_sets": ["base-set"]},
                    {"name": "unsigned", "packages": ["main/mo-hello_1.0-1_all.deb"]}], external)
    dry = run_playbook("playbooks/publish.yml", inventory, extra_vars={"mo_fleet_catalog": full}, check=True, diff=True)
    assert dry.rc == 0, dry.stdout[-2000:]
    res = dry.task_results(server.name, "Publish")[0]
    assert res["changed"] and "main/mo-hello_1.0-1_all.deb (mo-hello 1.0-1 all)" in res["deployments"]["hello"]["added"]
    served_packages = f"/var/lib/mo-fleet/repo/{PROJECT}/repos/hello/dists/hello/main/binary-amd64/Packages"
    assert "mo-hello" not in server.read(served_packages)  # the role published it empty; check mode wrote nothing
    pub = run_playbook("playbooks/publish.yml", inventory, extra_vars={"mo_fleet_catalog": full})
    assert pub.rc == 0 and pub.changed(server.name) == 1, pub.stdout[-2000:]
    assert run_playbook("playbooks/publish.yml", inventory, extra_vars={"mo_fleet_catalog": full}).changed(server.name) == 0

    # a deployment naming a missing package: one sentence, published tree unchanged
    served = server.sh(f"readlink /var/lib/mo-fleet/repo/{PROJECT}/repos/hello/dists").stdout
    bad = catalog([{"name": "hello", "packages": ["nope_1.0_all.deb"]}])
    run = run_playbook("playbooks/publish.yml", inventory, extra_vars={"mo_fleet_catalog": bad})
    assert run.rc != 0 and "deployment 'hello' field packages names 'nope_1.0_all.deb'" in failed_msg(run, server.name)
    assert server.sh(f"readlink /var/lib/mo-fleet/repo/{PROJECT}/repos/hello/dists").stdout == served

    # the apt client: public key over HTTP, deb822 source with Signed-By, update verifies, install works
    status, _, _, key = fetch(client, f"http://{server.name}/pub/{PROJECT}/archive-key.asc")
    assert status == 200 and "BEGIN PGP PUBLIC KEY BLOCK" in key
    client.sh("install -d -m 0755 /etc/apt/keyrings && cat > /etc/apt/keyrings/mo-fleet-demo.asc", input_text=key)
    add_source(client, server, "hello")
    update = apt_update(client, "hello")
    assert update.returncode == 0 and "W:" not in update.stdout and "E:" not in update.stdout, update.stdout
    client.sh("apt-get install -y -q mo-hello mo-base-b")
    assert client.sh("mo-hello").stdout.strip() == "hello from mo.fleet"

    # HTTP view: listings yes, keys and state never; cache headers long for pool, short for indexes
    base_url = f"http://{server.name}/pub/{PROJECT}"
    status, _, _, listing = fetch(client, f"{base_url}/stores/main/")
    assert status == 200 and "mo-hello_1.0-1_all.deb" in listing
    status, _, _, listing = fetch(client, f"{base_url}/repos/")
    assert status == 200 and "hello/" in listing
    status, cache, _, _ = fetch(client, f"{base_url}/repos/hello/pool/main/mo-hello_1.0-1_all.deb")
    assert status == 200 and "max-age=2592000" in cache
    status, cache, _, _ = fetch(client, f"{base_url}/repos/hello/dists/hello/InRelease")
    assert status == 200 and "max-age=60" in cache
    for path in ("state/", "state/publish.json", "state/cache.bin", "state/lock", "disabled/",
                 "repos/hello/.gen/", "../../gnupg/demo/", "%2e%2e/%2e%2e/gnupg/demo/pubring.kbx"):
        status, _, _, body = fetch(client, f"{base_url}/{path}")
        assert status in (400, 403, 404), (path, status)
    for path in (f"/var/lib/mo-fleet/gnupg/{PROJECT}/private-keys-v1.d/",):
        status, _, _, _ = fetch(client, f"http://{server.name}{path}")
        assert status in (403, 404)
    status, _, _, listing = fetch(client, f"http://{server.name}/pub/")
    assert status == 200 and "gnupg" not in listing

    # unsigned repository: refused by apt
    server.sh(f"cd /var/lib/mo-fleet/repo/{PROJECT}/repos/unsigned/dists/unsigned && rm InRelease Release.gpg")
    add_source(client, server, "unsigned")
    refused = apt_update(client, "unsigned")
    assert refused.returncode != 0 and "not signed" in refused.stdout, refused.stdout

    # tampered Release: refused by apt, the installed package list stays as it was
    publish_v2 = catalog([{"name": "hello", "packages": ["mo-hello_1.1-1_all.deb"]}])
    up2 = run_playbook("playbooks/upload.yml", inventory, extra_vars={"upload_src": str(hello2), "upload_store": "main"})
    assert up2.rc == 0
    assert run_playbook("playbooks/publish.yml", inventory, extra_vars={"mo_fleet_catalog": publish_v2}).rc == 0
    server.sh(f"cd /var/lib/mo-fleet/repo/{PROJECT}/repos/hello/dists/hello && "
              "sed -i 's/^Label: .*/Label: evil/' InRelease Release")
    tampered = apt_update(client, "hello")
    assert tampered.returncode != 0 or "W:" in tampered.stdout, tampered.stdout
    assert "BADSIG" in tampered.stdout or "signature" in tampered.stdout.lower(), tampered.stdout
    assert "1.1-1" not in client.sh("apt-cache policy mo-hello").stdout

    # the external deployment through the caching proxy, frozen at first fetch
    url = f"{base_url}/external/debian/dists/bookworm/Release"
    for _attempt in range(3):  # the upstream mirror can be slow on a loaded machine
        status, _, cache1, body1 = fetch(client, url)
        if status == 200:
            break
    assert status == 200 and "Codename: bookworm" in body1, (status, body1[:300])
    status, _, cache2, body2 = fetch(client, url)
    assert status == 200 and cache2 == "HIT" and body2 == body1

    # the report: orphans, metadata, which deployments hold each package
    report_file = tmp_path / "repo-report.json"
    rep = run_playbook("playbooks/repo_report.yml", inventory,
                       extra_vars={"mo_fleet_catalog": publish_v2, "repo_report_file": str(report_file)})
    assert rep.rc == 0, rep.stdout[-2000:]
    data = json.loads(report_file.read_text())
    holders = {p["path"]: p["deployments"] for p in data["packages"]}
    assert holders["main/mo-hello_1.1-1_all.deb"] == ["hello"]
    assert set(data["orphans"]) == {"main/mo-hello_1.0-1_all.deb", "base/base-set/mo-base-a_1.0-1_all.deb",
                                    "base/base-set/mo-base-b_1.0-1_amd64.deb"}
    meta = next(p for p in data["packages"] if p["path"] == "main/mo-hello_1.1-1_all.deb")
    assert meta["fields"]["Maintainer"].startswith("mo.fleet tests") and meta["version"] == "1.1-1"


LOOP_PLAYBOOK = """
- name: Publish many times in a row, alternating the package list
  hosts: repo_server
  gather_facts: false
  tasks:
    - name: Publish
      mo.fleet.repo_publish:
        catalog: "{{ catalogs[item % 2] }}"
      loop: "{{ range(publishes) | list }}"
"""


def test_publishes_in_a_row_never_break_a_looping_apt_client(lab, tmp_path):
    """While a client runs apt-get update in a loop, 50 publishes never give a hash mismatch."""
    import subprocess
    server = lab.host(groups=["repo_server"])
    client = lab.host(groups=["clients"])
    a = build_deb(tmp_path / "a", "mo-loop-a")
    b = build_deb(tmp_path / "b", "mo-loop-b")
    one = catalog([{"name": "loop", "packages": ["mo-loop-a_1.0-1_all.deb"]}])
    two = catalog([{"name": "loop", "packages": ["mo-loop-a_1.0-1_all.deb", "mo-loop-b_1.0-1_all.deb"]}])
    inventory = lab.inventory(server, client, group_vars={"mo_fleet_catalog": catalog([])})
    assert run_playbook("playbooks/repo_server.yml", inventory).rc == 0
    for deb in (a, b):
        assert run_playbook("playbooks/upload.yml", inventory,
                            extra_vars={"upload_src": str(deb), "upload_store": "main"}).rc == 0
    assert run_playbook("playbooks/publish.yml", inventory, extra_vars={"mo_fleet_catalog": one}).rc == 0
    key = fetch(client, f"http://{server.name}/pub/{PROJECT}/archive-key.asc")[3]
    client.sh("install -d -m 0755 /etc/apt/keyrings && cat > /etc/apt/keyrings/mo-fleet-demo.asc", input_text=key)
    add_source(client, server, "loop")
    assert apt_update(client, "loop").returncode == 0
    loop = subprocess.Popen(
        ["podman", "exec", client.name, "sh", "-c",
         "n=0; while [ ! -e /tmp/stop ]; do n=$((n+1)); "
         "apt-get update -o Dir::Etc::SourceList=/etc/apt/sources.list.d/mo-fleet-loop.sources "
         "-o Dir::Etc::SourceParts=/nonexistent -o APT::Get::List-Cleanup=0 >/tmp/u.log 2>&1 "
         "|| { echo FAIL; cat /tmp/u.log; }; grep -E 'Hash Sum|^E:|^W:' /tmp/u.log; done; echo RUNS $n"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=labctl.podman_env())
    playbook = tmp_path / "loop.yml"
    playbook.write_text(LOOP_PLAYBOOK)
    run = run_playbook(playbook, inventory, extra_vars={"catalogs": [two, one], "publishes": 50})
    client.sh("touch /tmp/stop")
    out, _ = loop.communicate(timeout=300)
    assert run.rc == 0, run.stdout[-2000:]
    results = run.task_results(server.name, "Publish")[0]["results"]
    assert len(results) == 50 and all(r["changed"] for r in results)
    runs = int(out.strip().rsplit("RUNS", 1)[1])
    assert runs >= 5, out
    assert "FAIL" not in out and "Hash Sum" not in out and "E:" not in out, out
    # and a final update sees the last published state
    assert apt_update(client, "loop").returncode == 0
    assert "mo-loop-a" in client.sh("apt-cache policy mo-loop-a").stdout
