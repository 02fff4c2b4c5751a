"""Every command line of README.md and docs/ runs as written (tests/doc_commands.py finds them).

Three tests, so they can run side by side: README.md and docs/capture.md on web1; the renderer
and interception docs on web1 and web2; the repository, release, pull and lab docs on web1, web2
and repo1 (each after the quick-start captures, and the .deb, it builds on). The commands run verbatim through `bash -c`, in doc order (docs in doc_commands.RUN_ORDER; in
a doc, the steps that build on each other in the order a user has to take them: capture before
apply, server before upload before publish), in a scratch copy of the checkout whose
`lab/inventory.yml` (the default inventory of ansible.cfg) names the lab's hosts (web1, web2,
repo1) and points them at fresh disposable containers. What the commands write (captures/,
out/, reports/) stays in the scratch copy; the checkout is left as it was.

Between commands the test only prepares what the docs' prose says is there (a built source
tree on web1, a directory of .debs) and checks a few results the docs promise.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from labhosts import ROOT, labctl

sys.path.insert(0, str(ROOT / "tests"))
import doc_commands as dc  # noqa: E402

VENV = Path(sys.prefix)  # the virtualenv the tests run in, as `make setup` makes it
FLEET = {"web1": ["web"], "web2": ["web"], "repo1": ["repo_server"]}
# Which of the fleet's hosts each doc's inventory holds (a doc not listed gets the whole fleet):
# a command without --limit runs on every host of the inventory, as it would in the lab.
DOC_HOSTS = {
    "README.md": ["web1"],
    "docs/capture.md": ["web1"],
    "docs/renderers.md": ["web1", "web2"],
    "docs/repo_server.md": ["repo1"],
    "docs/lab.md": [],
    "docs/interception.md": ["web1"],
    "docs/architecture.md": [],
}
# The order in which a doc's steps depend on each other (by playbook or program; stable, so
# lines of one step keep the doc's order).
STEPS = ["ansible-doc", "ansible-galaxy collection build", "ansible-galaxy", "capture.yml",
         "mo.fleet.capture", "template_info.yml", "ansible.builtin.apt", "apply_template.yml",
         "rollback.yml", "verify.yml",
         "template_to_role.yml", "template_to_dockerfile.yml", "podman build", "template_to_deb.yml",
         "repo_server.yml", "upload.yml", "publish.yml", "repo_report.yml", "plan.yml", "rollout.yml",
         "resume.yml", "report.yml"]
HELLO_MAKEFILE = """\
install:
\tinstall -D -m 0755 hello /usr/local/bin/hello
\tinstall -D -m 0644 README /usr/local/share/doc/hello/README
"""


def step(command):
    """The rank of COMMAND's step; commands of no known step keep their place at the end."""
    for rank, marker in enumerate(STEPS):
        if marker in command.text:
            return rank
    return len(STEPS)


