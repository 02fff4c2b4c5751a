"""Every capture command line the docs show delivers the whole command, through the shell's
and ansible-playbook's own parsing; the quoting trap (-e capture_cmd='a b c', which Ansible
cuts at the first space) is refused by the playbook with one sentence.

Each line runs a copy of playbooks/capture.yml whose tasks stop after its argument checks and
print the variables the capture task would get: the real play, the real checks, the real
ansible-playbook, nothing captured.
"""

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
DOCS = ["README.md", "docs/capture.md", "docs/renderers.md", "playbooks/capture.yml"]
HOSTS = ("web1", "h1", "HOST")


def command_lines():
    """(file, line) of each ansible-playbook ... capture.yml command line in DOCS, continuations joined."""
    out = []
    for rel in DOCS:
        text = (ROOT / rel).read_text()
        if rel.endswith(".yml"):
            text = "\n".join(re.sub(r"^#\s?", "", ln) for ln in text.splitlines() if ln.startswith("#"))
        text = re.sub(r"\\\n\s*", " ", text)
        for line in text.splitlines():
            line = line.strip()
            if line.startswith("ansible-playbook") and "playbooks/capture.yml" in line:
                out.append((rel, line))
    return out


def drop_optional_brackets(line):
    """'[-e x=1]' -> '-e x=1': the docs' optional parts, run too (brackets inside quotes stay)."""
    out, quote, depth = [], None, []
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "[" and line[i + 1:i + 2] == "-" and (i == 0 or line[i - 1] == " "):
            depth.append(i)
            continue
        elif ch == "]" and depth:
            depth.pop()
            continue
        out.append(ch)
    return "".join(out)


def intended(line):
    """What the doc line means to capture: ('cmd', text) or ('argv', list), read from its text."""
    m = re.search(r'"capture_cmd":\s*"((?:[^"\\]|\\.)*)"', line)
    if m:
        return "cmd", json.loads(f'"{m.group(1)}"')
    m = re.search(r'"capture_argv":\s*(\[[^\]]*\])', line)
    if m:
        return "argv", json.loads(m.group(1))
    m = re.search(r"""capture_cmd=["']+([^"']+)["']""", line)
    if m:
        return "cmd", m.group(1)
    raise AssertionError(f"no capture command in {line!r}")


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    """Run argv (after 'ansible-playbook') against the checks of the real capture.yml."""
    tmp = tmp_path_factory.mktemp("capture-lines")
    play = yaml.safe_load((ROOT / "playbooks" / "capture.yml").read_text())
    tasks = play[0]["tasks"]
    stop = next(i for i, t in enumerate(tasks) if "mo.fleet.capture" in t)
    assert stop >= 1 and all("ansible.builtin.assert" in t for t in tasks[:stop])
    play[0]["tasks"] = tasks[:stop] + [{"name": "Probe", "ansible.builtin.debug": {"msg": "MOFLEET-PROBE {{ {"
                                        "'cmd': capture_cmd | default(None), 'argv': capture_argv | default(None),"
                                        "'name': capture_name | default(None)} | to_json }}"}}]
    (tmp / "playbooks").mkdir()
    (tmp / "playbooks" / "capture.yml").write_text(yaml.safe_dump(play))
    (tmp / "inventory").write_text("".join(f"{h} ansible_connection=local ansible_python_interpreter={sys.executable}\n"
                                           for h in HOSTS))
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", ANSIBLE_RETRY_FILES_ENABLED="0",
               ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0")

    def run(args):
        args = list(args)
        if "-i" in args:
            args[args.index("-i") + 1] = str(tmp / "inventory")
        else:
            args[:0] = ["-i", str(tmp / "inventory")]
        proc = subprocess.run([str(ANSIBLE_PLAYBOOK)] + args, cwd=tmp, env=env, capture_output=True, text=True,
                              timeout=120)
        seen = []
        for m in re.finditer(r'"msg": "MOFLEET-PROBE (.*)"\s*$', proc.stdout, re.M):
            seen.append(json.loads(json.loads(f'"{m.group(1)}"')))
        return proc, seen
    return run


LINES = command_lines()


def test_the_docs_show_capture_command_lines():
    files = {rel for rel, _ in LINES}
    assert {"README.md", "docs/capture.md", "playbooks/capture.yml"} <= files and len(LINES) >= 6


@pytest.mark.parametrize("rel,line", LINES, ids=[f"{rel}:{i}" for i, (rel, _) in enumerate(LINES)])
def test_each_documented_command_line_delivers_the_whole_command(probe, rel, line):
    argv = shlex.split(drop_optional_brackets(line))  # as the shell hands it over
    assert argv[0] == "ansible-playbook"
    proc, seen = probe(argv[1:])
    assert proc.returncode == 0, f"{rel}: {line}\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
    assert seen, f"{rel}: {line}: the probe did not run"
    kind, want = intended(line)
    for got in seen:
        assert got[kind] == want, f"{rel}: {line} delivers {got[kind]!r}, not {want!r}"
        assert got["name"] in (None, "nginx", "memcached", "hello")


@pytest.mark.parametrize("args", [
    ["-e", "capture_cmd=apt-get install -y nginx", "-e", "capture_name=nginx"],   # -e capture_cmd='apt-get install -y nginx'
    ["-e", "capture_cmd=apt-get install -y nginx capture_name=nginx"],
    ["-e", "capture_name=nginx", "-e", "capture_cmd=make install"],
])
def test_a_command_cut_at_a_space_is_refused_with_how_to_quote_it(probe, args):
    proc, seen = probe(["playbooks/capture.yml"] + args)
    assert proc.returncode != 0 and not seen
    msg = re.search(r'"msg": "(An -e option(?:[^"\\]|\\.)*)"', proc.stdout)
    assert msg, proc.stdout[-2000:]
    text = json.loads(f'"{msg.group(1)}"')
    assert text.endswith(".") and "\n" not in text
    assert """-e '{"capture_cmd": "apt-get install -y nginx"}'""" in text


def test_no_command_at_all_says_how_to_give_one(probe):
    proc, seen = probe(["playbooks/capture.yml", "-e", "capture_name=nginx"])
    assert proc.returncode != 0 and not seen
    assert "Pass the command to capture as JSON" in proc.stdout
