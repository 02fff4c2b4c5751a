"""The target role leaves a host ready for mo.fleet."""


def test_packages_installed(host):
    for name in ("python3-apt", "strace"):
        assert host.package(name).is_installed, name


def test_state_dir_is_owned_by_root_and_not_writable_by_others(host):
    state = host.file("/var/lib/mo-fleet")
    assert state.is_directory
    assert state.user == "root" and state.group == "root"
    assert state.mode == 0o755


def test_systemd_is_pid_one(host):
    assert host.run("readlink /proc/1/exe").stdout.strip().endswith("systemd")
