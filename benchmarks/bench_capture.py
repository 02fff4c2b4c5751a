"""`apt-get install -y nginx` as a plain command vs through mo.fleet.capture vs MO-capture's strace.

Side by side in one run (issue 3): every contender gets its own fresh lab host (created and
removed through the test helpers, names mo-t-*) with the nginx .debs already downloaded and
strace installed, and runs the install through Ansible ad hoc. The time taken is the task's
duration reported by the json callback (ansible's own start-up is the same for all and left
out). Contenders alternate over ROUNDS rounds; medians and ratios to the plain command go to
docs/benchmarks/capture.md.

fanotify cannot run on the lab's overlay-root containers (fanotify_init is refused), so
trace=auto measures its walk fallback there; two more rows run on privileged hosts with a plain
directory root (lab.host(rootfs=True)), where trace=auto uses fanotify.
"""

import datetime
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
sys.path.insert(0, str(ROOT / ".collections"))
from labhosts import LabFactory, run_module  # noqa: E402

ROUNDS = int(os.environ.get("MO_BENCH_ROUNDS", "4"))
INSTALL = "apt-get install -y -q nginx"
METHOD_SCRIPT = (ROOT / "benchmarks" / "mo_capture_method.sh").read_text()
PLAIN = "plain command (ansible.builtin.command)"
STRACE = "strace -f -e trace=file,chmod,chown + command (MO-capture's tracing step)"
MO_METHOD = "MO-capture's whole method: find/dpkg -l/systemctl snapshots + strace + diff + log parse"
AUTO = "mo.fleet.capture trace=auto (walk fallback here)"
# (label, module, args, rootfs): rootfs hosts have a plain directory root where fanotify works
CONTENDERS = [
    (PLAIN, "ansible.builtin.command", INSTALL, False),
    (AUTO, "mo.fleet.capture", {"cmd": INSTALL, "name": "nginx", "trace": "auto", "dest": "DEST"}, False),
    ("mo.fleet.capture trace=none", "mo.fleet.capture",
     {"cmd": INSTALL, "name": "nginx", "trace": "none", "dest": "DEST"}, False),
    ("mo.fleet.capture trace=strace", "mo.fleet.capture",
     {"cmd": INSTALL, "name": "nginx", "trace": "strace", "dest": "DEST"}, False),
    (STRACE, "ansible.builtin.command", "strace -f -e trace=file,chmod,chown -o /tmp/MO-strace.log " + INSTALL,
     False),
    (MO_METHOD, "ansible.builtin.command", "sh /root/mo-capture.sh " + INSTALL, False),
    ("rootfs host: plain command", "ansible.builtin.command", INSTALL, True),
    ("rootfs host: mo.fleet.capture trace=auto (fanotify)", "mo.fleet.capture",
     {"cmd": INSTALL, "name": "nginx", "trace": "auto", "dest": "DEST"}, True),
]
# the same work was done: nginx installed and running, its unit enabled, the same apt output
CHECK = ("dpkg-query -W -f='${Status} ${Version}' nginx; echo; systemctl is-active nginx; "
         "systemctl is-enabled nginx; ls /var/cache/apt/archives/*.deb | wc -l")


