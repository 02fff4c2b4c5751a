"""playbooks/plan.yml on the controller: printed counts and the HTML page equal release_timeline.

No lab containers are needed: plan.yml runs on the implicit localhost and only reads inventory data
(the inventory hosts are never contacted).
"""

import datetime
import json
from html.parser import HTMLParser

import yaml

from labhosts import run_playbook

from ansible_collections.mo.fleet.plugins.module_utils._release.release import release_timeline
from ansible_collections.mo.fleet.plugins.module_utils._release.release_report import timeline_text

PRINT_TASK = "Print hosts per deployment and day"

CATALOG = {
    "project": {"name": "lab", "architectures": ["amd64", "all"]},
    "holidays": ["2026-12-08"],
    "stores": [{"name": "main"}],
    "schedules": [{"name": "normal", "description": "canaries, web, then everyone", "delays": [
        {"delay": 0, "attributes": ["canary"]},
        {"delay": 2, "attributes": ["web"], "duration": 2},
        {"delay": 4, "attributes": ["all"]},
    ]}],
    "deployments": [
        {"name": "firefox-12", "start_date": "2026-12-04", "schedule": "normal", "store": "main",
         "excluded_attributes": ["HST-db2"], "packages_to_install": ["hello"]},
        {"name": "subnet-tools", "start_date": "2026-12-06", "included_attributes": ["NET-10.77.0.0/16"]},
        {"name": "retired", "start_date": "2026-12-01", "enabled": False, "included_attributes": ["all"]},
    ],
}

ETH0 = {"device": "eth0", "ipv4": {"address": "10.77.3.4", "netmask": "255.255.0.0", "network": "10.77.0.0",
                                   "prefix": "16"}}
GROUPS = {"canary": ["canary1", "canary2"], "web": ["web1", "web2", "canary2"], "db": ["db1", "db2"]}
HOSTVARS = {"canary1": {}, "canary2": {}, "web1": {"mo_fleet_attributes": ["CTX-SHOP"]}, "web2": {},
            "db1": {"ansible_interfaces": ["eth0"], "ansible_eth0": ETH0}, "db2": {}}


def expected_hosts():
    """Attributes written by hand from the inventory below (not by the code under test)."""
    out = {}
    for host, hv in HOSTVARS.items():
        attrs = {"all", f"HST-{host}"} | {g for g, members in GROUPS.items() if host in members}
        attrs |= set(hv.get("mo_fleet_attributes", []))
        if host == "db1":
            attrs.add("NET-10.77.0.0/16")
        out[host] = sorted(attrs)
    return out


def write_inventory(path, catalog="default"):
    catalog = CATALOG if catalog == "default" else catalog
    inventory = {"all": {
        "vars": {"mo_fleet_catalog": catalog} if catalog is not None else {},
        "hosts": {h: dict(hv, ansible_connection="local") for h, hv in HOSTVARS.items()},
        "children": {g: {"hosts": {h: None for h in members}} for g, members in GROUPS.items()},
    }}
    path.write_text(yaml.safe_dump(inventory, sort_keys=False))
    return path


