#!/usr/bin/env python3
"""Checks skopsfs against hostile archives (NAME.skops + NAME.json with
`expect`, optional `also_ok`, and checks), for the daemon and the CLI.

mount_fails: the mount exits non-zero with 1-3 lines on stderr and leaves
nothing mounted; the CLI's audit exits 2 with one line (unless `also_ok` is
mounts).
mounts: it mounts, survives a full walk (every file read, every xattr read,
no link resolving outside the mount, names <= 255 bytes) and every listed
check holds. Prints "N passed, N failed" last."""
import argparse
import errno
import hashlib
import json
import os
import signal
import stat
import subprocess
import sys
import tempfile

from checklib import mounted, report_problems, unmount

WALK_SECONDS = 60


class Failure(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Failure(message)


def unmount_or_fail(directory):
    if unmount(directory) is not None:
        raise Failure(f"cannot unmount {directory}")


def walk(root, may_fail=()):
    """Reads everything a user could; returns the number of entries seen.
    Files in MAY_FAIL may fail to read with EIO (the archive lies)."""
    seen = 0
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            seen += 1
            path = os.path.join(directory, name)
            check(len(os.fsencode(name)) <= 255, f"name longer than 255 bytes: {name!r}")
            st = os.lstat(path)
            try:
                for attr in os.listxattr(path, follow_symlinks=False):
                    os.getxattr(path, attr, follow_symlinks=False)
            except OSError as e:
                check(e.errno in (errno.EACCES, errno.ENOTSUP, errno.EPERM), f"{path}: xattr: {e}")
            if stat.S_ISLNK(st.st_mode):
                target = os.path.realpath(path)
                check(target == root or target.startswith(root + os.sep),
                      f"{path} resolves outside the mount: {target}")
            elif stat.S_ISREG(st.st_mode):
                try:
                    with open(path, "rb") as f:
                        while f.read(1 << 20):
                            pass
                except PermissionError:
                    check(st.st_mode & 0o777 == 0, f"{path}: EACCES but mode {oct(st.st_mode)}")
                except OSError as e:
                    check(e.errno == errno.EIO and os.path.relpath(path, root) in may_fail,
                          f"{path}: {e}")
    return seen


def check_mounted(m, root):
    untrusted_path = os.path.join(root, ".skops/untrusted")
    with open(untrusted_path) as f:
        untrusted = f.read().splitlines()
    if "untrusted_exact" in m:
        check(untrusted == m["untrusted_exact"], f".skops/untrusted is {untrusted}")
    for t in m.get("refused_types", []):
        check(t in untrusted, f"{t} not refused")
    p = lambda rel: os.path.join(root, rel) if rel else root
    for rel in m.get("must_exist", []):
        check(os.path.lexists(p(rel)), f"{rel} missing")
    for rel in m.get("must_not_exist", []):
        check(not os.path.lexists(p(rel)), f"{rel} exists")
    for rel in m.get("denied", []):
        st = os.lstat(p(rel))
        check(st.st_mode & 0o777 == 0, f"{rel}: mode {oct(st.st_mode)}")
        try:
            if stat.S_ISDIR(st.st_mode):
                os.listdir(p(rel))
            else:
                open(p(rel), "rb").close()
            raise Failure(f"{rel}: not denied")
        except PermissionError:
            pass
    for rel in m.get("unreachable", []):
        try:
            os.lstat(p(rel))
            raise Failure(f"{rel}: reachable")
        except PermissionError:
            pass
    kinds = {"dir": stat.S_ISDIR, "file": stat.S_ISREG, "symlink": stat.S_ISLNK}
    for rel, kind in m.get("kind", {}).items():
        check(kinds[kind](os.lstat(p(rel)).st_mode), f"{rel}: not a {kind}")
    for rel, content in m.get("file_content", {}).items():
        with open(p(rel), "rb") as f:
            data = f.read()
        check(data == content.encode(), f"{rel}: {data[:80]!r}")
    for rel, digest in m.get("file_sha256", {}).items():
        with open(p(rel), "rb") as f:
            check(hashlib.sha256(f.read()).hexdigest() == digest, f"{rel}: sha256")
    for rel, size in m.get("file_size", {}).items():
        check(os.stat(p(rel)).st_size == size, f"{rel}: st_size")
        with open(p(rel), "rb") as f:
            check(len(f.read()) == size, f"{rel}: read length")
    for rel, count in m.get("dir_entries", {}).items():
        names = [n for n in os.listdir(p(rel)) if not n.startswith(".")]
        check(len(names) == count, f"{rel or '/'}: {len(names)} entries: {sorted(names)}")
    for rel, target in m.get("symlink_to", {}).items():
        check(os.path.islink(p(rel)), f"{rel}: not a link")
        check(os.path.realpath(p(rel)) == os.path.realpath(p(target)), f"{rel}: links elsewhere")
    for rel in m.get("read_must_fail", []):
        try:
            with open(p(rel), "rb") as f:
                f.read()
            raise Failure(f"{rel}: read succeeded")
        except OSError:
            pass


def check_mount(args, m, archive):
    directory = tempfile.mkdtemp(prefix="skopsfs-hostile-")
    try:
        r = subprocess.run([*args.wrapper, args.mount_bin, archive, directory],
                           capture_output=True, timeout=WALK_SECONDS)
        outcomes = {m["expect"], m.get("also_ok", m["expect"])}
        if r.returncode != 0:
            check("mount_fails" in outcomes, f"mount failed: {r.stderr.decode(errors='replace')}")
            lines = r.stderr.decode(errors="replace").strip().splitlines()
            check(1 <= len(lines) <= 3, f"mount failed with {len(lines)} lines on stderr")
            check(not mounted(directory), "left mounted")
            return
        try:
            check("mounts" in outcomes, "mounted a file that must fail")
            signal.alarm(WALK_SECONDS)
            try:
                walk(directory, m.get("read_must_fail", ()))
                check_mounted(m, directory)
            finally:
                signal.alarm(0)
        finally:
            unmount_or_fail(directory)
    finally:
        os.rmdir(directory)


def check_cli(args, m, archive):
    r = subprocess.run([args.skopsfs, "audit", archive], capture_output=True, timeout=WALK_SECONDS)
    if m["expect"] == "mount_fails" and r.returncode == 2:
        check(r.stdout == b"" and len(r.stderr.splitlines()) == 1, f"audit: {r.stderr!r}")
        return
    outcomes = {m["expect"], m.get("also_ok", m["expect"])}
    if r.returncode == 2:
        check("mount_fails" in outcomes, f"audit failed: {r.stderr!r}")
        return
    check("mounts" in outcomes, f"audit exits {r.returncode} on a file that must fail")
    if "untrusted_exact" in m:
        # hostile contents (aliased ids, broken trees) may add "# content:" lines
        want = "".join(t + "\n" for t in m["untrusted_exact"]).encode()
        lines = r.stdout.splitlines(keepends=True)
        types = b"".join(x for x in lines if not x.startswith(b"# content: "))
        check(types == want, f"audit printed {r.stdout!r}")
        check(r.returncode == (1 if want or types != r.stdout else 0), f"audit exit {r.returncode}")
    cli = lambda *a: subprocess.run([args.skopsfs, a[0], archive, *a[1:]], capture_output=True,
                                    timeout=WALK_SECONDS)
    for rel in m.get("denied", []):
        long = cli("ls", "-ld", rel)
        check(long.stdout[1:10] == b"---------", f"ls -ld {rel}: {long.stdout!r}")
        command = "ls" if long.stdout.startswith(b"d") else "cat"
        check(cli(command, rel).returncode != 0, f"{command} {rel}: not denied")
    for rel, content in m.get("file_content", {}).items():
        out = cli("cat", rel)
        check(out.returncode == 0 and out.stdout == content.encode(), f"cat {rel}: {out.stdout[:80]!r}")
    for rel, digest in m.get("file_sha256", {}).items():
        out = cli("cat", rel)
        check(hashlib.sha256(out.stdout).hexdigest() == digest, f"cat {rel}: sha256")
    for rel, size in m.get("file_size", {}).items():
        check(len(cli("cat", rel).stdout) == size, f"cat {rel}: length")
    for rel, count in m.get("dir_entries", {}).items():
        out = cli("ls", rel)
        check(len(out.stdout.splitlines()) == count, f"ls {rel}: {out.stdout!r}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--skopsfs", required=True)
    parser.add_argument("--mount-bin", required=True)
    parser.add_argument("--wrapper", nargs="*", default=[], help="e.g. valgrind, for the daemon")
    parser.add_argument("dirs", nargs="+")
    args = parser.parse_args()
    results = []
    for d in args.dirs:
        for name in sorted(os.listdir(d)):
            if not name.endswith(".json") or not os.path.exists(os.path.join(d, name[:-5] + ".skops")):
                continue
            m = json.load(open(os.path.join(d, name)))
            archive = os.path.join(d, m["file"])
            problems = []
            for label, fn in (("mount", check_mount), ("cli", check_cli)):
                try:
                    fn(args, m, archive)
                except (Failure, OSError, subprocess.TimeoutExpired) as e:
                    problems.append(f"{label}: {e}")
            results.append((os.path.join(d, name), problems))
    return report_problems(results)


if __name__ == "__main__":
    signal.signal(signal.SIGALRM, lambda *a: (_ for _ in ()).throw(Failure("walk timed out")))
    sys.exit(main())
