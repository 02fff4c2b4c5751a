# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host CLI's configuration (/etc/mo-fleet/capture.yaml) and interception rule.

``load_config(path) -> dict``
    The seed's settings (``capture_directories``, ``ignore_patterns``,
    ``intercepted_commands``, ``snapshots.max_count`` / ``auto_cleanup``, ``logging``)
    plus the collection's (``config_directories``, ``keep_secrets``, ``trace``,
    ``analyze_config``, ``capture_directory``: its old name ``store`` is read too), each
    checked; a missing file gives the defaults.  The
    file is YAML; the target role writes it in JSON form (JSON is YAML), which the host
    reads without a YAML library; a hand-written YAML file is read when python3-yaml is
    installed.  ConfigError names the field and the problem in one sentence.
``exclude_list(config) -> list``
    ``ignore_patterns`` as the capture engine's absolute exclude patterns (``*.log``
    becomes ``/*.log``, which matches at any depth: fnmatch's ``*`` matches ``/``).
``is_change(argv) -> bool``
    The interception rule: does this command line change the system?  See RULES below and
    docs/interception.md.

Standard library only (runs on targets).
"""

from __future__ import annotations

import copy
import json
import re

from ansible_collections.mo.fleet.plugins.module_utils._capture import snapshot_tree as snap
from ansible_collections.mo.fleet.plugins.module_utils._common import names
from ansible_collections.mo.fleet.plugins.module_utils._common.fs import TooLarge, read_capped

CONFIG_PATH = "/etc/mo-fleet/capture.yaml"
MAX_CONFIG_BYTES = 1024 * 1024
INTERCEPTABLE = ("apt-get", "apt", "dpkg", "make", "pip", "pip3")
DEFAULTS = {
    "capture_directories": ["/"],
    "ignore_patterns": list(snap.DEFAULT_EXCLUDE),
    "config_directories": list(snap.CONFIG_ROOTS),
    "keep_secrets": [],
    "trace": "auto",
    "intercepted_commands": list(INTERCEPTABLE),
    "snapshots": {"max_count": 50, "auto_cleanup": True},
    "logging": {"level": "INFO", "file": "/var/log/mo-fleet/capture.log", "max_size": "10MB", "backups": 5},
    "analyze_config": True,
    "capture_directory": snap.CAPTURE_DIR,
}
OLD_KEYS = {"store": "capture_directory"}  # the names settings had before, still read
IGNORED_KEYS = ("version", "system", "strace")  # the seed's, without meaning here
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
_SIZE = re.compile(r"([0-9]{1,12})\s*([KMG]?)B?", re.IGNORECASE)


class ConfigError(Exception):
    """The configuration is wrong; the message is one sentence naming the field."""


def parse_size(value, field: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    match = _SIZE.fullmatch(str(value).strip()) if isinstance(value, str) else None
    if not match or int(match.group(1)) == 0:
        raise ConfigError("%s must be a size such as 10MB or a positive number of bytes, not %r." % (field, value))
    return int(match.group(1)) * {"": 1, "K": 1024, "M": 1024 ** 2, "G": 1024 ** 3}[match.group(2).upper()]


def _parse_text(text: str, path: str):
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        import yaml  # python3-yaml, when installed; the role writes JSON
    except ImportError:
        raise ConfigError("%s is neither JSON-form YAML nor readable without python3-yaml; write it as JSON "
                          "or install python3-yaml." % path)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError("%s is not valid YAML: %s." % (path, str(exc).splitlines()[0]))


def _paths_list(value, field: str, absolute: bool = True) -> list:
    if not isinstance(value, list) or not all(isinstance(v, str) and names.is_valid("line", v) and v
                                              for v in value):
        raise ConfigError("%s must be a list of one-line strings." % field)
    if absolute and not all(v.startswith("/") for v in value):
        raise ConfigError("%s must list absolute paths." % field)
    return value


def _check(config: dict) -> dict:
    _paths_list(config["capture_directories"], "capture_directories")
    _paths_list(config["ignore_patterns"], "ignore_patterns", absolute=False)
    _paths_list(config["config_directories"], "config_directories")
    _paths_list(config["keep_secrets"], "keep_secrets")
    if config["trace"] not in ("auto", "fanotify", "strace", "none"):
        raise ConfigError("trace must be auto, fanotify, strace or none, not %r." % (config["trace"],))
    commands = config["intercepted_commands"]
    if not isinstance(commands, list) or not all(c in INTERCEPTABLE for c in commands):
        raise ConfigError("intercepted_commands must list some of %s." % ", ".join(INTERCEPTABLE))
    snaps = config["snapshots"]
    count = snaps.get("max_count")
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise ConfigError("snapshots.max_count must be a positive whole number, not %r." % (count,))
    if not isinstance(snaps.get("auto_cleanup"), bool):
        raise ConfigError("snapshots.auto_cleanup must be true or false.")
    logs = config["logging"]
    if str(logs.get("level", "")).upper() not in LEVELS:
        raise ConfigError("logging.level must be one of %s, not %r." % (", ".join(LEVELS), logs.get("level")))
    logs["level"] = str(logs["level"]).upper()
    _paths_list([logs.get("file")] if isinstance(logs.get("file"), str) else None, "logging.file")
    logs["max_bytes"] = parse_size(logs.get("max_size"), "logging.max_size")
    if not isinstance(logs.get("backups"), int) or isinstance(logs.get("backups"), bool) or logs["backups"] < 0:
        raise ConfigError("logging.backups must be 0 or a positive whole number.")
    if not isinstance(config["analyze_config"], bool):
        raise ConfigError("analyze_config must be true or false.")
    _paths_list([config["capture_directory"]] if isinstance(config["capture_directory"], str) else None,
                "capture_directory")
    return config


def merge(data) -> dict:
    """DEFAULTS overlaid with DATA (the parsed file), checked."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("The configuration must be a mapping of settings, not %s." % type(data).__name__)
    config = copy.deepcopy(DEFAULTS)
    data = _new_keys(data)
    for key, value in data.items():
        if key in IGNORED_KEYS:
            continue
        if key not in DEFAULTS:
            raise ConfigError("%r is not a setting of mo-capture (known: %s)." % (str(key)[:64], ", ".join(DEFAULTS)))
        if isinstance(DEFAULTS[key], dict):
            if not isinstance(value, dict):
                raise ConfigError("%s must be a mapping." % key)
            unknown = set(value) - set(DEFAULTS[key])
            if unknown:
                raise ConfigError("%s.%s is not a setting of mo-capture." % (key, str(sorted(unknown)[0])[:64]))
            config[key].update(value)
        else:
            config[key] = value
    return _check(config)


def _new_keys(data: dict) -> dict:
    """DATA with the old names of settings (OLD_KEYS) read as their new names."""
    out = dict(data)
    for old, new in OLD_KEYS.items():
        if old in out:
            value = out.pop(old)
            if new in out and out[new] != value:
                raise ConfigError("%s and its old name %s are both set, to different values; keep %s." % (new, old, new))
            out[new] = value
    return out


def load_config(path: str = CONFIG_PATH) -> dict:
    try:
        raw = read_capped(path, MAX_CONFIG_BYTES)
    except FileNotFoundError:
        return merge({})
    except OSError as exc:
        raise ConfigError("%s cannot be read: %s." % (path, exc.strerror))
    except TooLarge:
        raise ConfigError("%s is larger than %d bytes." % (path, MAX_CONFIG_BYTES)) from None
    return merge(_parse_text(raw.decode("utf-8", "replace"), path))


def exclude_list(config: dict) -> list:
    out = []
    for item in config["ignore_patterns"]:
        out.append(item if item.startswith("/") else "/" + item if item.startswith("*") else "/*/" + item)
    return out