class Cells(HTMLParser):
    """Collects the count cells and per-day host lists of the page."""

    def __init__(self):
        super().__init__()
        self.counts, self.hosts, self.tags, self.having = {}, {}, set(), {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.add(tag)
        if tag == "td" and "data-count" in attrs:
            self.counts[(attrs["data-deployment"], attrs["data-day"])] = int(attrs["data-count"])
        if tag == "details":
            self.current = attrs["data-deployment"]
        if tag == "li" and "data-added" in attrs:
            having = self.having.setdefault(self.current, set())
            having |= set(attrs["data-added"].split())
            having -= set(attrs["data-removed"].split())
            assert len(having) == int(attrs["data-count"])
            self.hosts[(self.current, attrs["data-day"])] = sorted(having)


def printed_lines(run):
    results = run.task_results("localhost", PRINT_TASK)
    assert results, run.stdout[-3000:] + run.stderr[-3000:]
    return results[0]["msg"]


def test_plan_prints_and_charts_the_timeline(tmp_path):
    inventory = write_inventory(tmp_path / "inventory.yml")
    html = tmp_path / "out" / "plan.html"
    run = run_playbook("playbooks/plan.yml", inventory,
                       extra_vars={"plan_start": "2026-12-03", "plan_end": "2026-12-16", "plan_html": str(html)})
    assert run.rc == 0, run.stdout[-3000:] + run.stderr[-3000:]

    expected = release_timeline(CATALOG, expected_hosts(), "2026-12-03", "2026-12-16")
    lines = printed_lines(run)
    assert lines == timeline_text(expected)
    assert len(lines) == 3 * 14
    # spot checks written by hand: Friday canaries, web after a Tuesday holiday, everyone but db2
    assert "firefox-12 2026-12-04 Fri: 2 host(s): canary1, canary2" in lines
    assert "firefox-12 2026-12-08 Tue: 2 host(s): canary1, canary2" in lines
    assert "firefox-12 2026-12-10 Thu: 4 host(s): canary1, canary2, web1, web2" in lines
    assert "firefox-12 2026-12-11 Fri: 5 host(s): canary1, canary2, db1, web1, web2" in lines
    assert "subnet-tools 2026-12-06 Sun: 1 host(s): db1" in lines
    assert "retired 2026-12-16 Wed: 0 host(s)" in lines

    page = html.read_text()
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page
    assert "src=" not in page and "href=" not in page and "@import" not in page
    cells = Cells()
    cells.feed(page)
    assert not {"script", "link", "img", "iframe"} & cells.tags
    assert cells.counts == {(dep, day): len(hosts) for dep, row in expected.items() for day, hosts in row.items()}
    assert cells.hosts  # the days on which hosts get a deployment, with the hosts having it then
    for (dep, day), hosts in cells.hosts.items():
        assert hosts == expected[dep][day]
    assert cells.hosts[("firefox-12", "2026-12-11")] == ["canary1", "canary2", "db1", "web1", "web2"]

    again = run_playbook("playbooks/plan.yml", inventory,
                         extra_vars={"plan_start": "2026-12-03", "plan_end": "2026-12-16", "plan_html": str(html)})
    assert again.rc == 0 and again.changed("localhost") == 0
    assert html.read_text() == page


def test_plan_defaults_to_today_plus_14_days_and_reads_a_catalog_file(tmp_path):
    inventory = write_inventory(tmp_path / "inventory.yml", catalog=None)
    catalog_file = tmp_path / "catalog.yml"
    today = datetime.date.today()
    catalog = json.loads(json.dumps(CATALOG))
    catalog["deployments"][0]["start_date"] = today.isoformat()
    catalog_file.write_text(yaml.safe_dump({"mo_fleet_catalog": catalog}))
    html = tmp_path / "plan.html"
    run = run_playbook("playbooks/plan.yml", inventory,
                       extra_vars={"catalog_file": str(catalog_file), "plan_html": str(html)})
    assert run.rc == 0, run.stdout[-3000:] + run.stderr[-3000:]
    end = today + datetime.timedelta(days=14)
    expected = release_timeline(catalog, expected_hosts(), today, end)
    assert printed_lines(run) == timeline_text(expected)
    assert html.exists()


def test_bad_catalog_fails_with_one_sentence_and_writes_nothing(tmp_path):
    catalog = json.loads(json.dumps(CATALOG))
    catalog["schedules"][0]["delays"][1]["duration"] = 0
    inventory = write_inventory(tmp_path / "inventory.yml", catalog)
    html = tmp_path / "plan.html"
    run = run_playbook("playbooks/plan.yml", inventory, extra_vars={"plan_html": str(html)})
    assert run.rc != 0
    sentence = ("schedule 'normal' (used by deployment 'firefox-12'): field 'delays[1].duration': "
                "must be at least 1, not 0.")
    task = "Validate the catalog (one sentence naming the deployment and field on error)"
    failed = [r for r in run.task_results("localhost", task) if r.get("failed")]
    assert failed and sentence in failed[0]["msg"]
    assert not html.exists()


def test_missing_catalog_is_one_sentence(tmp_path):
    inventory = write_inventory(tmp_path / "inventory.yml", catalog=None)
    run = run_playbook("playbooks/plan.yml", inventory, extra_vars={"plan_html": str(tmp_path / "p.html")})
    assert run.rc != 0
    failed = run.task_results("localhost", "mo.fleet.common : Fail when no catalog was found")
    assert failed and failed[0]["msg"].startswith("No release catalog: define mo_fleet_catalog")
