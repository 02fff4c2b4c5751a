# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The seed's CLI on a managed host: ``mo-capture`` (alias ``MO-capture``) and ``mo-install``.

The target role copies module_utils to /usr/local/lib/mo-fleet/ and installs small entry
scripts that call ``main_capture`` / ``main_install``: the same engine as the
``mo.fleet.capture`` module, the same capture store (/var/lib/mo-fleet).

    mo-capture [--name NAME] [--trace MODE] <command...>   capture a command
    mo-capture status | list-snapshots | list-templates [--json]
    mo-capture cleanup [--keep N] | reset | version
    mo-capture baseline                                     take the drift baseline
    mo-capture drift NAME [--rebase]                        capture what changed since it
    mo-capture --intercept <command...>                     what the login-shell wrappers call
    mo-capture hook pre|post                                what dpkg's hooks call
    mo-install --info|--verify TEMPLATE [--json]            TEMPLATE: a bundle directory,
                                                            template.json, capture id or name

Exit status: a captured or intercepted command's own status; 0 for a subcommand that did
its work; 1 when it could not (one sentence on stderr); 2 for a wrong command line.
Standard library only (runs on targets).
"""

from __future__ import annotations

import datetime
import json
import logging
import logging.handlers
import os
import re
import shutil
import stat
import sys
import time

from ansible_collections.mo.fleet.plugins.module_utils._capture import host_config as hc
from ansible_collections.mo.fleet.plugins.module_utils._capture import pkg_hook
from ansible_collections.mo.fleet.plugins.module_utils._capture.capture_index import FINISHING, Store, StoreError


class _Engine:
    """One of the engine's modules, imported when first used: the dpkg hook (it runs around
    every dpkg run) needs none of them and the wrapper few before the command.  Each loader
    is a plain import statement, so Ansible's module_utils finder still ships the module with
    the modules that import this one (mo.fleet.harvest)."""

    def __init__(self, load):
        self._load = load
        self._module = None

    def __getattr__(self, name):
        if self._module is None:
            self._module = self._load()
        return getattr(self._module, name)


def _load_capture():
    from ansible_collections.mo.fleet.plugins.module_utils._capture import capture
    return capture


def _load_confdiff():
    from ansible_collections.mo.fleet.plugins.module_utils._capture import confdiff
    return confdiff


def _load_drift():
    from ansible_collections.mo.fleet.plugins.module_utils._capture import drift
    return drift


def _load_snapshot():
    from ansible_collections.mo.fleet.plugins.module_utils._capture import snapshot
    return snapshot


def _load_template():
    from ansible_collections.mo.fleet.plugins.module_utils._template import template
    return template


cap, confdiff, drift = _Engine(_load_capture), _Engine(_load_confdiff), _Engine(_load_drift)
snap, tpl = _Engine(_load_snapshot), _Engine(_load_template)


def _say(text, file=None):
    """One line to the terminal: the CLI's output (stdout unless FILE is given)."""
    (file or sys.stdout).write(f"{text}\n")


VERSION = "0.1.0"
SUBCOMMANDS = ("status", "list-snapshots", "list-templates", "cleanup", "reset", "version", "baseline", "drift")
USAGE = __doc__.split("\n\n")[2]
log = logging.getLogger("mo-fleet")


class UsageError(Exception):
    """A wrong command line (exit status 2)."""


