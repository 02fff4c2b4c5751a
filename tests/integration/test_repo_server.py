"""The repository server on fresh lab hosts: role, uploads, signed publish, a real apt client."""

import hashlib
import json
import sys
from pathlib import Path

from labhosts import run_module, run_playbook

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


def trust_server(client, server):
    """Fetch the server's public key over HTTP and install it as the clients' Signed-By keyring."""
    status, _, _, key = fetch(client, f"http://{server.name}/pub/{PROJECT}/archive-key.asc")
    assert status == 200 and "BEGIN PGP PUBLIC KEY BLOCK" in key
    client.sh("install -d -m 0755 /etc/apt/keyrings && cat > /etc/apt/keyrings/mo-fleet-demo.asc", input_text=key)


def clean_update(client, dep):
    """apt-get update of DEP's source, which must verify with no warning or error; its output."""
    update = apt_update(client, dep)
    assert update.returncode == 0 and "W:" not in update.stdout and "E:" not in update.stdout, update.stdout
    return update.stdout


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
    trust_server(client, server)
    add_source(client, server, "hello")
    clean_update(client, "hello")
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
  become: true
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
    trust_server(client, server)
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


# Runs on the repository server while a publish is under way: waits until one process holds
# the project's publish lock, then until that publish has started writing a generation aside
# (.gen/.tmp-*), and kills the process with SIGKILL right there.  Prints what it saw as JSON.
KILLER = r"""
import json, os, signal, sys, time
base, dep = sys.argv[1], sys.argv[2]
lock, gen = os.path.join(base, "state", "lock"), os.path.join(base, "repos", dep, ".gen")

def lock_holders():
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if any(os.readlink(f"/proc/{pid}/fd/{fd}") == lock for fd in os.listdir(f"/proc/{pid}/fd")):
                out.append(int(pid))
        except OSError:
            pass
    return out

def tmps():
    return sorted(n for n in os.listdir(gen) if n.startswith(".tmp-"))

print("ready", flush=True)
deadline = time.monotonic() + 600
holders = []
while not holders and time.monotonic() < deadline:
    holders = lock_holders()
    time.sleep(0.002)
seen = []
while holders and not seen and time.monotonic() < deadline:
    seen = tmps()
    if not seen and not os.path.exists(f"/proc/{holders[0]}"):
        break  # the publish ended before it wrote a generation aside
if not seen:
    print(json.dumps({"killed": False, "holders": holders}))
    sys.exit(1)

def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False

found = time.monotonic()
pid = holders[0]
cmdline = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode()
os.kill(pid, signal.SIGKILL)
latency = time.monotonic() - found
while alive(pid):
    time.sleep(0.01)
print(json.dumps({"killed": True, "pid": pid, "holders": holders, "cmdline": cmdline, "tmp_at_kill": seen,
                  "kill_latency_s": round(latency, 4), "tmp_after_kill": tmps(),
                  "dists_after_kill": os.readlink(os.path.join(base, "repos", dep, "dists"))}))
"""

# Builds COUNT real packages with dpkg-deb on the server (each with a long, varied description,
# so their Packages index is large and compressing it takes a moment).
BULK = r"""
import os, random, subprocess, sys
out, count = sys.argv[1], int(sys.argv[2])
rng = random.Random(5)
words = ["mo", "fleet", "apt", "release", "wave", "deployment", "store", "package", "index",
         "signed", "generation", "client", "server", "calendar", "canary", "rollback", "kernel"]
os.makedirs(out, exist_ok=True)
for i in range(count):
    name = f"mo-bulk-{i:04d}"
    root = f"/tmp/bulk-build/{name}"
    os.makedirs(f"{root}/DEBIAN", exist_ok=True)
    os.makedirs(f"{root}/usr/share/doc/{name}", exist_ok=True)
    with open(f"{root}/usr/share/doc/{name}/README", "w") as fh:
        fh.write(f"{name}\n")
    lines = [" " + " ".join(rng.choice(words) + str(rng.randrange(1000)) for _ in range(12)) for _ in range(40)]
    with open(f"{root}/DEBIAN/control", "w") as fh:
        fh.write(f"Package: {name}\nVersion: 1.0-1\nArchitecture: all\n"
                 f"Maintainer: mo.fleet tests <tests@example.invalid>\n"
                 f"Description: bulk test package {i}\n" + "\n".join(lines) + "\n")
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "-b", root, f"{out}/{name}_1.0-1_all.deb"],
                   check=True, capture_output=True)
print(len(os.listdir(out)))
"""

PUBLISH_PLAYBOOK = """
- name: Publish through the module
  hosts: repo_server
  gather_facts: false
  become: true
  tasks:
    - name: Publish
      mo.fleet.repo_publish:
        catalog: "{{ mo_fleet_catalog }}"
        lock_timeout: "{{ lock_timeout | default(600) }}"
"""


