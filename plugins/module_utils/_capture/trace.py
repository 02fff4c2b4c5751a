# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Learn which paths a command touched: fanotify (ctypes) or strace.

Standard library only (runs on targets, Python 3.9+).

``FanotifyTracer(marks)``
    ``start()`` marks every filesystem in MARKS (paths, one per filesystem) with
    ``FAN_MARK_FILESYSTEM`` and ``FAN_REPORT_DFID_NAME`` and reads events in a thread,
    resolving each directory handle to a path at once with ``open_by_handle_at``;
    ``stop()`` drains the queue and returns a ``TraceResult``.  ``start()`` raises
    ``TraceUnsupported`` (with the errno's reason) where the kernel or the filesystem cannot
    do it: not root, no fanotify, overlayfs (podman's default root) and friends.
``strace_argv(argv, log)`` / ``parse_strace(text, cwd)``
    MO-capture's method: run under ``strace -f -e trace=file,chmod,chown`` and attribute
    every path to the processes that touched it.
``TraceResult``
    ``touched``: {path: set(event names)}, ``processes``: {path: set("comm[pid]")},
    ``lossy``: why the event stream cannot be trusted (None when it can).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import re
import select
import struct
import threading

FAN_CLOEXEC = 0x1
FAN_NONBLOCK = 0x2
FAN_CLASS_NOTIF = 0x0
FAN_UNLIMITED_QUEUE = 0x10
FAN_REPORT_DIR_FID = 0x400
FAN_REPORT_NAME = 0x800
FAN_REPORT_DFID_NAME = FAN_REPORT_DIR_FID | FAN_REPORT_NAME
FAN_MARK_ADD = 0x1
FAN_MARK_FILESYSTEM = 0x100

FAN_MODIFY = 0x2
FAN_ATTRIB = 0x4
FAN_CLOSE_WRITE = 0x8
FAN_MOVED_FROM = 0x40
FAN_MOVED_TO = 0x80
FAN_CREATE = 0x100
FAN_DELETE = 0x200
FAN_Q_OVERFLOW = 0x4000
FAN_ONDIR = 0x40000000

EVENT_NAMES = (
    (FAN_MODIFY, "modify"), (FAN_ATTRIB, "attrib"), (FAN_CLOSE_WRITE, "close_write"),
    (FAN_MOVED_FROM, "moved_from"), (FAN_MOVED_TO, "moved_to"), (FAN_CREATE, "create"),
    (FAN_DELETE, "delete"),
)
MASK = FAN_MODIFY | FAN_ATTRIB | FAN_CLOSE_WRITE | FAN_MOVED_FROM | FAN_MOVED_TO | \
    FAN_CREATE | FAN_DELETE | FAN_ONDIR

FAN_EVENT_INFO_TYPE_FID = 1
FAN_EVENT_INFO_TYPE_DFID_NAME = 2
FAN_EVENT_INFO_TYPE_DFID = 3
AT_FDCWD = -100
O_PATH = getattr(os, "O_PATH", 0o10000000)

_META = struct.Struct("=IBBHQii")
_INFO = struct.Struct("=BBH")
_FSID = struct.Struct("=ii")
_HANDLE = struct.Struct("=Ii")

UNSUPPORTED_ERRNOS = (errno.EINVAL, errno.EOPNOTSUPP, errno.EPERM, errno.ENOSYS,
                      errno.EXDEV, errno.ENODEV, errno.EACCES, errno.ENOTDIR)


class TraceUnsupported(Exception):
    """This kernel/filesystem/user cannot trace with fanotify; the message says why."""


class TraceResult(object):
    def __init__(self, method):
        self.method = method
        self.touched = {}
        self.processes = {}
        self.lossy = None
        self.events = 0
        self.stale = 0
        self.unresolved = 0
        self.errnos = {}

    def add(self, path, names, who=None):
        self.touched.setdefault(path, set()).update(names)
        if who:
            self.processes.setdefault(path, set()).add(who)


def _libc():
    try:
        # the glibc soname; find_library() would run ldconfig in a subprocess
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    try:
        init = libc.fanotify_init
        mark = libc.fanotify_mark
        open_by_handle = libc.open_by_handle_at
    except AttributeError:
        raise TraceUnsupported("the C library has no fanotify functions")
    init.argtypes = [ctypes.c_uint, ctypes.c_uint]
    init.restype = ctypes.c_int
    mark.argtypes = [ctypes.c_int, ctypes.c_uint, ctypes.c_uint64, ctypes.c_int, ctypes.c_char_p]
    mark.restype = ctypes.c_int
    open_by_handle.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    open_by_handle.restype = ctypes.c_int
    return libc


def _fsid_key(val0, val1):
    return (val0 & 0xFFFFFFFF) | ((val1 & 0xFFFFFFFF) << 32)


def _comm(pid, cache):
    if pid not in cache:
        try:
            with open("/proc/%d/comm" % pid) as handle:
                cache[pid] = "%s[%d]" % (handle.read().strip(), pid)
        except OSError:
            cache[pid] = "[%d]" % pid
    return cache[pid]


class FanotifyTracer(object):
    """Filesystem-wide fanotify watch with directory handles resolved on the fly."""

    def __init__(self, marks, record_processes=True):
        self.marks = list(dict.fromkeys(marks))
        self.record_processes = record_processes
        self.result = TraceResult("fanotify")
        self.fd = -1
        self.mount_fds = {}
        self.dir_cache = {}
        self.comm_cache = {}
        self._stop = threading.Event()
        self._thread = None
        self._own_pid = os.getpid()

    # -- setup
    def start(self):
        if os.geteuid() != 0:
            raise TraceUnsupported("fanotify filesystem marks need root")
        self.libc = _libc()
        fd = self.libc.fanotify_init(FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK |
                                     FAN_UNLIMITED_QUEUE | FAN_REPORT_DFID_NAME,
                                     os.O_RDONLY | getattr(os, "O_LARGEFILE", 0))
        if fd < 0:
            err = ctypes.get_errno()
            raise TraceUnsupported("fanotify_init failed: %s" % os.strerror(err))
        self.fd = fd
        try:
            for path in self.marks:
                rc = self.libc.fanotify_mark(fd, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, MASK,
                                             AT_FDCWD, os.fsencode(path))
                if rc < 0:
                    err = ctypes.get_errno()
                    raise TraceUnsupported("fanotify cannot mark the filesystem of %s: %s"
                                           % (path, os.strerror(err)))
                mfd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                self.mount_fds[os.statvfs(path).f_fsid] = mfd
        except BaseException:
            self.close()
            raise
        self._thread = threading.Thread(target=self._loop, name="mo-fleet-fanotify")
        self._thread.daemon = True
        self._thread.start()
        return self

    def close(self):
        for mfd in self.mount_fds.values():
            try:
                os.close(mfd)
            except OSError:
                pass
        self.mount_fds = {}
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    # -- reading
    def _loop(self):
        poller = select.poll()
        poller.register(self.fd, select.POLLIN)
        while not self._stop.is_set():
            if poller.poll(100):
                self._drain()
        self._drain()

    def _drain(self):
        while True:
            try:
                data = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                return
            except OSError as exc:
                self.result.lossy = "reading fanotify events failed: %s" % exc.strerror
                return
            if not data:
                return
            self._parse(data)

    def _resolve(self, key, fsid, handle):
        path = self.dir_cache.get(key)
        if path is not None:
            return path
        mfd = self.mount_fds.get(_fsid_key(*fsid))
        candidates = [mfd] if mfd is not None else list(self.mount_fds.values())
        for mount_fd in candidates:
            fd = self.libc.open_by_handle_at(mount_fd, handle, O_PATH)
            if fd < 0:
                err = ctypes.get_errno()
                if err == errno.ESTALE:
                    # the directory is gone; its removal was reported through its parent
                    return False
                self.result.errnos[err] = self.result.errnos.get(err, 0) + 1
                continue
            try:
                path = os.readlink("/proc/self/fd/%d" % fd)
            finally:
                os.close(fd)
            if path.endswith(" (deleted)"):
                path = path[:-len(" (deleted)")]
            self.dir_cache[key] = path
            return path
        return None

    def _parse(self, data):
        offset = 0
        size = len(data)
        result = self.result
        while offset + _META.size <= size:
            event_len, _vers, _res, meta_len, mask, fd, pid = _META.unpack_from(data, offset)
            if event_len < _META.size:
                break
            end = offset + event_len
            if fd >= 0:
                os.close(fd)
            if mask & FAN_Q_OVERFLOW:
                result.lossy = "the fanotify event queue overflowed"
            names = [name for bit, name in EVENT_NAMES if mask & bit]
            pos = offset + meta_len
            while pos + _INFO.size <= end:
                info_type, _pad, info_len = _INFO.unpack_from(data, pos)
                if info_len == 0:
                    break
                if info_type in (FAN_EVENT_INFO_TYPE_DFID_NAME, FAN_EVENT_INFO_TYPE_DFID,
                                 FAN_EVENT_INFO_TYPE_FID):
                    fsid = _FSID.unpack_from(data, pos + _INFO.size)
                    hpos = pos + _INFO.size + _FSID.size
                    hbytes, _htype = _HANDLE.unpack_from(data, hpos)
                    handle = data[hpos:hpos + _HANDLE.size + hbytes]
                    name = ""
                    if info_type == FAN_EVENT_INFO_TYPE_DFID_NAME:
                        raw = data[hpos + _HANDLE.size + hbytes:pos + info_len]
                        name = os.fsdecode(raw.split(b"\0", 1)[0])
                    directory = self._resolve(data[pos + _INFO.size:hpos + _HANDLE.size + hbytes],
                                              fsid, handle)
                    if directory is None:
                        # not reachable through our mounts: a directory outside this root
                        # (a container on a shared filesystem); ours always resolve, or are
                        # gone (ESTALE) and then their removal came through their parent
                        result.unresolved += 1
                    elif directory is False:
                        result.stale += 1
                    else:
                        result.events += 1
                        if name in ("", "."):
                            path = directory
                        else:
                            path = directory.rstrip("/") + "/" + name
                        who = None
                        if self.record_processes and pid > 0 and pid != self._own_pid:
                            who = _comm(pid, self.comm_cache)
                        result.add(path, names, who)
                pos += info_len
            offset = end

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.close()
        return self.result


def probe(path="/"):
    """None when fanotify filesystem marks work for PATH here, else the reason they do not."""
    tracer = FanotifyTracer([path], record_processes=False)
    try:
        tracer.start()
    except TraceUnsupported as exc:
        return str(exc)
    tracer.stop()
    return None


# --------------------------------------------------------------------------- strace

STRACE_EXPR = "trace=file,chmod,chown"
_LINE = re.compile(r"^(\d+)\s+(?:<\.\.\.\s+)?(\w+)\((.*)")
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')
_WRITE_FLAGS = ("O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_APPEND")
_ALWAYS = {
    "mkdir", "mkdirat", "rmdir", "unlink", "unlinkat", "rename", "renameat", "renameat2",
    "link", "linkat", "symlink", "symlinkat", "chmod", "fchmodat", "fchmodat2", "chown",
    "lchown", "fchownat", "truncate", "mknod", "mknodat", "utime", "utimes", "utimensat",
    "futimesat", "setxattr", "lsetxattr", "removexattr", "lremovexattr",
}
_EVENTS = {
    "mkdir": "create", "mkdirat": "create", "rmdir": "delete", "unlink": "delete",
    "unlinkat": "delete", "rename": "moved", "renameat": "moved", "renameat2": "moved",
    "link": "create", "linkat": "create", "symlink": "create", "symlinkat": "create",
    "mknod": "create", "mknodat": "create",
}


def strace_argv(argv, log):
    """ARGV run under MO-capture's strace (-f, file + chmod + chown syscalls) logging to LOG."""
    return ["strace", "-f", "-qq", "-s", "4096", "-o", log, "-e", STRACE_EXPR, "--"] + list(argv)


def _unescape(text):
    try:
        return text.encode("latin-1", "backslashreplace").decode("unicode_escape").encode("latin-1").decode(
            "utf-8", "surrogateescape")
    except (UnicodeDecodeError, UnicodeEncodeError):
        return text


def parse_strace(text, cwd="/"):
    """A TraceResult from an strace -f log: write-like calls per path and who made them."""
    result = TraceResult("strace")
    programs = {}
    for line in text.splitlines():
        match = _LINE.match(line)
        if not match:
            continue
        pid, call, rest = int(match.group(1)), match.group(2), match.group(3)
        if "resumed>" in line and line.lstrip(" 0123456789").startswith("<..."):
            continue
        paths = [_unescape(p) for p in _QUOTED.findall(rest.split(" = ")[0] if " = " in rest else rest)]
        if call == "execve" and paths:
            if " = -1 " not in line:
                programs[pid] = os.path.basename(paths[0])
            continue
        if call in ("open", "openat", "creat", "open_by_handle_at", "openat2"):
            if call != "creat" and not any(flag in rest for flag in _WRITE_FLAGS):
                continue
            event = "create" if "O_CREAT" in rest or call == "creat" else "modify"
        elif call in _ALWAYS:
            event = _EVENTS.get(call, "attrib" if "ch" in call or "xattr" in call else "modify")
        else:
            continue
        if call.startswith("rename"):
            paths = paths[:2]
        elif call in ("symlink", "symlinkat"):
            paths = paths[1:2]
        elif call in ("link", "linkat"):
            paths = paths[1:2]
        else:
            paths = paths[:1]
        who = "%s[%d]" % (programs.get(pid, "?"), pid)
        for index, path in enumerate(paths):
            if not path:
                continue
            if not path.startswith("/"):
                path = os.path.normpath(os.path.join(cwd, path))
            name = event
            if event == "moved":
                name = "moved_from" if index == 0 else "moved_to"
            result.add(path, [name], who)
        result.events += 1
    return result