def setup_logging(config: dict) -> None:
    """Log to the configured file with rotation (RotatingFileHandler); nothing when not writable."""
    logs = config["logging"]
    log.setLevel(logs["level"])
    log.propagate = False
    try:
        os.makedirs(os.path.dirname(logs["file"]), mode=0o750, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(logs["file"], maxBytes=logs["max_bytes"],
                                                       backupCount=logs["backups"], encoding="utf-8")
    except OSError:
        handler = logging.NullHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(process)d %(levelname)s %(message)s"))
    log.handlers[:] = [handler]


def _options(config: dict, argv: list, name: str, trace: str = None) -> dict:
    options = {"argv": argv, "name": name, "chdir": os.getcwd(), "roots": config["capture_directories"],
               "exclude": hc.exclude_list(config), "config_roots": config["config_directories"],
               "keep_secrets": config["keep_secrets"], "trace": trace or config["trace"],
               "lock_timeout": 300, "passthrough": True, "origin": "cli",
               "requested_by": {"user": pkg_hook.who(), "command": " ".join(argv)[:4096]}}
    if config["analyze_config"]:
        options["analyze"] = _analyze
    return options


def _analyze(operations, state_after):
    """confdiff.analyze, imported only when a template is built (by the background process)."""
    return confdiff.analyze(operations, state_after)


def default_name(argv: list, now=None) -> str:
    """PROGRAM-ACTION-OPERAND-<UTC time>: a plain file name part, unique per second."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    words = [os.path.basename(argv[0])] + [w for w in argv[1:] if not w.startswith("-") and "=" not in w][:2]
    stem = re.sub(r"[^A-Za-z0-9_.+-]+", "_", "-".join(words)).strip("._-")[:48] or "capture"
    return "%s-%s" % (stem, now.strftime("%Y%m%dT%H%M%S"))


def _auto_cleanup(config: dict, store: Store, wait: float = 60.0) -> None:
    """snapshots.auto_cleanup: keep snapshots.max_count templates per name (the capture time
    at the end of the CLI's and the dpkg hook's names not counted: capture_index.retention_name),
    and as many of the dpkg hook's records per requesting program (hook_records)."""
    snaps = config["snapshots"]
    if snaps["auto_cleanup"]:
        try:
            removed, _kept = store.cleanup(keep=snaps["max_count"], wait=wait)
        except StoreError as exc:  # the next capture's cleanup does it
            log.warning("auto cleanup skipped: %s", exc)
            return
        if removed:
            log.info("auto cleanup removed %s", ", ".join(removed))


def _exit_status(rc) -> int:
    if rc is None:
        return 1
    return 128 - rc if rc < 0 else rc


# how long a listing, harvest or the next intercepted command waits for a capture being
# finished in the background before it goes on without it (status shows it as finishing)
FINISHING_WAIT = 120.0
INTERCEPT_WAIT = 30.0


def _cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def detach(store: Store, capture_id: str, argv: list, finisher: dict, before: dict = None, after: dict = None) -> bool:
    """Hand the rest of a capture to a background process (see docs/interception.md): True in
    the caller, which then returns the command's status at once; False in the background
    process (FINISHER["pid"] set), which goes on with the capture and must end with
    _end_finisher; False also when no process could be started (the caller finishes).
    First, while the lock is held, the package changes between the states BEFORE and AFTER
    go into the hook's records (the hook stepped aside in the command's environment)."""
    if before is not None and after is not None:
        try:
            pkg_hook.record_capture(store, argv, capture_id, before["packages"], after["packages"])
        except (OSError, ValueError) as exc:
            log.error("the package record of capture %s was not written: %s", capture_id, exc)
    store.mark(FINISHING, capture_id, {"command": " ".join(argv)[:4096], "time": time.time(), "pid": None})
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    try:
        pid = os.fork()
    except OSError as exc:
        log.warning("capture %s is finished in the foreground: %s", capture_id, exc.strerror)
        store.unmark(FINISHING, capture_id)
        return False
    if pid:
        _pid, status = os.waitpid(pid, 0)  # the first child starts the finisher and exits at once
        if os.waitstatus_to_exitcode(status) == 0:
            return True
        store.unmark(FINISHING, capture_id)
        return False
    try:  # the first child: a new session (no terminal, no signals from it), then the finisher
        os.setsid()
        if os.fork():
            os._exit(0)
    except BaseException:  # pylint: disable=broad-except
        os._exit(1)
    try:
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):  # the terminal, ssh and podman exec wait for nothing of this process
            os.dup2(devnull, fd)
        os.close(devnull)
        finisher.update(id=capture_id, pid=os.getpid(), cpu=_cpu_seconds(), start=time.monotonic())
        store.mark(FINISHING, capture_id, {"command": " ".join(argv)[:4096], "time": time.time(), "pid": os.getpid()})
    except BaseException as exc:  # pylint: disable=broad-except
        _end_finisher(store, capture_id, argv, finisher, exc)
    return False