def test_killed_publish_keeps_the_previous_signed_generation_served(lab, tmp_path):
    """SIGKILL a real publish while it writes a generation aside: clients keep the previous
    complete, signed generation; the lock is not stale; the next publish cleans up and serves."""
    import subprocess
    # on containers.podman.podman the module runs from a file named after it (over SSH with
    # pipelining it is read from stdin), so the killer can tell the publish by its command line
    server = lab.host(groups=["repo_server"], connection="podman")
    client = lab.host(groups=["clients"])
    base = f"/var/lib/mo-fleet/repo/{PROJECT}"
    dep_dir = f"{base}/repos/bulk"
    served = build_deb(tmp_path / "served", "mo-served", files={"usr/bin/mo-served": "#!/bin/sh\necho served\n"})
    late = build_deb(tmp_path / "late", "mo-late", files={"usr/bin/mo-late": "#!/bin/sh\necho late\n"})
    small = catalog([{"name": "bulk", "packages": ["mo-served_1.0-1_all.deb"]}])
    small["package_sets"].append({"name": "bulk-set", "store": "main"})
    # the publish that gets killed: the deployment grows by one package and a set of 500
    big = json.loads(json.dumps(small))
    big["deployments"][0]["packages"].append("mo-late_1.0-1_all.deb")
    big["deployments"][0]["package_sets"] = ["bulk-set"]
    inventory = lab.inventory(server, client, group_vars={"mo_fleet_catalog": catalog([])})
    playbook = tmp_path / "publish.yml"
    playbook.write_text(PUBLISH_PLAYBOOK)

    assert run_playbook("playbooks/repo_server.yml", inventory).rc == 0
    for deb in (served, late):
        up = run_playbook("playbooks/upload.yml", inventory, extra_vars={"upload_src": str(deb), "upload_store": "main"})
        assert up.rc == 0, up.stdout[-2000:]
    assert server.sh("python3 - /root/bulk-set 500", input_text=BULK).stdout.strip() == "500"
    up = run_module(inventory, "repo_server", "mo.fleet.repo_package",
                    {"src": "/root/bulk-set", "remote_src": True, "store": "main", "project": PROJECT})
    assert up.rc == 0 and len(up.task_results(server.name)[0]["packages"]) == 500, up.stdout[-2000:]

    # generation 1: the small deployment, signed and served; the client installs from it
    first = run_playbook(playbook, inventory, extra_vars={"mo_fleet_catalog": small})
    assert first.rc == 0 and first.changed(server.name) == 1, first.stdout[-2000:]
    trust_server(client, server)
    add_source(client, server, "bulk")
    clean_update(client, "bulk")
    client.sh("apt-get install -y -q mo-served")
    assert client.sh("mo-served").stdout.strip() == "served"

    def served_state():
        return server.sh(f"cd {dep_dir} && readlink dists && sha256sum dists/bulk/InRelease dists/bulk/Release "
                         f"dists/bulk/main/binary-amd64/Packages* {base}/state/publish.json").stdout

    before = served_state()
    assert server.sh(f"ls -A {dep_dir}/.gen").stdout.split() == ["1"]

    # the killed publish
    killer = subprocess.Popen(["podman", "exec", "-i", server.name, "python3", "-", base, "bulk"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=labctl.podman_env())
    killer.stdin.write(KILLER)
    killer.stdin.close()
    assert killer.stdout.readline().strip() == "ready", killer.stderr.read()
    killed = run_playbook(playbook, inventory, extra_vars={"mo_fleet_catalog": big})
    try:
        killer.wait(timeout=60)
    finally:
        if killer.poll() is None:
            killer.kill()
    out, err = killer.stdout.read(), killer.stderr.read()
    seen = json.loads(out.strip().splitlines()[-1])
    print("killer saw:", seen)
    # the kill really happened mid-publish: the process held the publish lock, was the
    # repo_publish module, had a generation half-written aside, and never switched it in
    assert seen["killed"] and "repo_publish" in seen["cmdline"], (seen, err)
    assert seen["tmp_at_kill"] and seen["tmp_after_kill"] and seen["dists_after_kill"] == ".gen/1", seen
    assert killed.rc != 0, killed.stdout[-2000:]
    res = killed.task_results(server.name, "Publish")[0]
    assert res.get("failed") and not res.get("changed") and "deployments" not in res, res

    # served: still generation 1, byte for byte, and its state (publish.json) untouched
    assert served_state() == before
    leftovers = server.sh(f"ls -A {dep_dir}/.gen").stdout.split()
    assert "1" in leftovers and any(n.startswith(".tmp-") for n in leftovers), leftovers
    # the half-written tree is never reachable over HTTP (dot directories are denied) ...
    tmp_name = next(n for n in leftovers if n.startswith(".tmp-"))
    status = fetch(client, f"http://{server.name}/pub/{PROJECT}/repos/bulk/.gen/{tmp_name}/bulk/Release")[0]
    assert status in (403, 404), status
    # ... and the client verifies and installs from the previous generation as before
    assert "Hash Sum" not in clean_update(client, "bulk")
    client.sh("apt-get install -y -q --reinstall mo-served")
    assert "Candidate: (none)" in client.sh("apt-cache policy mo-late").stdout or \
        "mo-late" not in client.sh("apt-cache policy mo-late").stdout

    # no stale lock: it is free at once (the kernel dropped the flock with the process)
    assert server.sh(f"flock -n {base}/state/lock true", check=False).returncode == 0

    # the next publish takes the lock without waiting, removes the leftovers and serves the new list
    again = run_playbook(playbook, inventory, extra_vars={"mo_fleet_catalog": big, "lock_timeout": 5})
    assert again.rc == 0 and again.changed(server.name) == 1, again.stdout[-2000:]
    dep = again.task_results(server.name, "Publish")[0]["deployments"]["bulk"]
    assert dep["generation"] == 2 and dep["packages"] == 502, dep
    assert "main/mo-late_1.0-1_all.deb (mo-late 1.0-1 all)" in dep["added"]
    assert server.sh(f"ls -A {dep_dir}/.gen").stdout.split() == ["1", "2"]
    assert not server.sh(f"ls -A {dep_dir} | grep '^\\.dists\\.tmp-' || true").stdout.strip()
    assert server.sh(f"readlink {dep_dir}/dists").stdout.strip() == ".gen/2"
    clean_update(client, "bulk")
    client.sh("apt-get install -y -q mo-late mo-bulk-0499")
    assert client.sh("mo-late").stdout.strip() == "late"
