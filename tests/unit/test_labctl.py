"""Pure parts of the lab tool: mirror discovery, the inventory and the hosts files it writes."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "lab"))
import labctl  # noqa: E402
import labimage  # noqa: E402


def test_mirror_from_deb822_skips_security(tmp_path, monkeypatch):
    sources = tmp_path / "debian.sources"
    sources.write_text(
        "Types: deb\nURIs: http://security.example/debian-security\nSuites: bookworm-security\n"
        "Components: main\n\n"
        "Types: deb\n# a comment: with a colon\nURIs: http://mirror.example/debian\n"
        "Suites: bookworm bookworm-updates\nComponents: main\n")
    real_path = labimage.Path
    monkeypatch.setattr(labimage, "Path", lambda p: sources if p.endswith("debian.sources") else real_path(p))
    assert labctl.debian_mirror() == ("http://mirror.example/debian", sources)


def test_inventory_groups_hosts_by_the_way_they_are_reached(monkeypatch):
    monkeypatch.setattr(labctl, "host_ip", lambda name, network: "10.0.0.9")
    monkeypatch.setattr(labctl, "CONTROL_DIR", Path("/cp"))
    spec = {"network": "n", "hosts": {"a": ["web"], "b": ["db", "web"], "s": ["web"], "p": ["db"]},
            "connections": {"s": "root", "p": "podman"}, "suites": {"b": "trixie"}}
    hostvars = {}
    for host in spec["hosts"]:
        suite, connection = labctl.host_settings(spec, host)
        if connection == "podman":
            hostvars[host] = {"ansible_host": host, "ansible_connection": "containers.podman.podman"}
        else:
            hostvars[host] = labctl.ssh_hostvars(host, "n", labctl.LOGIN_USER if connection == "ssh" else "root")
    assert labctl.host_settings(spec, "b") == ("trixie", "ssh") and labctl.host_settings(spec, "a")[0] == "bookworm"
    inv = labctl.inventory(spec, hostvars)["all"]
    children = inv["children"]
    assert set(children["lab_ssh"]["hosts"]) == {"a", "b"}
    assert children["lab_ssh"]["hosts"]["a"]["ansible_user"] == "mo"
    assert children["lab_ssh"]["hosts"]["a"]["ansible_ssh_common_args"].endswith("-o ControlPath=/cp/a-%C")
    assert children["lab_root_ssh"]["hosts"]["s"]["ansible_user"] == "root"
    assert children["lab_podman"]["hosts"]["p"]["ansible_connection"] == "containers.podman.podman"
    assert set(children["web"]["hosts"]) == {"a", "b", "s"}
    assert set(children["db"]["hosts"]) == {"b", "p"}
    assert inv["vars"]["ansible_python_interpreter"] == "/usr/bin/python3"


def test_host_settings_refuse_an_unknown_suite_or_connection():
    with pytest.raises(labctl.LabError, match="suite 'sid'"):
        labctl.host_settings({"hosts": {"a": []}, "suites": {"a": "sid"}}, "a")
    with pytest.raises(labctl.LabError, match="a: connection 'telnet'"):
        labctl.host_settings({"hosts": {"a": []}, "connections": {"a": "telnet"}}, "a")


def test_suite_sources_name_the_suite_in_every_suites_field():
    text = ("Types: deb\n# bookworm snapshot\nURIs: http://m.example/debian\nSuites: bookworm bookworm-updates\n\n"
            "Types: deb\nURIs: http://m.example/debian-security\nSuites: bookworm-security\n")
    out = labimage.suite_sources(text, "trixie", "bookworm")
    assert "Suites: trixie trixie-updates\n" in out and "Suites: trixie-security\n" in out
    assert "# bookworm snapshot" in out
    legacy = "deb http://m.example/debian bookworm main\ndeb http://m.example/debian-security bookworm-security main\n"
    assert labimage.suite_sources(legacy, "trixie", "bookworm") == legacy.replace("bookworm", "trixie")


def test_write_if_changed_is_atomic_and_reports_change(tmp_path):
    target = tmp_path / "inventory.yml"
    assert labctl.write_if_changed(target, "x: 1\n") is True
    assert labctl.write_if_changed(target, "x: 1\n") is False
    assert labctl.write_if_changed(target, "x: 2\n") is True
    assert target.read_text() == "x: 2\n"
    assert not list(tmp_path.glob("*.tmp"))


def test_shipped_spec_has_the_groups_later_work_uses():
    spec = labctl.load_spec()
    groups = {g for gs in spec["hosts"].values() for g in gs}
    assert {"repo_server", "canary", "web", "db"} <= groups
    assert len([h for h, gs in spec["hosts"].items() if "repo_server" not in gs]) >= 6
    ways = {labctl.host_settings(spec, h) for h in spec["hosts"]}
    assert {c for _, c in ways} == set(labctl.CONNECTIONS)  # one host of each way at least
    assert {s for s, _ in ways} == set(labctl.SUITES)


@pytest.mark.parametrize("mirror_file", ["sources.list"])
def test_mirror_from_legacy_sources_list(tmp_path, monkeypatch, mirror_file):
    legacy = tmp_path / mirror_file
    legacy.write_text("deb http://sec.example/debian-security bookworm-security main\n"
                      "deb [arch=amd64] http://mirror.example/debian bookworm main\n")
    real_path = labimage.Path
    monkeypatch.setattr(labimage, "Path", lambda p: legacy if p.endswith("sources.list")
                        else real_path(tmp_path / "missing"))
    assert labctl.debian_mirror() == ("http://mirror.example/debian", legacy)


def test_hosts_file_text_adds_the_others_and_keeps_the_rest():
    podman_text = "127.0.0.1\tlocalhost\n10.89.0.1\thost.containers.internal\n10.89.0.2\ta a\n"
    ips = {"a": "10.89.0.2", "b": "10.89.0.3", "c": "10.89.0.4"}
    text = labctl.hosts_file_text(podman_text, "a", ips)
    assert text == podman_text + "10.89.0.3\tb\n10.89.0.4\tc\n"
    assert labctl.hosts_file_text(text, "a", ips) == text


def test_hosts_file_text_replaces_a_stale_address():
    text = "127.0.0.1\tlocalhost\n10.89.0.2\ta a\n10.89.0.9\tb\n"
    new = labctl.hosts_file_text(text, "a", {"a": "10.89.0.2", "b": "10.89.0.3"})
    assert new == "127.0.0.1\tlocalhost\n10.89.0.2\ta a\n10.89.0.3\tb\n"
    # a name only inside a longer one is not touched
    assert "10.0.0.1\tbb\n" in labctl.hosts_file_text("10.0.0.1\tbb\n", "a", {"a": "1", "b": "2"})


def test_source_hosts_reads_deb822_and_one_line_sources(tmp_path):
    deb822 = tmp_path / "debian.sources"
    deb822.write_text(
        "Types: deb\n# http://snapshot.example/archive/debian\nURIs: http://mirror.example/debian\n"
        "Suites: bookworm\nComponents: main\n\n"
        "Types: deb\nURIs: http://security.example/debian-security https://mirror.example/extra\n"
        "Suites: bookworm-security\nComponents: main\n")
    assert labctl.source_hosts(deb822) == ["mirror.example", "security.example"]
    legacy = tmp_path / "sources.list"
    legacy.write_text("# deb http://old.example/debian bookworm main\n"
                      "deb [arch=amd64] http://mirror.example:8080/debian bookworm main\n"
                      "deb-src http://src.example/debian bookworm main\n")
    assert labctl.source_hosts(legacy) == ["mirror.example", "src.example"]


def test_apt_cache_serves_only_the_given_repositories(tmp_path):
    text = labctl.apt_cache_config(["http://mirror.example/debian", "http://sec.example/debian-security"],
                                   cache_dir=tmp_path / "c", run_dir=tmp_path / "r", port=4000)
    assert "Port: 4000\n" in text and "ForceManaged: 1\n" in text
    assert f"CacheDir: {tmp_path / 'c'}\n" in text and f"PidFile: {tmp_path / 'r'}/pid\n" in text
    assert "Remap-mofleet0: http://mirror.example/debian ; http://mirror.example/debian\n" in text
    assert "Remap-mofleet1: http://sec.example/debian-security ; http://sec.example/debian-security\n" in text


def test_source_uris_are_unique_and_in_order(tmp_path):
    sources = tmp_path / "debian.sources"
    sources.write_text("URIs: http://m.example/debian/\nSuites: bookworm\n\n"
                       "URIs: http://s.example/debian-security http://m.example/debian\nSuites: x\n")
    assert labctl.source_uris(sources) == ["http://m.example/debian", "http://s.example/debian-security"]


def test_apt_cache_client_config_proxies_only_the_mirror_hosts():
    text = labctl.apt_cache_client_config(["mirror.example", "sec.example"], port=4000)
    assert text == ('Acquire::http::Proxy::mirror.example "http://host.containers.internal:4000";\n'
                    'Acquire::http::Proxy::sec.example "http://host.containers.internal:4000";\n')