def scratch_copy(dest):
    """The checkout's files (tracked and new, not ignored) under DEST, with the venv and the
    collection link a checkout has after `make setup`."""
    listed = subprocess.run(["git", "ls-files", "-z", "-co", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    (dest / ".venv").symlink_to(VENV)
    link = dest / ".collections" / "ansible_collections" / "mo" / "fleet"
    link.parent.mkdir(parents=True)
    link.symlink_to(Path("../../.."))
    return dest


def write_lab_inventory(tree, hosts):
    """lab/inventory.yml of the scratch tree: the lab's names for HOSTS (name -> Host)."""
    groups = {}
    for name in hosts:
        for group in FLEET[name]:
            groups.setdefault(group, {"hosts": {}})["hosts"][name] = None
    inventory = {"all": {"hosts": {n: dict(h.hostvars) for n, h in hosts.items()}, "children": groups}}
    (tree / "lab" / "inventory.yml").write_text(yaml.safe_dump(inventory, sort_keys=False))


def command_env(tree, **extra):
    """The environment of a user with the virtualenv active in TREE (no test settings)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "PYTEST", "VIRTUAL_ENV"))}
    env.update(PATH=f"{tree / '.venv' / 'bin'}:{env.get('PATH', '')}", PWD=str(tree), VIRTUAL_ENV=str(VENV),
               CONTAINERS_CONF=str(labctl.CONTAINERS_CONF), ANSIBLE_NOCOLOR="1")
    env.update(extra)
    return env


class DocRunner:
    def __init__(self, tree, hosts, tmp_path):
        self.tree, self.hosts, self.tmp_path = tree, hosts, tmp_path
        self.ran, self.timings, self.done = [], {}, {}

    def env(self, command):
        env = command_env(self.tree)
        if "ansible-galaxy collection install" in command.text:
            env["ANSIBLE_COLLECTIONS_PATH"] = str(self.tmp_path / "elsewhere")  # "Elsewhere, ... install it"
        return env

    def run(self, command):
        """Run COMMAND as written; a line the docs show twice runs once (the first time)."""
        if command.text in self.done:
            self.ran.append((command, 0.0))
            return self.done[command.text]
        env = self.env(command)
        started = time.monotonic()
        proc = subprocess.run(["bash", "-c", command.text], cwd=self.tree, env=env, capture_output=True,
                              text=True, timeout=1200, check=False)
        self.ran.append((command, round(time.monotonic() - started, 1)))
        assert proc.returncode == 0, (f"{command}\nexited {proc.returncode}:\n"
                                      f"{proc.stdout[-4000:]}\n{proc.stderr[-3000:]}")
        self.done[command.text] = proc
        return proc

    def before(self, command):
        """Prepare what the docs' prose says is there before COMMAND."""
        text = command.text
        if "capture.yml" in text and "nginx" in text and "web1" in self.hosts:
            # each documented nginx capture records the install, not an install already done
            self.hosts["web1"].sh("apt-get purge -y -q nginx nginx-common >/dev/null 2>&1; "
                                  "apt-get autoremove -y -q --purge >/dev/null 2>&1; true")
        if "upload_src=dvd/" in text:
            (self.tree / "dvd").mkdir(exist_ok=True)
            for deb in (self.tree / "out").glob("*.deb"):
                shutil.copy2(deb, self.tree / "dvd" / deb.name)

    def after(self, command, proc):
        """Check what the docs promise of COMMAND."""
        text, tree = command.text, self.tree
        m = re.search(r'"capture_cmd": "([^"]+)"|capture_cmd=\S*\'([^\']+)\'|"capture_argv": (\[[^\]]+\])', text)
        if "capture.yml" in text and m:
            name = re.search(r'capture_name"?[=:] ?"?([a-z]+)', text).group(1)
            head = json.loads((tree / "captures" / "web1" / name / "template.json").read_text())["MO_template"]
            want = json.loads(m.group(3)) if m.group(3) else (m.group(1) or m.group(2)).split()
            assert head["argv"] == want and head["status"] == "succeeded", (command, head)
        if "collection install" in text:
            assert (self.tmp_path / "elsewhere" / "ansible_collections" / "mo" / "fleet" / "galaxy.yml").exists() \
                or (self.tmp_path / "elsewhere" / "ansible_collections" / "mo" / "fleet" / "MANIFEST.json").exists()
        if "repo_server.yml" in text and not any("repo_server.yml" in c.text for c, _ in self.ran[:-1]):
            assert "is pending" in proc.stdout + proc.stderr, "the first run names the pending deployment"
        if "template_to_deb.yml" in text:
            assert (tree / "out" / "mo-hello_2.10-1_amd64.deb").exists()
        if "rollout.yml" in text:
            for name in ("web1", "web2"):
                assert self.hosts[name].sh("dpkg-query -W -f '${Version}' mo-hello").stdout == "2.10-1"
        if "playbooks/report.yml" in text:
            assert (tree / "reports" / "status" / "index.html").exists()


def start_fleet(lab, names):
    """Fresh lab hosts for NAMES (inventory name -> Host), started in parallel; web1 carries
    a built source tree in /src/hello-2.10, as docs/capture.md says."""
    with ThreadPoolExecutor(len(names)) as pool:
        started = dict(zip(names, pool.map(lambda n: lab.host(groups=FLEET[n], prefix="mo-doc"), names)))
    labctl.link_hosts([h.name for h in started.values()])
    if "web1" in started:
        # make is in the lab image (labimage.HOST_PACKAGES)
        started["web1"].sh("mkdir -p /src/hello-2.10 && "
                           "cd /src/hello-2.10 && cp /usr/bin/true hello && echo 'GNU hello, built' > README")
        started["web1"].sh("cat > /src/hello-2.10/Makefile", input_text=HELLO_MAKEFILE)
    return started


def checkout_state():
    """What the doc commands could leave in the checkout: changed or new files, output trees."""
    status = set(subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=ROOT,
                                capture_output=True, text=True, check=True).stdout.splitlines())
    outputs = {p.name: sorted(map(str, p.rglob("*")))
               for p in map(ROOT.joinpath, ("captures", "out", "reports", "dvd"))}
    return status, outputs, sorted(map(str, ROOT.glob("*.tar.gz")))


def run_docs(lab, tmp_path, docs, prerequisites=()):
    """Run every command of DOCS in order (after the PREREQUISITES, commands of earlier docs
    whose results DOCS use) in a scratch copy; check the checkout stays as it was."""
    before = checkout_state()
    names = sorted({n for doc in docs for n in DOC_HOSTS.get(doc, list(FLEET))})
    fleet = start_fleet(lab, names)
    tree = scratch_copy(tmp_path / "tree")
    runner = DocRunner(tree, fleet, tmp_path)
    plan = [(c.doc, c) for c in prerequisites]
    for doc in docs:
        plan += [(doc, c) for c in sorted((c for c in dc.commands(doc) if dc.exclusion(c) is None), key=step)]
    try:
        for doc, command in plan:
            write_lab_inventory(tree, {n: fleet[n] for n in DOC_HOSTS.get(doc, list(FLEET))})
            started = time.monotonic()
            runner.before(command)
            runner.after(command, runner.run(command))
            runner.timings[doc] = round(runner.timings.get(doc, 0) + time.monotonic() - started, 1)
    finally:
        subprocess.run(["podman", "rmi", "-f", "memcached-captured"], env=labctl.podman_env(),
                       capture_output=True, check=False)
        print("doc commands run (seconds):", *(f"{s:7.1f}  {c}" for c, s in runner.ran), sep="\n")
        print("per doc:", runner.timings)
    assert [c for c, _ in runner.ran] == [c for _, c in plan]
    status, outputs, archives = checkout_state()
    # a file the commands changed or made shows as a new status line (a commit meanwhile only removes some)
    assert (status - before[0], outputs, archives) == (set(), before[1], before[2]), \
        "the doc commands wrote into the checkout"


def test_readme_and_capture_docs_run_as_written(lab, tmp_path):
    """README.md and docs/capture.md: ansible-doc, build and install, every capture form (web1)."""
    run_docs(lab, tmp_path, dc.RUN_ORDER[:2])


# The docs after README.md and docs/capture.md, in two tests that run side by side (on two
# workers): what each needs of the others is run first, as prerequisites. Together they are
# dc.RUN_ORDER[2:], each doc once (test_the_doc_tests_run_every_doc_once checks it).
RENDER_DOCS = ("docs/renderers.md", "docs/interception.md")
REPO_DOCS = ("docs/repo_server.md", "docs/release.md", "docs/release_client.md", "docs/pull.md",
             "docs/lab.md", "docs/architecture.md", "docs/scale.md")


def quick_start(name=None):
    """The captures of docs/capture.md's quick start (--limit web1): both, or the one of NAME."""
    found = [c for c in dc.commands("docs/capture.md") if "capture.yml" in c.text and "--limit web1" in c.text]
    assert len(found) == 2
    return found if name is None else [c for c in found if f"capture_name={name}" in c.text]


def test_the_doc_tests_run_every_doc_once():
    """No doc is left out or run twice by the split (a pure check, no hosts)."""
    docs = list(dc.RUN_ORDER[:2]) + list(RENDER_DOCS) + list(REPO_DOCS)
    assert sorted(docs) == sorted(dc.RUN_ORDER) and len(set(docs)) == len(docs)
    assert [d for d in dc.RUN_ORDER if d in RENDER_DOCS] == list(RENDER_DOCS)
    assert [d for d in dc.RUN_ORDER if d in REPO_DOCS] == list(REPO_DOCS)
    assert len(quick_start("hello")) == 1


def test_render_and_interception_docs_run_as_written(lab, tmp_path):
    """docs/renderers.md (apply, rollback, verify, role, image and .deb of the captures) and
    docs/interception.md (target, harvest, drift) on web1 and web2, after the two captures of
    docs/capture.md's quick start that they build on."""
    run_docs(lab, tmp_path, RENDER_DOCS, prerequisites=quick_start())


def test_repo_release_pull_and_lab_docs_run_as_written(lab, tmp_path):
    """The repository server in the natural order, plan, rollout and status site, pull mode, the
    lab commands, on web1, web2 and repo1: first what they build on, the hello capture of
    docs/capture.md's quick start and docs/renderers.md's .deb of it (out/mo-hello_2.10-1_amd64.deb)."""
    deb = [c for c in dc.commands("docs/renderers.md") if "template_to_deb.yml" in c.text]
    assert len(deb) == 1
    run_docs(lab, tmp_path, REPO_DOCS, prerequisites=quick_start("hello") + deb)