def _end_finisher(store: Store, capture_id: str, argv: list, finisher: dict, problem=None) -> None:
    """The background process's end (never returns): its failure kept for status, its marker gone."""
    code = 0
    try:
        if problem is not None:
            code = 1
            log.error("background capture %s of %s failed: %s", capture_id, " ".join(argv), problem)
            store.record_failure(capture_id, {"command": " ".join(argv)[:4096], "time": time.time(),
                                              "error": str(problem)[:4096] or type(problem).__name__})
        store.unmark(FINISHING, capture_id)
        log.info("background capture %s finished in %.2f s, cpu %.2f s", capture_id,
                 time.monotonic() - finisher["start"], _cpu_seconds() - finisher["cpu"])
    finally:
        logging.shutdown()
        os._exit(code)


def run_capture(config: dict, argv: list, name: str = None, trace: str = None, origin: str = "cli",
                on_start=None, background: bool = False) -> int:
    """Capture ARGV; BACKGROUND: the template is built in a background process once the
    command returned and the after-snapshot was taken (the interception: the prompt comes back
    sooner)."""
    store = Store(config["capture_directory"])
    options = _options(config, argv, name or default_name(argv), trace)
    options.update(origin=origin, on_start=on_start)
    finisher = {}
    if background:
        options["detach"] = lambda capture_id, before, after: detach(store, capture_id, argv, finisher, before, after)
        options["lock_timeout"] = INTERCEPT_WAIT
        options["environment"] = {pkg_hook.HOOK_STEPS_ASIDE: "1"}  # detach records the package changes
    try:
        result = cap.capture(options, store)
        if result.get("detached"):
            log.info("%s capture %s of %s: rc %s, finished in the background", origin, result["bundle"]["id"],
                     " ".join(argv), result["rc"])
            return _exit_status(result["rc"])
        summary = result["template"]["summary"]
        log.info("%s capture %s of %s: rc %s, %s", origin, result["bundle"]["id"], " ".join(argv), result["rc"],
                 ", ".join("%s %d" % (k[6:], v) for k, v in sorted(summary.items()) if v) or "no changes")
        _auto_cleanup(config, store)
    except BaseException as exc:
        if finisher:  # the background process ends here, whatever happened
            _end_finisher(store, finisher["id"], argv, finisher, exc)
        raise
    if finisher:
        _end_finisher(store, finisher["id"], argv, finisher)
    return _exit_status(result["rc"])


def intercept(config: dict, argv: list) -> int:
    """What the login-shell wrappers call: capture ARGV when it is a change, else exec it as is;
    either way the process ends here with the command's status (exec, or leave)."""
    if not argv:
        raise UsageError("--intercept needs the command to run.")
    program = os.path.basename(argv[0])
    if shutil.which(argv[0]) is None:  # as the shell says it
        _say("%s: command not found" % argv[0], file=sys.stderr)
        return 127
    store = Store(config["capture_directory"])
    step_aside = (os.geteuid() != 0 or os.environ.get("MO_FLEET_CAPTURE") or program not in
                  config["intercepted_commands"] or not hc.is_change(argv))
    # a capture still being finished in the background is waited for; any other capture
    # holding the lock means this command runs without one
    if not step_aside and store.locked_by_other():
        step_aside = not (store.finishing() and store.wait_finishing(INTERCEPT_WAIT))
    if step_aside:
        os.execvp(argv[0], argv)  # never returns: the command as if typed without mo.fleet
    started = []
    try:
        status = run_capture(config, argv, origin="intercepted", on_start=lambda: started.append(True),
                             background=True)
    except (cap.CaptureError, StoreError, OSError) as exc:
        log.error("interception of %s failed: %s", " ".join(argv), exc)
        if started:
            raise
        step_aside_after(argv, exc)
    leave(status)


