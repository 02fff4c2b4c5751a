"""The client side of a staged release on real lab hosts (issue 6).

A fresh repository server (roles/repo_server, repo_package, repo_publish) serves small .debs built
with dpkg-deb; the mo.fleet.release role and playbooks/rollout.yml converge fresh clients, and the
tests compare every host's sources and packages with module_utils/_release/release.py's plan.
"""

import datetime
import json
import shutil
import subprocess
import tempfile
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from labhosts import ROOT, run_module, run_playbook

from ansible_collections.mo.fleet.plugins.module_utils._release.release import release_plan

PROJECT = "acme"
FAIL_MARKER = "/etc/mo-test-fail"


def build_deb(workdir, name, version="1.0", postinst=None, depends=None):
    """A small arch-all .deb built with dpkg-deb (optionally with a postinst script)."""
    root = Path(workdir) / f"build-{name}-{version}"
    (root / "DEBIAN").mkdir(parents=True, exist_ok=True)
    doc = root / "usr" / "share" / "doc" / name
    doc.mkdir(parents=True, exist_ok=True)
    (doc / "README").write_text(f"{name} {version}\n")
    control = (f"Package: {name}\nVersion: {version}\nArchitecture: all\n"
               f"Maintainer: mo.fleet tests <tests@example.invalid>\n"
               + (f"Depends: {depends}\n" if depends else "")
               + f"Description: test package {name}\n a package for the release tests\n")
    (root / "DEBIAN" / "control").write_text(control)
    if postinst:
        script = root / "DEBIAN" / "postinst"
        script.write_text(postinst)
        script.chmod(0o755)
    out = Path(workdir) / f"{name}_{version}_all.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "-b", str(root), str(out)],
                   check=True, capture_output=True)
    return out


RISKY_POSTINST = textwrap.dedent(f"""\
    #!/bin/sh
    set -e
    if [ "$1" = configure ] && [ -e {FAIL_MARKER} ]; then
        echo "mo-risky: {FAIL_MARKER} exists, refusing to configure" >&2
        exit 1
    fi
    exit 0
    """)


def ok(run, what):
    assert run.rc == 0, f"{what} failed (rc {run.rc}):\n{run.stdout[-6000:]}\n{run.stderr[-3000:]}"
    return run


def upload(inventory, server, deb):
    ok(run_module(inventory, server.name, "mo.fleet.repo_package",
                  {"src": str(deb), "store": "main", "project": PROJECT}), f"upload {deb.name}")


def publish(inventory):
    ok(run_playbook("playbooks/publish.yml", inventory), "publish")


UPLOAD_ALL = """\
- name: Upload the packages, one after another
  hosts: repo_server
  gather_facts: false
  become: true
  tasks:
    - name: Upload
      mo.fleet.repo_package:
        src: "{{ item }}"
        store: main
        project: "%s"
      loop: "{{ debs }}"
""" % PROJECT


def set_up_server(inventory, server, debs):
    """repo_server.yml on SERVER, then DEBS uploaded one by one in one play (one ansible start,
    not one a package), then published."""
    ok(run_playbook("playbooks/repo_server.yml", inventory, extra_vars={"repo_server_publish": False}),
       "repo_server.yml")
    play = Path(inventory).with_name("upload-all.yml")
    play.write_text(UPLOAD_ALL)
    run = ok(run_playbook(play, inventory, extra_vars={"debs": [str(d) for d in debs]}), "upload")
    assert [r["changed"] for r in run.task_results(server.name, "Upload")[0]["results"]] == [True] * len(debs)
    publish(inventory)


def host_state(host):
    """(deployments with a mo-fleet source, {package: (version, dpkg status)}) of HOST."""
    out = host.sh("ls /etc/apt/sources.list.d/; echo ---; "
                  "dpkg-query -W -f '${Package}\\t${Version}\\t${db:Status-Abbrev}\\n' 'mo-*' 2>/dev/null || true").stdout
    files, pkgs = out.split("---", 1)
    deps = sorted(f[len("mo-fleet-"):-len(".sources")] for f in files.split()
                  if f.startswith("mo-fleet-") and f.endswith(".sources"))
    packages = {}
    for line in pkgs.strip().splitlines():
        name, version, status = line.split("\t")
        if status.strip() != "un":
            packages[name] = (version, status.strip())
    return deps, packages