def _seconds(stamp):
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def measure(label, module, args, workdir, rootfs=False):
    factory = LabFactory(workdir)
    try:
        host = factory.host(rootfs=rootfs)
        host.sh("cat > /root/mo-capture.sh", input_text=METHOD_SCRIPT)
        # not timed: strace and the .debs in place, then dirty pages flushed so the timed run
        # does not pay for the setup's writeback
        host.sh("apt-get install -y -q strace >/dev/null && apt-get install -y -q -d nginx >/dev/null && sync")
        if isinstance(args, dict):
            args = dict(args, dest=str(workdir / "captures"))
        run = run_module(factory.inventory(host), host.name, module, args, cwd=workdir)
        task = run.result["plays"][0]["tasks"][0]
        result = task["hosts"][host.name]
        if run.rc != 0 or result.get("failed"):
            raise SystemExit("%s failed: %s" % (label, result.get("msg")))
        duration = task["task"]["duration"]
        seconds = _seconds(duration["end"]) - _seconds(duration["start"])
        check = host.sh(CHECK, check=False).stdout.split()
        extra = {"seconds": seconds, "check": " ".join(check), "stdout_lines": len((result.get("stdout") or "").splitlines())}
        if result.get("delta"):
            # ansible.builtin.command's own timing of the command (H:MM:SS.ffffff)
            hours, minutes, secs = result["delta"].split(":")
            extra["cmd_seconds"] = int(hours) * 3600 + int(minutes) * 60 + float(secs)
        if "template" in result:
            tpl = result["template"]
            extra.update({"files": tpl["summary"]["total_files_created"], "stats": tpl["metadata"]["stats"],
                          "cmd_seconds": tpl["MO_template"]["duration"], "trace": tpl["metadata"]["trace"]})
        return seconds, extra
    finally:
        factory.cleanup()


def _per_round_ratio(times, label, base_label):
    return statistics.median(a / b for a, b in zip(times[label], times[base_label]))