def leave(status: int) -> None:
    """The wrapper's end once the command returned and the capture is handed on: out at once
    (never returns).  The interpreter's own exit would first free both snapshots and the
    stash entry by entry, tens of milliseconds more before the prompt comes back."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    logging.shutdown()
    os._exit(status)


def step_aside_after(argv: list, problem) -> None:
    """The wrapper must stay invisible: when the capture cannot start, say so in one line and
    run the command as typed (never returns)."""
    if isinstance(problem, OSError):
        why = f"{problem.filename or 'a file'}: {problem.strerror}."
    else:
        why = str(problem)
    _say(f"mo-capture: {why} {os.path.basename(argv[0])} runs without a capture.", file=sys.stderr)
    os.execvp(argv[0], argv)


def _print_rows(rows: list, columns: tuple, as_json: bool) -> None:
    if as_json:
        _say(json.dumps(rows, indent=2, sort_keys=True, default=str))
        return
    for row in rows:
        _say("  ".join(str(row.get(c) if row.get(c) is not None else "-") for c in columns))


def _when(seconds) -> str:
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def cmd_listing(config: dict, what: str, as_json: bool) -> int:
    store = Store(config["capture_directory"])
    if not store.wait_finishing(FINISHING_WAIT):
        _say("mo-capture: %d capture(s) are still being finished in the background; not listed yet." % len(
            store.finishing()), file=sys.stderr)
    report = store.report()
    if what == "status":
        status = dict(report["status"], template_version=tpl.TEMPLATE_VERSION, version=VERSION)
        status["finishing"] = len(store.finishing()) - len(store.dead_finishers())
        failures = store.failures()
        status["failed_in_background"] = len(failures)
        status["last_background_failure"] = ("%s: %s (%s)" % (_when(failures[-1].get("time") or 0), _shown(
            failures[-1].get("error")), _shown(failures[-1].get("command")))) if failures else None
        try:
            status["baseline"] = _when(drift.load_baseline(store)[2]["created"])
        except drift.DriftError:
            status["baseline"] = None
        status["hook_records"] = len(pkg_hook.read_records(store))
        _print_rows([status] if as_json else [{"k": k, "v": v} for k, v in sorted(status.items())], ("k", "v"),
                    as_json)
    elif what == "list-snapshots":
        rows = [dict(s, created=_when(s["created"])) for s in report["snapshots"]]
        _print_rows(rows, ("id", "created", "phase", "template_id", "entries", "packages", "method"), as_json)
    else:
        rows = [dict(t, created=_when(t["created"])) for t in report["templates"]]
        _print_rows(rows, ("id", "name", "created", "status", "rc", "command"), as_json)
    return 0


def cmd_store(config: dict, what: str, keep: int) -> int:
    store = Store(config["capture_directory"])
    removed, kept = store.cleanup(reset=(what == "reset"), keep=keep)
    records = [r for r in removed if r.startswith("hook/")]
    shown = "".join(f"; {r.split(': ', 1)[1]} of the dpkg hook removed" for r in records)
    _say(f"{what}: removed {len(removed) - len(records)}, kept {len(kept)}{shown}.")
    log.info("%s removed %s", what, ", ".join(removed) or "nothing")
    return 0


def cmd_baseline(config: dict) -> int:
    store = Store(config["capture_directory"])
    store.lock(wait=300)
    try:
        # Ansible's temporary files (a drift capture taken through mo.fleet.harvest) are not drift
        info = drift.take_baseline(store, config["capture_directories"],
                                   hc.exclude_list(config) + [store.root, "/*/.ansible/tmp"])
    finally:
        store.unlock()
    _say("Baseline taken: %d entries, %d packages (%s)." % (info["entries"], info["packages"], info["path"]))
    log.info("baseline taken: %d entries, %d packages", info["entries"], info["packages"])
    return 0


def drift_capture(config: dict, name: str, rebase: bool = False) -> dict:
    """Capture everything changed since the baseline as template NAME; return capture()'s result."""
    store = Store(config["capture_directory"])
    before, state, info = drift.load_baseline(store)
    options = _options(config, ["mo-capture", "drift", name], name)
    options.update(roots=info["roots"], exclude=info["exclude"], baseline=(before, state), origin="drift", chdir=None,
                   passthrough=False)
    analyze = options.pop("analyze", None)
    hook_records, history = pkg_hook.read_records(store), drift.read_history()

    def attribution(operations, state_after):
        extra = {"baseline": {"created": _when(info["created"]), "entries": info["entries"]},
                 "package_sources": drift.attribute(operations, hook_records, history)}
        if analyze is not None:
            extra.update(analyze(operations, state_after))
        return extra
    options["analyze"] = attribution
    result = cap.capture(options, store)
    log.info("drift capture %s since %s", result["bundle"]["id"], _when(info["created"]))
    if rebase:
        cmd_baseline(config)
    return result


