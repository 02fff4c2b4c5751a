"""Helpers for the repository tests: real .debs from dpkg-deb and throwaway gpg keys."""

import hashlib
import os
import subprocess
from pathlib import Path


def build_deb(workdir, name, version="1.0-1", arch="all", compress="xz", files=None,
              conffiles=(), extra_fields=None, md5sums=True, out=None):
    """Build a real .deb with dpkg-deb; return its path."""
    workdir = Path(workdir)
    root = workdir / f"build-{name}-{version.replace(':', '_')}-{arch}-{compress}"
    (root / "DEBIAN").mkdir(parents=True, exist_ok=True)
    files = dict(files or {f"usr/share/doc/{name}/README": f"{name} {version}\n"})
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        if rel.startswith(("usr/bin/", "usr/sbin/", "bin/")):
            path.chmod(0o755)
    fields = {"Package": name, "Version": version, "Architecture": arch,
              "Maintainer": "mo.fleet tests <tests@example.invalid>",
              "Description": f"test package {name}\n long description line\n .\n second paragraph"}
    fields.update(extra_fields or {})
    (root / "DEBIAN" / "control").write_text("".join(f"{k}: {v}\n" for k, v in fields.items()))
    if conffiles:
        (root / "DEBIAN" / "conffiles").write_text("".join(f"{c}\n" for c in conffiles))
    if md5sums:
        lines = [f"{hashlib.md5((root / rel).read_bytes()).hexdigest()}  {rel}\n" for rel in sorted(files)]
        (root / "DEBIAN" / "md5sums").write_text("".join(lines))
    out = Path(out) if out else workdir / f"{name}_{version.replace(':', '%3a')}_{arch}.deb"
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["dpkg-deb", "--root-owner-group", f"-Z{compress}", "-b", str(root), str(out)],
                   check=True, capture_output=True)
    return out


def make_gpg_home(path, uid="mo.fleet test archive <archive@example.invalid>"):
    """A GNUPGHOME with one unprotected ed25519 signing key; return (home, fingerprint)."""
    home = Path(path)
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(home, 0o700)
    env = dict(os.environ, GNUPGHOME=str(home))
    subprocess.run(["gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", "",
                    "--quick-gen-key", uid, "ed25519", "sign", "never"],
                   check=True, capture_output=True, env=env)
    out = subprocess.run(["gpg", "--batch", "--with-colons", "--list-secret-keys"],
                         check=True, capture_output=True, text=True, env=env).stdout
    fpr = next(line.split(":")[9] for line in out.splitlines() if line.startswith("fpr:"))
    return home, fpr


def export_keyring(home, dest):
    """Export the public key of HOME as a binary keyring file at DEST (for gpgv)."""
    env = dict(os.environ, GNUPGHOME=str(home))
    data = subprocess.run(["gpg", "--batch", "--export"], check=True, capture_output=True, env=env).stdout
    Path(dest).write_bytes(data)
    return Path(dest)


def kill_agent(home):
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], capture_output=True)


def ar_archive(members):
    """An ar archive (the .deb container) of MEMBERS: [(name, bytes)], built by hand so a
    test can put any member, however hostile, into a .deb."""
    out = b"!<arch>\n"
    for name, blob in members:
        out += f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(blob):<10}`\n".encode() + blob
        out += b"\n" if len(blob) % 2 else b""
    return out


def deb_members(path):
    """The (name, bytes) members of the .deb at PATH, read with ar(1)'s layout."""
    data = Path(path).read_bytes()
    pos, out = 8, []
    while pos < len(data):
        header = data[pos:pos + 60]
        name = header[:16].decode().strip().rstrip("/")
        size = int(header[48:58].decode().strip())
        out.append((name, data[pos + 60:pos + 60 + size]))
        pos += 60 + size + (size & 1)
    return out


def tar_bytes(entries):
    """A tar archive (GNU format) of ENTRIES: [(name, bytes)], each a 0644 regular file."""
    import io
    import tarfile
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, blob in entries:
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(blob))
    return buf.getvalue()


def gzip_bytes(blob):
    """BLOB as one gzip member."""
    import zlib
    comp = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return comp.compress(blob) + comp.flush()
