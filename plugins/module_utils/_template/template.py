# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The mo.fleet capture template model: one document, many renderers.

A *template* is a JSON document recording everything a command changed on a host.  It keeps
the top-level shape of the seed's MO-capture v2.1 (``MO_template``, ``operations``,
``summary``, ``metadata``) and its field names, and extends them (see ``SCHEMA`` and
``schemas/template.schema.json``, generated from it).  Standard library only: this file runs
on targets (Python 3.9+) as well as on the controller.

Document shape (version ``TEMPLATE_VERSION``)::

    MO_template: version, system, timestamp, command, arguments, snapshots{pre,post},
                 generator, name, argv, chdir, host, status, rc, duration
    operations:  files_created, files_modified, files_deleted,          -> file entries
                 directories_created, directories_deleted,              -> file entries
                 symlinks_created, symlinks_modified, symlinks_deleted, -> file entries (+target)
                 permissions_changed                                    -> {path,type,before,after}
                 packages_installed, packages_removed, packages_upgraded
                 units_added, units_removed, units_enabled, units_disabled,
                 units_started, units_stopped
                 users_created, users_changed, users_deleted,
                 groups_created, groups_changed, groups_deleted
                 excluded, redacted                                     -> {path, reason}
    summary:     total_<operation> for every list above (always consistent)
    metadata:    analysis_method, template_version, trace, roots, exclude, bundle, ...