def _split_options(args: list):
    """Leading --name/--trace/--config/--json/--keep/--rebase/--intercept options, then the rest."""
    opts = {"name": None, "trace": None, "config": hc.CONFIG_PATH, "json": False, "keep": None,
            "rebase": False, "intercept": False}
    rest = list(args)
    while rest and rest[0].startswith("--"):
        word = rest.pop(0)
        key = word[2:]
        if key in ("json", "rebase", "intercept", "debug"):
            opts[key] = True
        elif key in ("name", "trace", "config", "keep"):
            if not rest:
                raise UsageError("%s needs a value." % word)
            opts[key] = rest.pop(0)
        elif key == "help":
            raise UsageError(USAGE)
        else:
            raise UsageError("%s is not an option of mo-capture." % word)
        if opts["intercept"]:
            break
    return opts, rest


def _trusted_config(path: str) -> None:
    """--config FILE for anything but version: a regular file of root's that no one else can
    write (a narrow sudo rule must not let a user point the capture directory and the log anywhere)."""
    try:
        st = os.lstat(path)
    except OSError as exc:
        raise UsageError(f"--config {path}: {exc.strerror}.")
    if not stat.S_ISREG(st.st_mode) or st.st_uid != 0 or st.st_mode & 0o022:
        raise UsageError(f"--config {path} must be a regular file owned by root that only root can write "
                         "(any file is accepted with version).")


def _subcommand(config: dict, word: str, rest: list, opts: dict) -> int:
    if word == "version":
        _say("mo-capture %s (mo.fleet), template version %s" % (VERSION, tpl.TEMPLATE_VERSION))
        return 0
    if os.geteuid() != 0:  # the index holds every captured command line: root's only
        raise UsageError("mo-capture %s must run as root." % word)
    if word in ("status", "list-snapshots", "list-templates"):
        return cmd_listing(config, word, opts["json"] or "--json" in rest)
    if word in ("cleanup", "reset"):
        keep = opts["keep"]
        if "--keep" in rest:  # mo-capture cleanup --keep N, as the usage writes it
            after = rest[rest.index("--keep") + 1:]
            if not after:
                raise UsageError("--keep needs a value.")
            keep = after[0]
        keep = keep if keep is not None else config["snapshots"]["max_count"]
        if not str(keep).isdigit():
            raise UsageError("--keep must be a whole number.")
        return cmd_store(config, word, int(keep))
    if word == "baseline":
        return cmd_baseline(config)
    if word == "drift":
        names = [w for w in rest if not w.startswith("--")]
        if len(names) != 1:
            raise UsageError("mo-capture drift needs one NAME for the template.")
        result = drift_capture(config, names[0], opts["rebase"] or "--rebase" in rest)
        _say("Drift capture %s: %s." % (result["bundle"]["id"], ", ".join(
            "%s %d" % (k[6:], v) for k, v in sorted(result["template"]["summary"].items()) if v) or "no changes"))
        return 0
    raise UsageError("%s is not a subcommand of mo-capture." % word)


def main_hook(args: list) -> int:
    """dpkg's pre-invoke/post-invoke: always 0, whatever happens (a failing hook fails dpkg)."""
    try:
        config = hc.load_config(hc.CONFIG_PATH)
        setup_logging(config)
        if len(args) == 1 and args[0] in ("pre", "post"):
            store = Store(config["capture_directory"])
            # dpkg waits for the hook: the cleanup waits at most 5 s for the store's lock
            return pkg_hook.run_hook(store, args[0], after_template=lambda: _auto_cleanup(config, store, wait=5))
    except Exception as exc:  # never break dpkg
        _say("mo-capture hook: %s" % exc, file=sys.stderr)
    return 0


