"""An intercepted `apt-get install -y nginx` typed in root's login shell vs the bare command.

Side by side in one run (issue 14): one fresh lab host prepared by the mo.fleet.target role
(CLI, login-shell wrappers, dpkg hook, baseline), the nginx .debs downloaded beforehand. Each
round runs both contenders in a random order, each in an interactive login shell
(`bash -l -i -c`): "intercepted" is the command as an admin types it (the wrapper captures it,
the dpkg hook records it); "bare" is the same with the wrappers and the dpkg hook moved away,
that is the host as without mo.fleet. Between runs (not timed) nginx is purged again and the
page cache written back. Time = wall clock around the shell; CPU = the shell's children
(bash's `times`) plus the background finisher's (its log line). Medians and the per-round
ratio go to docs/benchmarks/interception.md. MO_BENCH_HOST=NAME measures on a lab host the role
already prepared instead of a fresh one (said in the result).
"""

import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
sys.path.insert(0, str(ROOT / ".collections"))
from labhosts import Host, LabFactory, run_playbook  # noqa: E402
import labctl  # noqa: E402

ROUNDS = int(os.environ.get("MO_BENCH_ROUNDS", "3"))
INSTALL = "apt-get install -y -q nginx"
PURGE = ("apt-get purge -y -q nginx nginx-common >/dev/null && apt-get autoremove -y -q --purge >/dev/null "
         "&& mo-capture reset >/dev/null && sync")
HIDE = "mv /etc/profile.d/mo-fleet-capture.sh /etc/dpkg/dpkg.cfg.d/mo-fleet /root/"
SHOW = "mv /root/mo-fleet-capture.sh /etc/profile.d/ && mv /root/mo-fleet /etc/dpkg/dpkg.cfg.d/"
CHECK = "dpkg-query -W -f='${Status} ${Version}' nginx; echo; systemctl is-active nginx"


def _seconds(text):
    minutes, _, rest = text.partition("m")
    return int(minutes) * 60 + float(rest.rstrip("s"))


def typed(host, line):
    """(wall seconds, CPU seconds of the shell's children: the command, the wrapper, dpkg, its hooks)."""
    start = time.monotonic()
    shell = "%s; rc=$?; times; exit $rc" % line
    proc = subprocess.run(["podman", "exec", "-i", host.name, "bash", "-l", "-i", "-c", shell], text=True,
                          capture_output=True, env=labctl.podman_env(), check=False)
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit("%s exited %d: %s" % (line, proc.returncode, proc.stderr[-2000:]))
    children = proc.stdout.strip().splitlines()[-1].split()  # times: the children's user and system time
    return seconds, _seconds(children[0]) + _seconds(children[1])


def finisher_cpu(host):
    """CPU seconds of the background process that built the last intercepted template (its log line)."""
    lines = host.sh("grep 'background capture .* finished in' /var/log/mo-fleet/capture.log | tail -n 1",
                    check=False).stdout.split()
    return float(lines[-2]) if len(lines) > 2 and lines[-1] == "s" else 0.0


def main():
    times = {"bare": [], "intercepted": []}
    cpu = {"bare": [], "intercepted": []}
    checks = {"bare": set(), "intercepted": set()}
    with tempfile.TemporaryDirectory(prefix="mo-bench-icpt-") as tmp:
        lab = LabFactory(Path(tmp))
        try:
            if os.environ.get("MO_BENCH_HOST"):  # a lab host the target role already prepared
                host = Host(name=os.environ["MO_BENCH_HOST"])
            else:
                host = lab.host()
                play = Path(tmp) / "role.yml"
                play.write_text("- hosts: all\n  gather_facts: false\n  become: true\n  roles:\n    - role: mo.fleet.target\n")
                run = run_playbook(str(play), lab.inventory(host))
                if run.rc != 0:
                    raise SystemExit("the target role failed: " + run.stdout[-2000:])
            host.sh("apt-get install -y -q -d nginx >/dev/null && sync")
            captured = 0
            for round_no in range(ROUNDS):
                for label in random.Random(round_no).sample(sorted(times), 2):
                    if label == "bare":
                        host.sh(HIDE)
                    try:
                        seconds, used = typed(host, INSTALL)
                    finally:
                        if label == "bare":
                            host.sh(SHOW)
                    times[label].append(seconds)
                    checks[label].add(" ".join(host.sh(CHECK, check=False).stdout.split()))
                    if label == "intercepted":  # list-templates waits for the background finisher
                        captured += "apt-get-install-nginx" in host.sh("mo-capture list-templates").stdout
                        used += finisher_cpu(host)
                    cpu[label].append(used)
                    print("round %d  %-12s %6.2f s  cpu %5.2f s  load %.1f" % (
                        round_no + 1, label, seconds, used, os.getloadavg()[0]), flush=True)
                    host.sh(PURGE)
        finally:
            lab.cleanup()
    bare, icpt = statistics.median(times["bare"]), statistics.median(times["intercepted"])
    per_round = statistics.median(i / b for i, b in zip(times["intercepted"], times["bare"]))
    cpu_bare, cpu_icpt = statistics.median(cpu["bare"]), statistics.median(cpu["intercepted"])
    load = os.getloadavg()
    lines = [
        "# Interception overhead: apt-get install -y nginx typed in a login shell",
        "",
        "`benchmarks/bench_interception.py`, run %s (load average at the end %.1f / %.1f / %.1f on 2 shared "
        "cores): one lab host prepared by mo.fleet.target (%s), nginx .debs downloaded beforehand; %d "
        "rounds, both contenders in a random order each round, nginx purged between runs." % (
            time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), load[0], load[1], load[2],
            "an existing one, MO_BENCH_HOST" if os.environ.get("MO_BENCH_HOST") else "a fresh one", ROUNDS),
        "",
        "| contender | median s | / bare | per-round / bare | runs | CPU s (median) | CPU runs |",
        "| --- | ---: | ---: | ---: | --- | ---: | --- |",
        "| bare `apt-get install -y -q nginx` (wrappers and dpkg hook moved away) | %.2f | 1.00 | 1.00 | %s | %.2f | %s |"
        % (bare, " ".join("%.2f" % t for t in times["bare"]), cpu_bare, " ".join("%.2f" % t for t in cpu["bare"])),
        "| intercepted (wrapper captures, dpkg hook records) | %.2f | %.2f | %.2f | %s | %.2f | %s |"
        % (icpt, icpt / bare, per_round, " ".join("%.2f" % t for t in times["intercepted"]), cpu_icpt,
           " ".join("%.2f" % t for t in cpu["intercepted"])),
        "",
        "Wall time is the prompt's: the shell returns once apt-get has and the capture's after-snapshot is "
        "taken; the template is then built by a background process (docs/interception.md). CPU is that of "
        "the whole process tree: the shell's children as bash's `times` counts them (apt-get, dpkg, the "
        "dpkg hooks, the wrapper) plus, for the intercepted runs, the background process's own (from its "
        "log line).",
        "",
        "Same work done (nginx status and version, `systemctl is-active` after each run): bare %s; "
        "intercepted %s. Intercepted runs that left a template: %d of %d." % (
            "; ".join(sorted(checks["bare"])), "; ".join(sorted(checks["intercepted"])), captured, ROUNDS),
        "",
        "Target from issue 14: intercepted / bare <= 1.15.",
        "",
    ]
    out = ROOT / "docs" / "benchmarks" / "interception.md"
    out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
