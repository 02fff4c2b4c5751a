"""The dpkg hook the target role installs never makes dpkg fail (dpkg aborts on a hook's
non-zero status), whatever the engine does, and still runs the engine when it is there."""

import subprocess
from pathlib import Path

import jinja2
import pytest
from ansible.plugins.filter.core import quote

TEMPLATE = Path(__file__).resolve().parents[2] / "roles/target/templates/dpkg-hook.cfg.j2"


def hook_lines(bin_dir):
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    env.filters["quote"] = quote
    text = env.from_string(TEMPLATE.read_text()).render(ansible_managed="managed", target_cli_bin_dir=str(bin_dir))
    return dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))


@pytest.mark.parametrize("engine", ["exit 1", "exit 3", "kill -9 $$", None])
def test_the_hook_exits_0_whatever_the_engine_does(tmp_path, engine):
    bin_dir = tmp_path / "bin dir"  # a space: the path is quoted
    bin_dir.mkdir()
    marker = tmp_path / "ran"
    if engine is not None:
        script = bin_dir / "mo-capture"
        script.write_text(f"#!/bin/sh\necho \"$@\" >> '{marker}'\n{engine}\n")
        script.chmod(0o755)
    lines = hook_lines(bin_dir)
    assert set(lines) == {"pre-invoke", "post-invoke"}
    for key, phase in (("pre-invoke", "hook pre"), ("post-invoke", "hook post")):
        run = subprocess.run(["sh", "-c", lines[key]], capture_output=True, text=True, check=False)
        assert run.returncode == 0, (key, run)
    if engine is None:
        assert not marker.exists()
    else:
        assert marker.read_text().splitlines() == ["hook pre", "hook post"]


def test_inside_an_intercepted_command_the_hook_is_not_started(tmp_path):
    """The capture of an intercepted command records its package changes itself and sets
    MO_FLEET_PACKAGES_RECORDED in the command's environment: dpkg's hook lines then start nothing."""
    from ansible_collections.mo.fleet.plugins.module_utils._capture.pkg_hook import HOOK_STEPS_ASIDE

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    marker = tmp_path / "ran"
    script = bin_dir / "mo-capture"
    script.write_text(f"#!/bin/sh\necho \"$@\" >> '{marker}'\n")
    script.chmod(0o755)
    lines = hook_lines(bin_dir)
    for env_value in ("1", None):
        env = {"PATH": "/usr/bin:/bin"}
        if env_value is not None:
            env[HOOK_STEPS_ASIDE] = env_value
        for key in ("pre-invoke", "post-invoke"):
            run = subprocess.run(["sh", "-c", lines[key]], capture_output=True, text=True, check=False, env=env)
            assert run.returncode == 0, run
        if env_value is not None:
            assert not marker.exists()
    assert marker.read_text().splitlines() == ["hook pre", "hook post"]