def main_capture(args: list) -> int:
    if args[:1] == ["hook"]:
        return main_hook(args[1:])
    try:
        opts, rest = _split_options(args)
        if not rest:
            raise UsageError(USAGE)
        if opts["config"] != hc.CONFIG_PATH and rest[0] != "version":
            _trusted_config(opts["config"])
        try:
            config = hc.load_config(opts["config"])
        except hc.ConfigError as exc:
            if opts["intercept"] and rest:
                step_aside_after(rest, exc)
            raise
        if rest[0] != "version" or opts["intercept"]:  # version only checks the file (the role's validate:)
            setup_logging(config)
        if opts["intercept"]:
            return intercept(config, rest)
        if rest[0] in SUBCOMMANDS:
            return _subcommand(config, rest[0], rest[1:], opts)
        if opts["trace"] not in (None,) + cap.TRACE_MODES:
            raise UsageError("--trace must be one of %s." % ", ".join(cap.TRACE_MODES))
        if os.geteuid() != 0:
            raise UsageError("mo-capture must run as root to capture a command (sudo mo-capture ...).")
        return run_capture(config, rest, opts["name"], opts["trace"])
    except UsageError as exc:
        _say("mo-capture: %s" % exc, file=sys.stderr)
        return 2
    except (hc.ConfigError, cap.CaptureError, StoreError, drift.DriftError, tpl.TemplateError) as exc:
        _say("mo-capture: %s" % exc, file=sys.stderr)
        log.error("%s", exc)
        return 1
    except OSError as exc:
        _say("mo-capture: %s: %s." % (exc.filename or "a file", exc.strerror or exc), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


# --------------------------------------------------------------------------- mo-install

def find_bundle(store: Store, what: str) -> str:
    """The bundle directory WHAT names: a path, else a capture id, else the newest capture of that name."""
    if os.path.isdir(what):
        return what
    if os.path.isfile(what):
        return os.path.dirname(os.path.abspath(what))
    for item in reversed(store.list_templates()):
        if what in (item["id"], item["name"]):
            return store.template_dir(item["id"], item["path"])
    raise tpl.TemplateError("%s is neither a bundle directory nor a capture in %s." % (what, store.root))


def _shown(value) -> str:
    """VALUE as one line that cannot act on a terminal (control characters as \\xNN)."""
    return snap.printable_path(str(value))


def info_lines(doc: dict) -> list:
    """mo-install --info as text: the summary, then each conffile diff.  DOC was checked by the
    one validator (tpl.load_file); every value is still shown through _shown, and each diff
    line keeps its tabs only."""
    info = tpl.describe(doc)
    lines = [f"{k}: {_shown(v)}" for k, v in info.items() if v not in (None, [], {})]
    md = doc["metadata"]
    if md.get("origin"):
        lines.append(f"origin: {_shown(md['origin'])}")
    for item in md.get("package_sources") or []:
        lines.append("package %s %s %s: %s (%s, by %s)" % tuple(_shown(item.get(k)) for k in (
            "change", "package", "version", "command", "source", "user")))
    for item in md.get("conffile_diffs") or []:
        if item.get("diff") is not None:
            lines.append("conffile %s changed from %s %s (%s):" % tuple(_shown(item.get(k)) for k in (
                "path", "package", "version", "source")))
            lines.extend("  " + "\t".join(_shown(part) for part in line.split("\t"))
                         for line in item["diff"].split("\n") if line)
        else:
            lines.append(f"conffile {_shown(item.get('path'))}: no diff: {_shown(item.get('error'))}")
    return lines


def main_install(args: list) -> int:
    as_json = "--json" in args
    args = [a for a in args if a != "--json"]
    if len(args) != 2 or args[0] not in ("--info", "--verify"):
        _say("usage: mo-install --info|--verify TEMPLATE [--json]  (a bundle directory, template.json, "
             "capture id or name)", file=sys.stderr)
        return 2
    try:
        config = hc.load_config()
        store = Store(config["capture_directory"])
        if not os.path.exists(args[1]):  # a capture id or name: one being finished comes first
            store.wait_finishing(FINISHING_WAIT)
        directory = find_bundle(store, args[1])
        if args[0] == "--verify":
            doc = tpl.verify_bundle(directory)
            _say("OK: %s is a valid template %s with every bundled file present and intact." % (
                directory, doc["MO_template"]["version"]))
            return 0
        doc = tpl.load_file(os.path.join(directory, tpl.BUNDLE_TEMPLATE))
        if as_json:
            _say(json.dumps(dict(tpl.describe(doc), conffile_diffs=doc["metadata"].get("conffile_diffs") or []),
                            indent=2, sort_keys=True))
        else:
            _say("\n".join(info_lines(doc)))
        return 0
    except (hc.ConfigError, tpl.TemplateError, StoreError) as exc:
        _say("mo-install: %s" % exc, file=sys.stderr)
        return 1