# --------------------------------------------------------------------------- interception rule
# A command line is a change when its action word (the first word that is not an option or an
# option's value) is one of CHANGES, and no word is one of the NOT_CHANGE options.
RULES = {
    "apt-get": {
        "changes": ("install", "remove", "purge", "upgrade", "dist-upgrade", "full-upgrade", "autoremove",
                    "autopurge", "reinstall", "build-dep", "satisfy", "dselect-upgrade"),
        "not_change": ("-s", "--simulate", "--just-print", "--dry-run", "--recon", "--no-act", "-h", "--help",
                       "-v", "--version", "--print-uris", "-d", "--download-only"),
        "with_value": ("-o", "--option", "-c", "--config-file", "-t", "--target-release", "-a",
                       "--host-architecture"),
    },
    "dpkg": {
        "options": ("-i", "--install", "-r", "--remove", "-P", "--purge", "--unpack", "--configure",
                    "--triggers-only", "--set-selections", "--clear-selections"),
        "not_change": ("--dry-run", "--no-act", "--simulate", "-h", "--help", "--version"),
    },
    "make": {
        "not_change": ("-n", "--dry-run", "--just-print", "--recon", "-q", "--question", "-h", "--help", "-v",
                       "--version", "-p", "--print-data-base"),
        "with_value": ("-C", "--directory", "-f", "--file", "--makefile", "-I", "--include-dir", "-o",
                       "--old-file", "-W", "--what-if", "--new-file", "--assume-new", "-l", "--load-average"),
    },
    "pip": {
        "changes": ("install", "uninstall"),
        "not_change": ("--dry-run", "-h", "--help", "-V", "--version"),
        "with_value": ("--python", "--log", "--proxy", "--retries", "--timeout", "--exists-action", "--trusted-host",
                       "--cert", "--client-cert", "--cache-dir", "--use-feature", "--use-deprecated"),
    },
}
RULES["apt"] = RULES["apt-get"]
RULES["pip3"] = RULES["pip"]


def _words(argv: list, with_value: tuple) -> list:
    """The non-option words of ARGV (option values and VAR=value assignments skipped)."""
    out, skip = [], False
    for word in argv:
        if skip:
            skip = False
            continue
        if word == "--":
            continue
        if word.startswith("-"):
            skip = word in with_value
            continue
        out.append(word)
    return out


def is_change(argv: list) -> bool:
    """True when ARGV (program first) is a command that changes the system (see RULES)."""
    if not argv:
        return False
    program = argv[0].rsplit("/", 1)[-1]
    rule = RULES.get(program)
    if rule is None:
        return False
    args = list(argv[1:])
    if any(a in rule["not_change"] or a.split("=", 1)[0] in rule["not_change"] for a in args):
        return False
    if program == "dpkg":
        return any(a in rule["options"] or a.split("=", 1)[0] in rule["options"] for a in args)
    words = _words(args, rule.get("with_value", ()))
    if program == "make":
        return any(w == "install" or w.startswith("install-") or w.endswith("-install") for w in words
                   if "=" not in w)
    return bool(words) and words[0] in rule["changes"]