def main():
    times = {label: [] for label, _m, _a, _r in CONTENDERS}
    overheads = {label: [] for label, _m, _a, _r in CONTENDERS}
    details, checks = {}, {}
    with tempfile.TemporaryDirectory(prefix="mo-bench-capture-") as tmp:
        for round_no in range(ROUNDS):
            # Order effects are larger than the capture's own work. In the first runs the plain
            # command always ran right after a rootfs host and came out slower than its strace
            # baseline; alternating the two alone on fresh overlay hosts, strace was the slower
            # one. A rootfs host copies and then deletes a whole Debian tree, which most likely
            # evicts the page cache of the image layers the overlay hosts share, so the next
            # contender runs cold. So the overlay contenders run first, in a new random order
            # every round, and the rootfs ones after them.
            order = random.Random(round_no).sample(CONTENDERS[:6], 6) + \
                random.Random(100 + round_no).sample(CONTENDERS[6:], 2)
            for index, (label, module, args, rootfs) in enumerate(order):
                work = Path(tmp) / ("r%d-%d" % (round_no, index))
                work.mkdir()
                seconds, extra = measure(label, module, args, work, rootfs)
                times[label].append(seconds)
                details.setdefault(label, extra)
                checks.setdefault(label, set()).add(extra["check"])
                if "cmd_seconds" in extra:
                    # same host, same run: the capture's own work around the command
                    overheads[label].append((seconds - extra["cmd_seconds"], extra["cmd_seconds"]))
                print("round %d  %-70s %6.2f s  [%s]" % (round_no + 1, label, seconds, extra["check"]), flush=True)
    base = statistics.median(times[PLAIN])
    strace_base = statistics.median(times[STRACE])
    method_base = statistics.median(times[MO_METHOD])
    load = os.getloadavg()
    lines = [
        "# Capture overhead: apt-get install -y nginx",
        "",
        "`benchmarks/bench_capture.py`, run %s (load average at the end %.1f / %.1f / %.1f on 2 shared cores):"
        % (time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), load[0], load[1], load[2]),
        "each contender on a fresh lab host (podman, overlay root; nginx .debs and strace installed",
        "beforehand, then `sync`), run through Ansible ad hoc; time = the task's duration from the",
        "json callback. %d rounds; in every round the overlay-root contenders run first in a new random" % ROUNDS,
        "order, then the two rootfs ones (see the comment in the script on order effects). Medians.",
        "",
        "| contender | median s | / plain | / strace -f step | / MO-capture whole method "
        "| per-round / plain | task − command s | task / command inside it |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, _m, _a, rootfs in CONTENDERS:
        med = statistics.median(times[label])
        work = ratio = "-"
        if overheads[label]:
            work = "%.2f" % statistics.median(o for o, _c in overheads[label])
            ratio = "%.2f" % statistics.median((o + c) / c for o, c in overheads[label])
        paired = _per_round_ratio(times, label, "rootfs host: plain command" if rootfs else PLAIN)
        lines.append("| %s | %.2f | %.2f | %.2f | %.2f | %.2f | %s | %s |" % (
            label, med, med / base, med / strace_base, med / method_base, paired, work, ratio))
    lines += ["", "Every run did the same work (after the task, on the host: nginx status and version, "
              "`systemctl is-active` / `is-enabled`, .debs in the cache):", ""]
    for label, _m, _a, _r in CONTENDERS:
        lines.append("- %s: %s" % (label, "; ".join(sorted(checks[label]))))
    lines += ["", "All runs: " + "; ".join(
        "%s %s" % (label.split(" (")[0].split(":")[0], " ".join("%.2f" % t for t in times[label]))
        for label, _m, _a, _r in CONTENDERS) + "."]
    auto = details.get(AUTO, {})
    if auto:
        stats = auto["stats"]
        lines += [
            "",
            "Inside the default capture (trace=auto, first round): the command itself took %.2f s; "
            "pre-walk + /etc stash %.2f s (%d entries, %d config files held); after-walk (%d of the "
            "directory listings reused), diff, hashing %d changed files (%.1f MB) and bundle %.2f s; "
            "trace used: %s (%s). The capture engine ran %.2f s in all (command included), so of the "
            "task's %.2f s about %.2f s were Ansible's module start, result transfer and the action "
            "plugin's fetch and verification of the bundle." % (
                auto["cmd_seconds"], stats["walk_seconds"], stats["entries_before"], stats["stash_files"],
                stats.get("reused_listings", 0), stats["hashed"], stats["hashed_bytes"] / 1e6,
                stats["after_seconds"], auto["trace"]["used"], auto["trace"].get("fallback") or "no fallback",
                stats.get("engine_seconds", 0), auto["seconds"], auto["seconds"] - stats.get("engine_seconds", 0)),
        ]
    lines += [
        "",
        "Reading the table: \"/ plain\" divides medians; \"per-round / plain\" is the median over",
        "rounds of the contender's time over the plain command's time in the same round (rootfs rows:",
        "over the rootfs plain command), which cancels slow drifts in the machine's load; the last",
        "two columns are measured inside one run on one host: the task's time minus, and over, the",
        "time its command took (the capture's own timing, or ansible.builtin.command's `delta`), the",
        "steadiest figures on a shared machine; for the plain rows they are Ansible's own cost of",
        "running a module, which the capture rows pay too.",
        "",
        "Target from issue 3: default capture / plain <= 1.25 and faster than MO-capture's strace",
        "method. Two baselines are given for the latter: the strace step alone (the command under",
        "`strace -f -e trace=file,chmod,chown`, nothing else: the strictest comparison, since",
        "MO-capture also snapshots before and after) and MO-capture's whole method as its spec",
        "describes it (`benchmarks/mo_capture_method.sh`: `find /usr/local /etc /opt /var/lib",
        "-type f`, `dpkg -l`, `systemctl list-unit-files` before and after, the strace run, a",
        "comparison and a parse of the strace log into JSON; without the spec's 1000-file cap).",
        "mo.fleet.capture records more than either (every path under / with mode, owner and hash of",
        "what changed, the before-content of /etc, units, accounts).",
        "fanotify (which shrinks the after-walk to the touched paths) is refused on the lab's",
        "overlay-root containers, so the default there is the walk fallback; the rootfs rows run",
        "on privileged hosts with a plain directory root, where trace=auto uses fanotify. Their",
        "root shares the VM's filesystem, so fanotify there also reports other processes' events",
        "(filtered out, but they cost time).",
        "",
    ]
    out = ROOT / "docs" / "benchmarks" / "capture.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