def attributes(host):
    attrs = {"all", f"HST-{host.name}", *host.groups}
    attrs.update(host.hostvars.get("mo_fleet_attributes", []))
    return sorted(attrs)


def read_json(path):
    return json.loads(Path(path).read_text()) if Path(path).exists() else None


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]


def chromium(url, *args):
    """Run headless Chromium on URL with a fresh profile; return its stdout."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    assert binary, "headless Chromium is needed for the status page test (apt-get install -y chromium)"
    with tempfile.TemporaryDirectory(prefix="mo-fleet-chromium-") as profile:
        proc = subprocess.run([binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args, url],
                              capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def container_ip(host):
    out = subprocess.run(["podman", "inspect", host.name, "--format",
                          "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}"],
                         capture_output=True, text=True, check=True).stdout.split()
    return out[0]


def role_playbook(tmp_path):
    path = tmp_path / "sync.yml"
    path.write_text(textwrap.dedent("""\
        - name: Sync the clients
          hosts: all:!repo_server
          gather_facts: false
          become: true
          roles:
            - role: mo.fleet.release
        """))
    return path


def test_sync_record_is_written_on_the_controller_without_reaching_the_host(tmp_path):
    # mo.fleet.sync_record never connects: its host here does not even exist
    inventory = tmp_path / "inventory.yml"
    inventory.write_text("all:\n  hosts:\n    web1:\n      ansible_host: mo-t-no-such-host\n"
                         "      ansible_connection: ssh\n")
    playbook = tmp_path / "record.yml"
    playbook.write_text(textwrap.dedent("""\
        - name: Record a sync
          hosts: web1
          gather_facts: false
          tasks:
            - name: Write the record
              mo.fleet.sync_record:
                dir: "{{ reports }}"
                record: {host: "{{ inventory_hostname }}", time: "2026-11-29T09:30:00Z", date: "2026-12-07",
                         status: ok, deployments: [base]}
              register: written
            - name: Show it
              ansible.builtin.debug:
                var: written
        """))
    reports = tmp_path / "reports"
    run = run_playbook(playbook, inventory, extra_vars={"reports": str(reports)}, check=True)
    assert run.rc == 0 and run.changed("web1") == 0, run.stdout[-3000:]
    would = run.task_results("web1", "Write the record")[0]
    assert would["written"] == [] and would["path"] == str(reports / "sync" / "web1.json")
    assert not reports.exists()
    run = ok(run_playbook(playbook, inventory, extra_vars={"reports": str(reports)}), "record")
    assert run.changed("web1") == 0
    history = reports / "sync" / "history" / "web1" / "2026-11-29T093000Z-2026-12-07.json"
    assert run.task_results("web1", "Write the record")[0]["written"] == [str(reports / "sync" / "web1.json"), str(history)]
    assert read_json(history)["deployments"] == ["base"] == read_json(reports / "sync" / "web1.json")["deployments"]
    # a record naming its host with a path: one sentence, nothing written
    playbook.write_text(playbook.read_text().replace('host: "{{ inventory_hostname }}"', 'host: "../../etc"'))
    shutil.rmtree(reports)
    run = run_playbook(playbook, inventory, extra_vars={"reports": str(reports)})
    assert run.rc != 0
    failure = run.task_results("web1", "Write the record")[0]
    assert failure["msg"].startswith("sync record: field 'host' must be a non-empty string without '/'"), failure
    assert not reports.exists()


# ------------------------------------------------------------------------------------------
# One client: check mode, convergence, idempotence, defaults, an unreachable server
# ------------------------------------------------------------------------------------------

def test_release_role_converges_one_host(lab, tmp_path):
    debs = [build_deb(tmp_path, "mo-base"), build_deb(tmp_path, "mo-extra"),
            build_deb(tmp_path, "mo-old"), build_deb(tmp_path, "mo-tool")]
    catalog = {
        "project": {"name": PROJECT, "architectures": ["amd64"]},
        "stores": [{"name": "main"}],
        "deployments": [
            {"name": "base", "start_date": "2026-01-05", "included_attributes": ["all"],
             "packages": ["main/mo-base_1.0_all.deb", "main/mo-extra_1.0_all.deb"],
             "packages_to_install": ["mo-base"],
             "default_included_packages": ["mo-extra"], "default_excluded_packages": ["mo-old"]},
            {"name": "tools", "start_date": "2026-01-07", "included_attributes": ["all"],
             "packages": ["main/mo-tool_1.0_all.deb"], "packages_to_install": ["mo-tool"]},
        ],
    }
    server, client = lab.hosts_side_by_side(["repo_server"], ["web"])
    reports = tmp_path / "reports"
    inventory = lab.inventory(server, client, group_vars={
        "mo_fleet_catalog": catalog, "mo_fleet_reports_dir": str(reports), "mo_fleet_today": "2026-01-05"})
    set_up_server(inventory, server, debs)
    subprocess.run(["podman", "cp", str(debs[2]), f"{client.name}:/tmp/mo-old.deb"], check=True)
    client.sh("dpkg -i /tmp/mo-old.deb")
    playbook = role_playbook(tmp_path)

    # check mode: reports the source and the package, changes nothing, writes no record
    run = ok(run_playbook(playbook, inventory, check=True, diff=True), "check run")
    sync = run.task_results(client.name, "mo.fleet.release : Sync sources and packages")[0]
    assert sync["changed"] and "mo-base" in sync["installed"], sync
    assert sync["deployments"] == ["base"]
    assert host_state(client) == ([], {"mo-old": ("1.0", "ii")})
    assert not (reports / "sync" / f"{client.name}.json").exists()

    # real run: one .sources with Signed-By, the key stored, mo-base installed, a record written
    run = ok(run_playbook(playbook, inventory), "first run")
    sources = client.read("/etc/apt/sources.list.d/mo-fleet-base.sources")
    # the role addresses the server as the inventory reaches it (ansible_host, else its name)
    address = server.hostvars.get("ansible_host", server.name)
    assert f"URIs: http://{address}/pub/{PROJECT}/repos/base" in sources
    assert "Suites: base" in sources
    assert f"Signed-By: /etc/apt/keyrings/mo-fleet-{PROJECT}.asc" in sources
    assert "BEGIN PGP PUBLIC KEY BLOCK" in client.read(f"/etc/apt/keyrings/mo-fleet-{PROJECT}.asc")
    assert client.sh("stat -c %a /etc/apt/sources.list.d/mo-fleet-base.sources").stdout.strip() == "644"
    deps, pkgs = host_state(client)
    assert deps == ["base"] and pkgs["mo-base"] == ("1.0", "ii") and "mo-extra" not in pkgs
    # installed from the signed repository of its deployment
    assert f"http://{address}/pub/{PROJECT}/repos/base base/main" in client.sh("apt-cache policy mo-base").stdout
    record = read_json(reports / "sync" / f"{client.name}.json")
    assert record["status"] == "ok" and record["deployments"] == ["base"]
    assert record["installed"] == ["mo-base=1.0"] and record["date"] == "2026-01-05"

    # second run: nothing changes
    run = ok(run_playbook(playbook, inventory), "second run")
    assert run.changed(client.name) == 0, run.stdout[-4000:]

    # apply the defaults: mo-extra installed, mo-old removed; then idempotent
    run = ok(run_playbook(playbook, inventory, extra_vars={"mo_fleet_apply_defaults": True}), "defaults run")
    deps, pkgs = host_state(client)
    assert pkgs.get("mo-extra") == ("1.0", "ii") and "mo-old" not in pkgs, pkgs
    run = ok(run_playbook(playbook, inventory, extra_vars={"mo_fleet_apply_defaults": True}), "defaults rerun")
    assert run.changed(client.name) == 0

    # an upgrade published on the server reaches the host (installed packages the deployment provides)
    inv2 = lab.inventory(server, client, group_vars={
        "mo_fleet_catalog": {**catalog, "deployments": [
            {**catalog["deployments"][0], "packages": ["main/mo-base_1.1_all.deb", "main/mo-extra_1.0_all.deb"]},
            catalog["deployments"][1]]},
        "mo_fleet_reports_dir": str(reports), "mo_fleet_today": "2026-01-05"})
    upload(inv2, server, build_deb(tmp_path, "mo-base", "1.1"))
    publish(inv2)
    ok(run_playbook(playbook, inv2), "upgrade run")
    assert host_state(client)[1]["mo-base"] == ("1.1", "ii")
    assert read_json(reports / "sync" / f"{client.name}.json")["upgraded"] == ["mo-base=1.0->1.1"]

    # the server cannot be reached: error recorded, host failed, nothing else changed
    before = host_state(client)
    run = run_playbook(playbook, inv2, extra_vars={"mo_fleet_today": "2026-01-07",
                                                   "mo_fleet_repo_url": "http://mo-t-no-such-host"})
    assert run.rc != 0 and run.failed(client.name)
    assert host_state(client) == before
    record = read_json(reports / "sync" / f"{client.name}.json")
    assert record["status"] == "error" and record["planned"] == ["base", "tools"], record
    assert "mo-t-no-such-host" in record["message"] and record["deployments"] == ["base"]
    assert len(list((reports / "sync" / "history" / client.name).glob("*.json"))) >= 6

    # the day tools starts: a second source, mo-tool installed
    ok(run_playbook(playbook, inv2, extra_vars={"mo_fleet_today": "2026-01-07"}), "tools run")
    deps, pkgs = host_state(client)
    assert deps == ["base", "tools"] and pkgs["mo-tool"] == ("1.0", "ii")
    # back in time: tools is no longer available, its source goes (the package stays)
    ok(run_playbook(playbook, inv2), "earlier day run")
    assert host_state(client)[0] == ["base"]

    # the status site: built on the controller, served by the repository server at /status/
    (reports / "release-state.json").write_text(json.dumps({"version": 1, "halted": {
        "tools": {"failed": 1, "total": 1, "threshold": 0, "hosts": [client.name], "date": "2026-01-07"}}}))
    ok(run_playbook("playbooks/report.yml", inv2), "report")
    assert (reports / "status" / "index.html").exists()
    served = client.sh(f"python3 -c \"import urllib.request; print(urllib.request.urlopen('http://{server.name}/status/').read().decode())\"").stdout
    assert f'data-host="{client.name}" data-status="ok"' in served
    status = json.loads(client.sh(f"python3 -c \"import urllib.request; print(urllib.request.urlopen('http://{server.name}/status/status.json').read().decode())\"").stdout)
    assert status["halted"]["tools"]["hosts"] == [client.name]
    assert "main/mo-old_1.0_all.deb" in status["orphans"] and "main/mo-base_1.0_all.deb" in status["orphans"]

    # as a person sees it: headless Chromium loads the page from the server, a screenshot is kept
    url = f"http://{container_ip(server)}/status/"
    dom = chromium(url, "--dump-dom")
    assert "mo.fleet status" in dom and f'data-host="{client.name}" data-status="ok"' in dom
    assert 'data-halted="tools"' in dom and 'data-deployment="tools" data-state="halted"' in dom
    assert 'data-path="main/mo-old_1.0_all.deb" data-orphan="yes"' in dom
    assert '<svg class="chart"' in dom and 'data-deployment="base"' in dom
    shots = ROOT / "tests" / "output"
    shots.mkdir(parents=True, exist_ok=True)
    shot = shots / "release-status-page.png"
    shot.unlink(missing_ok=True)
    chromium(url, f"--screenshot={shot}", "--window-size=1280,1800", "--hide-scrollbars")
    assert shot.exists() and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10000


# ------------------------------------------------------------------------------------------
# Six clients in overlapping groups, two working weeks of rollouts, a halt and a resume
# ------------------------------------------------------------------------------------------

MON1 = datetime.date(2026, 12, 7)  # a Monday
HOLIDAY = "2026-12-16"             # Wednesday of the second week


def fleet_catalog():
    return {
        "project": {"name": PROJECT, "architectures": ["amd64"]},
        "holidays": [HOLIDAY],
        "halt_after_failures": 0,
        "stores": [{"name": "main"}],
        "schedules": [{"name": "waves", "delays": [
            {"delay": 0, "attributes": ["canary"]},
            {"delay": 2, "attributes": ["web"]},
            {"delay": 3, "attributes": ["db"], "duration": 3},
        ]}],
        "deployments": [
            {"name": "base", "start_date": MON1.isoformat(), "included_attributes": ["all"],
             "packages": ["main/mo-base_1.0_all.deb"], "packages_to_install": ["mo-base"]},
            {"name": "tools", "start_date": MON1.isoformat(), "schedule": "waves",
             "excluded_attributes": ["no-tools"],
             "packages": ["main/mo-tool_1.0_all.deb", "main/mo-old_1.0_all.deb"],
             "packages_to_install": ["mo-tool"], "packages_to_remove": ["mo-old"]},
            {"name": "risky", "start_date": (MON1 + datetime.timedelta(days=2)).isoformat(),
             "schedule": "waves", "packages": ["main/mo-risky_1.0_all.deb"],
             "packages_to_install": ["mo-risky"]},
            {"name": "vip", "start_date": (MON1 + datetime.timedelta(days=3)).isoformat(),
             "included_attributes": ["vip"], "packages": ["main/mo-vip_1.0_all.deb"],
             "packages_to_install": ["mo-vip"]},
        ],
    }


def expected_packages(plan, fixed_risky):
    """Which mo-* packages a host with deployments PLAN must have fully installed."""
    want = {"mo-base": "base" in plan, "mo-tool": "tools" in plan, "mo-vip": "vip" in plan,
            "mo-risky": "risky" in plan and fixed_risky}
    return {name for name, present in want.items() if present}


# The days the test rolls out on. A day whose plan is the day before's for every host (the second
# Tuesday of week one, the second Friday, the weekend, the Monday after it) proves nothing the
# release rule's unit tests do not, so it is not run, with two exceptions kept for what they show:
# Friday of week one (the web wave would have had risky: the halt holds it back) and the holiday.
# A day where nothing is due must change nothing, which stands for the idempotent rerun (the
# rerun of the last day runs when no such day came). Rolled out on: day 0 (canaries get tools), 2 (risky starts, the
# canaries fail, risky halts; web gets tools), 3 (db gets tools, db2 vip), 4 (held back), 8 (resume,
# check mode, risky resumes), 9 (the holiday), 10.
ROLLOUT_DAYS = (0, 2, 3, 4, 8, 9, 10)
RESUME_DAY = 8


def states(hosts):
    """host_state of every one of HOSTS (by name), read side by side."""
    with ThreadPoolExecutor(len(hosts)) as pool:
        return dict(zip((h.name for h in hosts), pool.map(host_state, hosts)))


@pytest.mark.long
def test_rollout_two_weeks_halt_and_resume(lab, tmp_path):
    debs = [build_deb(tmp_path, "mo-base"), build_deb(tmp_path, "mo-tool"), build_deb(tmp_path, "mo-old"),
            build_deb(tmp_path, "mo-risky", postinst=RISKY_POSTINST), build_deb(tmp_path, "mo-vip")]
    groups = [["repo_server"], ["canary", "web"], ["canary", "db"], ["web"], ["web", "db"], ["db"], ["db"]]
    server, canary1, canary2, web1, web2, db1, db2 = lab.hosts_side_by_side(*groups)
    db2.hostvars["mo_fleet_attributes"] = ["vip", "no-tools"]
    clients = [canary1, canary2, web1, web2, db1, db2]
    catalog = fleet_catalog()
    reports = tmp_path / "reports"
    inventory = lab.inventory(server, *clients, group_vars={
        "mo_fleet_catalog": catalog, "mo_fleet_reports_dir": str(reports)})
    set_up_server(inventory, server, debs)

    def prepare(host):  # mo-old is on every host ('tools' removes it); mo-risky's postinst fails on the canaries
        subprocess.run(["podman", "cp", str(debs[2]), f"{host.name}:/tmp/mo-old.deb"], check=True)
        host.sh("dpkg -i /tmp/mo-old.deb" + (f" && touch {FAIL_MARKER}" if host in (canary1, canary2) else ""))
    with ThreadPoolExecutor(len(clients)) as pool:
        list(pool.map(prepare, clients))
    attrs = {h.name: attributes(h) for h in clients}
    state_file = reports / "release-state.json"

    def rollout(day, check=False):
        return run_playbook("playbooks/rollout.yml", inventory, check=check,
                            extra_vars={"mo_fleet_today": day.isoformat(),
                                        "rollout_max_fail_percentage": 50})

    def halted():
        state = read_json(state_file)
        return state["halted"] if state else {}

    fixed = False
    days = [MON1 + datetime.timedelta(days=n) for n in ROLLOUT_DAYS]
    resume_day = MON1 + datetime.timedelta(days=RESUME_DAY)
    now = states(clients)
    previous_plan = None
    unchanged_days = []
    for day in days:
        if day == resume_day:  # second Tuesday: fix the canaries, resume risky
            assert "risky" in halted()
            for host in (canary1, canary2):
                host.sh(f"rm -f {FAIL_MARKER}")
            fixed = True
            run = ok(run_playbook("playbooks/resume.yml", inventory, extra_vars={"resume": "risky"}), "resume")
            assert halted() == {}
            assert "risky" not in json.loads(server.read("/var/lib/mo-fleet/www/status/release-state.json"))["halted"]
            # check mode: reports risky for web1, changes nothing
            state_before = state_file.read_text()
            run = ok(rollout(day, check=True), f"check rollout {day}")
            assert states(clients) == now
            assert state_file.read_text() == state_before
            sync = [t for play in run.result["plays"] for t in play["tasks"]
                    if t["task"]["name"].endswith("Sync sources and packages") and web1.name in t["hosts"]]
            assert sync and sync[0]["hosts"][web1.name]["changed"], sync
            assert "risky" in sync[0]["hosts"][web1.name]["new_deployments"]
            assert "mo-risky" in sync[0]["hosts"][web1.name]["installed"]
        already = {name: deps for name, (deps, _pkgs) in now.items()}  # as the last day left them
        halted_before = halted()  # what the role sees (no later batch is due on a halting day here)
        run = rollout(day)
        ok(run, f"rollout {day}")
        plan = release_plan(catalog, attrs, day, halted=halted_before, already=already)
        now = states(clients)
        for host in clients:
            deps, pkgs = now[host.name]
            assert deps == plan[host.name], (day, host.groups, deps, plan[host.name])
            installed = {n for n, (_v, status) in pkgs.items() if status == "ii"}
            want = expected_packages(plan[host.name], fixed or host not in (canary1, canary2))
            assert want <= installed, (day, host.groups, installed, want)
            assert ("mo-old" in installed) == ("tools" not in plan[host.name]), (day, host.groups, installed)
            if "risky" in plan[host.name] and not want >= {"mo-risky"}:
                assert pkgs["mo-risky"][1] != "ii"  # unpacked, postinst failed
            record = read_json(reports / "sync" / f"{host.name}.json")
            assert record["date"] == day.isoformat() and record["deployments"] == plan[host.name]
        if plan == previous_plan and not halted_before:  # nothing due: the rollout changes nothing
            for host in clients:
                assert run.changed(host.name) == 0, (day, host.groups, run.stdout[-4000:])
            unchanged_days.append(day)
        previous_plan = plan
        if day == MON1 + datetime.timedelta(days=2):  # the canaries fail on risky: halted
            assert "risky" in halted(), run.stdout[-3000:]
            assert sorted(halted()["risky"]["hosts"]) == sorted([canary1.name, canary2.name])
            for host in (canary1, canary2):
                record = read_json(reports / "sync" / f"{host.name}.json")
                assert record["status"] == "error" and record["failed_deployments"] == ["risky"], record
            assert "risky" in json.loads(server.read("/var/lib/mo-fleet/www/status/release-state.json"))["halted"]
        if MON1 + datetime.timedelta(days=2) <= day < resume_day:
            for host in (web1, web2, db1, db2):  # later waves untouched by the halted deployment
                assert "risky" not in now[host.name][0], (day, host.groups)
        if day == MON1 + datetime.timedelta(days=4):  # web hosts would have had risky today
            unhalted = release_plan(catalog, attrs, day)
            assert "risky" in unhalted[web1.name]

    assert any(d.isoformat() == HOLIDAY for d in days)
    if not unchanged_days:  # no day had nothing due: an idempotent rerun of the last day
        run = ok(rollout(days[-1]), "rerun")
        for host in clients:
            assert run.changed(host.name) == 0, (host.groups, run.stdout[-4000:])
    # by the end every host got what the unhalted rule gives it
    final = release_plan(catalog, attrs, days[-1])
    assert {name: deps for name, (deps, _pkgs) in now.items()} == final
    assert "risky" in final[db1.name] and "vip" in final[db2.name] and "tools" not in final[db2.name]