A *file entry* carries ``path, type, size, permissions ("0755"), owner, group, uid, gid,
hash (sha256 hex), modified (mtime)`` plus, where known, ``target`` (symlinks),
``package`` (owning dpkg package), ``conffile`` / ``conffile_changed`` (a dpkg conffile and
whether it differs from the packaged default), ``package_default`` (content equals the
package's md5sums), ``bundled`` (content is in the bundle at ``files/<path>``), ``before``
(the state before, for modified entries) and ``before_bundled`` (old content kept in the
bundle at ``before/<path>`` so a rollback can restore it), ``package_differs`` (a package's
path whose mode, owner or group differs from what the package ships: the package's values)
and ``elf_needed`` (the sonames an ELF file needs; ``metadata.shared_libraries`` says how
the capture host resolved each and which package owns it).

A *bundle* is a directory ``template.json`` + ``files/<absolute path>`` +
``before/<absolute path>``.

API (every function is pure unless it says it touches files):

``build(meta, operations, metadata=None) -> dict``
    Assemble a current-version template: fills defaults, sorts every list by its key,
    computes ``summary``.  ``meta`` holds the ``MO_template`` fields (``command`` and
    ``arguments`` are derived from ``argv`` when missing).  Raises TemplateError when the
    result is invalid.
``summarize(operations) -> dict``
    The ``summary`` block for an operations block.
``validate(doc, use_jsonschema=None, limit=50) -> list[str]``
    Every problem as one sentence each naming its field (empty list = valid): the one
    stdlib checker (``_common/validate``) of ``SCHEMA``, the same on controller and targets
    (``use_jsonschema`` is accepted and ignored), then semantic checks (summary totals,
    version agreement, normalised paths listed once).
``check(doc) -> dict``
    ``validate`` that raises TemplateError with the first problem (one sentence, with the
    count of the others); returns ``doc``.
``migrate(doc) -> dict``
    Convert any known version (MO-capture ``2.x``) to ``TEMPLATE_VERSION``; a current
    document is returned as a deep copy.  Raises TemplateError for unknown versions.
``detect_version(doc) -> str``
``load(source) -> dict``
    ``source`` is a dict, JSON text/bytes, or a path to a template file or bundle directory;
    parses, migrates, validates and returns the current-version document.
``loads(text) -> dict`` / ``load_file(path) -> dict``
    A template file larger than MAX_TEMPLATE_BYTES (1 GiB) is refused before it is read.
``dump(doc) -> str``
    Canonical JSON text (sorted keys, 2-space indent, trailing newline).
``dump_file(doc, path)``
    Validate then write atomically (temp file in the same directory + fsync + rename).
``iter_entries(doc, kinds=None) -> iterator of (operation, entry)``
    Walk the operation lists (all, or the names in ``kinds``).
``bundled_files(doc) -> list[(path, relpath, sha256)]``
    Content the bundle must hold: after-content ``files/...`` and before-content
    ``before/...`` with the sha256 each must have.
``verify_bundle(directory) -> dict``
    Load and validate DIRECTORY/template.json, check that every bundled file exists with the
    sha256 the template records and that the bundle holds nothing unlisted; returns the
    document or raises TemplateError (touches files: reads the bundle).
``describe(doc) -> dict``
    A short human summary (header fields, non-zero counts, packages, units, users).
``normalize_path(path) -> str``, ``check_path(path, roots=None) -> str``,
``is_within(path, root) -> bool``, ``bundle_relpath(path, area="files") -> str``,
``safe_join(base, path, area="files") -> str``
    Path validation for renderers: absolute, no ``..``/``.`` components, no NUL, inside the
    allowed roots; ``safe_join`` maps an absolute target path into a bundle directory and
    refuses anything that would escape it.
"""

from __future__ import annotations

import json
import os
import posixpath

# sha256_file: callers use tpl.sha256_file
from ansible_collections.mo.fleet.plugins.module_utils._common import fs as _fs
from ansible_collections.mo.fleet.plugins.module_utils._common.fs import atomic_write, sha256_file  # noqa: F401 pylint: disable=unused-import
from ansible_collections.mo.fleet.plugins.module_utils._common import paths as _paths

from ansible_collections.mo.fleet.plugins.module_utils._template.model import (  # noqa: F401 pylint: disable=unused-import
    ACCOUNT_OPERATIONS, build, BUNDLE_BEFORE, BUNDLE_FILES, BUNDLE_TEMPLATE, check, empty_operations,
    FILE_OPERATIONS, FILE_TYPES, GENERATOR, LEGACY_VERSIONS, MAX_ENTRIES, MAX_ID, MAX_PATH, MAX_SIZE,
    MAX_TEXT, normalize_path, OPERATIONS, PACKAGE_OPERATIONS, PATH_OPERATIONS, SCHEMA, schema, schema_json,
    SORT_KEYS, STATUSES, structural_errors, summarize, TEMPLATE_VERSION, TemplateError,
    UNIT_OPERATIONS, validate)
from ansible_collections.mo.fleet.plugins.module_utils._template.migrate import detect_version, migrate  # noqa: F401 pylint: disable=unused-import

MAX_TEMPLATE_BYTES = 1024 ** 3  # a template file larger than this is refused unread


# --------------------------------------------------------------------------- load / dump

def _parse(text):
    """The JSON value of TEXT (str or bytes); TemplateError in one sentence."""
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        return json.loads(text)
    except UnicodeDecodeError as exc:
        raise TemplateError("The template is not UTF-8 text (byte %d)." % exc.start)
    except RecursionError:
        raise TemplateError("The template nests its values too deeply to be read.")
    except ValueError as exc:
        raise TemplateError("The template is not valid JSON: %s." % str(exc).replace("\n", " "))


def loads(text):
    """Parse JSON text or bytes, migrate and validate; return the current document."""
    return check(migrate(_parse(text)))


def read_source(source):
    """(value, bundle) of SOURCE, the one reader of templates: a dict as it is, JSON text or
    bytes parsed, a path read with the size cap (a bundle directory: its template.json) and
    parsed; BUNDLE is the bundle directory a path names, else None.  Nothing is migrated or
    validated yet; TemplateError in one sentence."""
    if isinstance(source, dict):
        return source, None
    if isinstance(source, bytes) or (isinstance(source, str) and source.lstrip().startswith("{")):
        return _parse(source), None
    if not isinstance(source, (str, os.PathLike)):
        raise TemplateError("A template source must be a dict, JSON text or a path, not %s." % type(source).__name__)
    path, bundle = os.fspath(source), None
    if os.path.isdir(path):
        bundle = os.path.abspath(path)
        path = os.path.join(path, BUNDLE_TEMPLATE)
    elif os.path.basename(path) == BUNDLE_TEMPLATE and os.path.isfile(path):
        bundle = os.path.dirname(os.path.abspath(path))
    return _parse(read_template_bytes(path)), bundle


def load_file(path):
    """Load a template file, or the template.json of a bundle directory."""
    return load(os.fspath(path))


def read_template_bytes(path, error=None):
    """The bytes of the template file PATH; ERROR (TemplateError) when it cannot be read or is
    larger than MAX_TEMPLATE_BYTES (refused before it is read)."""
    error = error or TemplateError
    try:
        return _fs.read_capped(path, MAX_TEMPLATE_BYTES)
    except OSError as exc:
        raise error("Cannot read template %s: %s." % (path, exc.strerror)) from None
    except _fs.TooLarge as exc:
        if exc.size is None:
            raise error("The template %s is more than the %d bytes a template may be." % (path, MAX_TEMPLATE_BYTES)) from None
        raise error("The template %s is %d bytes, more than the %d a template may be."
                    % (path, exc.size, MAX_TEMPLATE_BYTES)) from None


def load(source):
    """A dict, JSON text/bytes or a path (file or bundle dir) -> validated current document."""
    value, _bundle = read_source(source)
    try:
        return check(migrate(value))
    except RecursionError:
        raise TemplateError("The template nests its values too deeply to be read.")


def dump(doc):
    """Canonical JSON text of DOC."""
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def dump_file(doc, path):
    """Validate DOC and write it atomically to PATH."""
    check(doc)
    atomic_write(path, dump(doc))


# --------------------------------------------------------------------------- helpers for renderers

def iter_entries(doc, kinds=None):
    """Yield (operation, entry) for every entry of the operation lists named in KINDS (or all)."""
    for op in (kinds or OPERATIONS):
        for entry in doc["operations"].get(op, []):
            yield op, entry


def bundled_files(doc):
    """[(target path, bundle relpath, sha256)] of all content the bundle holds."""
    out = []
    for op, entry in iter_entries(doc, FILE_OPERATIONS):
        if entry.get("bundled"):
            out.append((entry["path"], bundle_relpath(entry["path"], BUNDLE_FILES), entry.get("hash")))
        if entry.get("before_bundled"):
            before = entry.get("before") or {}
            digest = before.get("hash") if op != "files_deleted" else entry.get("hash")
            out.append((entry["path"], bundle_relpath(entry["path"], BUNDLE_BEFORE), digest))
    return out


def is_within(path, root):
    """True when normalised PATH equals ROOT or lies below it."""
    return _paths.within(path, root)


def check_path(path, roots=None):
    """Normalised PATH, or TemplateError when it is not absolute/clean or outside ROOTS."""
    try:
        return _paths.check_roots(path, [normalize_path(r) for r in roots or ()], "The path")
    except _paths.PathError as exc:
        raise TemplateError(str(exc))


def bundle_relpath(path, area=BUNDLE_FILES):
    """Where PATH's content lives inside a bundle: 'files/usr/bin/x'."""
    return posixpath.join(area, normalize_path(path).lstrip("/"))


def safe_join(base, path, area=BUNDLE_FILES, inside=None):
    """BASE/AREA/PATH on the local disk, refusing anything that escapes BASE via symlinks
    (INSIDE: a ``paths.Inside(base)`` shared by the calls of one check)."""
    candidate = os.path.join(base, bundle_relpath(path, area))
    if not (inside or _paths.Inside(base))(candidate):
        raise TemplateError("The bundle path for %s escapes the bundle directory %s." % (path, base))
    return candidate


def verify_bundle(directory):
    """Validate a bundle directory (template + content); return the template or raise TemplateError."""
    doc = load_file(os.path.join(directory, BUNDLE_TEMPLATE))
    check_bundle_content(doc, directory)
    return doc


def check_bundle_content(doc, directory):
    """TemplateError unless DIRECTORY holds every file DOC says the bundle holds, with its
    sha256, and nothing else (the one bundle check: verify_bundle and every renderer)."""
    if not os.path.isdir(directory):
        raise TemplateError("The bundle directory %s does not exist." % directory)
    expected = set()
    inside = _paths.Inside(directory)
    for path, rel, digest in bundled_files(doc):
        local = safe_join(directory, path, rel.split("/", 1)[0], inside)
        expected.add(os.path.normpath(local))
        if not os.path.isfile(local) or os.path.islink(local):
            raise TemplateError("The bundle %s lacks %s, which the template says it holds." % (directory, rel))
        if digest and sha256_file(local) != digest:
            raise TemplateError("The bundled file %s does not match its sha256 in the template." % rel)
    unlisted_bundle_file(directory, expected)


def unlisted_bundle_file(directory, expected):
    """TemplateError when DIRECTORY's content areas hold anything but the EXPECTED files
    (normalised local paths): an unlisted file, a symlink or a special file."""
    for area in (BUNDLE_FILES, BUNDLE_BEFORE):
        top = os.path.join(directory, area)
        if os.path.islink(top):
            raise TemplateError("The bundle's %s is a symlink, which a bundle never holds." % area)
        for base, dirs, files in os.walk(top):
            file_names = set(files)
            for name in dirs + files:
                local = os.path.join(base, name)
                if os.path.islink(local):
                    raise TemplateError("The bundle holds the symlink %s, which a bundle never holds."
                                        % os.path.relpath(local, directory))
                if name in file_names and os.path.normpath(local) not in expected:
                    raise TemplateError("The bundle holds %s, which the template does not list."
                                        % os.path.relpath(local, directory))


def describe(doc):
    """A short summary of DOC for people (what MO-install --info showed)."""
    head = doc["MO_template"]
    ops = doc["operations"]
    return {
        "name": head.get("name"),
        "host": head.get("host"),
        "system": head["system"],
        "timestamp": head["timestamp"],
        "command": (head["command"] + " " + head["arguments"]).strip(),
        "status": head["status"],
        "rc": head.get("rc"),
        "version": head["version"],
        "migrated_from": doc["metadata"].get("migrated_from"),
        "analysis_method": doc["metadata"]["analysis_method"],
        "counts": dict((k[len("total_"):], v) for k, v in sorted(doc["summary"].items()) if v),
        "packages_installed": ["%s=%s" % (p["name"], p["version"]) for p in ops["packages_installed"]],
        "units_added": [u["unit"] for u in ops["units_added"]],
        "users_created": [u["name"] for u in ops["users_created"]],
        "bundled_files": len(bundled_files(doc)),
        "redacted": ["%s (%s)" % (r["path"], r["reason"]) for r in ops["redacted"]],
    }
