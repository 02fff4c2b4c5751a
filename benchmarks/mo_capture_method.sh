#!/bin/sh
# MO-capture's method, reproduced from its spec for bench_capture.py (run on a lab host):
# snapshot (find of the capture directories, dpkg -l, systemctl list-unit-files), run the
# command under strace -f -e trace=file,chmod,chown, snapshot again, compare the snapshots
# and parse the strace log into a JSON template.  The spec caps find at 1000 files; this
# reproduction does not (a capped list would miss most of an nginx install).
set -e
STATE=/var/lib/MO-capture
LOG=/tmp/MO-strace-$$.log
snapshot() {
    dir=$STATE/snapshots/MO-snap-$(date +%Y%m%d-%H%M%S-%3N)
    mkdir -p "$dir"
    find /usr/local /etc /opt /var/lib -type f 2>/dev/null | sort > "$dir/files.txt" || true
    dpkg -l > "$dir/packages.txt"
    systemctl list-unit-files --no-pager > "$dir/services.txt" || true
    echo "$dir"
}
pre=$(snapshot)
strace -f -e trace=file,chmod,chown -o "$LOG" "$@"
post=$(snapshot)
mkdir -p "$STATE/templates"
python3 - "$pre" "$post" "$LOG" "$*" > "$STATE/templates/MO-template-$$.json" <<'PY'
import json, re, sys
pre, post, log, command = sys.argv[1:5]
def lines(path):
    with open(path, errors="replace") as handle:
        return set(handle.read().splitlines())
created = sorted(lines(post + "/files.txt") - lines(pre + "/files.txt"))
deleted = sorted(lines(pre + "/files.txt") - lines(post + "/files.txt"))
packages = sorted(lines(post + "/packages.txt") - lines(pre + "/packages.txt"))
services = sorted(lines(post + "/services.txt") - lines(pre + "/services.txt"))
ops = {"open_write": set(), "mkdir": set(), "chmod": set(), "chown": set()}
call = re.compile(r'^(?:\[pid\s+)?\d*\]?\s*(\w+)\((?:AT_FDCWD, )?"([^"]*)"(.*)$')
with open(log, errors="replace") as handle:
    for line in handle:
        match = call.match(line.split(" ", 1)[1] if line[:1].isdigit() else line)
        if not match or "= -1" in match.group(3):
            continue
        name, path, rest = match.groups()
        if name in ("open", "openat") and ("O_WRONLY" in rest or "O_RDWR" in rest or "O_CREAT" in rest):
            ops["open_write"].add(path)
        elif name in ("mkdir", "mkdirat"):
            ops["mkdir"].add(path)
        elif name.startswith(("chmod", "fchmodat")):
            ops["chmod"].add(path)
        elif name.startswith(("chown", "lchown", "fchownat")):
            ops["chown"].add(path)
json.dump({"MO_template": {"command": command},
           "operations": {"files_created": created, "files_deleted": deleted, "packages": packages,
                          "services": services, "strace": {k: sorted(v) for k, v in ops.items()}},
           "metadata": {"strace_log": log, "analysis_method": "strace_and_snapshot"}}, sys.stdout)
PY
