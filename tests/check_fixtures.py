#!/usr/bin/env python3
"""Checks skopsfs against fixture manifests (NAME.json beside NAME.skops).

Two backends see the same archive the same way:
  cli    runs `skopsfs audit|ls|cat` (what machines without FUSE use);
  mount  mounts with mount.skopsfs and uses the real file system calls.
For each fixture: the audit equals the manifest's `untrusted`, every entry
has its kind, bytes, link target and xattrs, refused entries cannot be
listed or read, and with the untrusted types trusted nothing is refused.
Prints one line per failure and a final "N passed, N failed" line."""
import argparse
import concurrent.futures
import hashlib
import json
import os
import stat
import subprocess
import sys
import tempfile

from checklib import report_problems, unmount


class Failure(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Failure(message)


class Cli:
    """Entries as `skopsfs ls` and `skopsfs cat` show them."""

    def __init__(self, skopsfs, archive, trust_file=None):
        self.skopsfs = skopsfs
        self.archive = archive
        self.trust = ["--trust-file", trust_file] if trust_file else []

    def run(self, *args):
        return subprocess.run([self.skopsfs, *args[:1], *self.trust, self.archive, *args[1:]],
                              capture_output=True)

    def listdir(self, path):
        r = self.run("ls", "-a", "--zero", "/" + path)
        if r.returncode != 0:
            raise PermissionError(r.stderr.decode(errors="replace").strip())
        return sorted(os.fsdecode(n) for n in r.stdout.split(b"\0")[:-1])

    def read(self, path):
        r = self.run("cat", "/" + path)
        if r.returncode != 0:
            raise PermissionError(r.stderr.decode(errors="replace").strip())
        return r.stdout

    def read_many(self, sized_paths):
        """One `cat` of many files, cut apart by their expected sizes."""
        r = self.run("cat", *("/" + p for p, _ in sized_paths))
        if r.returncode != 0 or len(r.stdout) != sum(size for _, size in sized_paths):
            return {}
        out, at = {}, 0
        for path, size in sized_paths:
            out[path] = r.stdout[at:at + size]
            at += size
        return out

    def readlink(self, path):
        r = self.run("ls", "-l", "/" + path)
        check(r.returncode == 0, f"{path}: ls -l failed: {r.stderr!r}")
        line = os.fsdecode(r.stdout.rstrip(b"\n"))
        check(" -> " in line, f"{path}: not shown as a link: {line!r}")
        return line.split(" -> ", 1)[1]

    def close(self):
        pass


class Mount:
    """Entries through a real mount."""

    def __init__(self, mount_bin, archive, trust_file=None, wrapper=()):
        self.dir = tempfile.mkdtemp(prefix="skopsfs-test-")
        options = ["-o", f"trust_file={trust_file}"] if trust_file else []
        r = subprocess.run([*wrapper, mount_bin, archive, self.dir, *options], capture_output=True)
        if r.returncode != 0:
            os.rmdir(self.dir)
            raise Failure(f"mount failed: {r.stderr.decode(errors='replace').strip()}")
        self.stderr = r.stderr

    def p(self, path):
        return os.path.join(self.dir, path) if path else self.dir

    def listdir(self, path):
        return sorted(os.listdir(self.p(path)))

    def read(self, path):
        with open(self.p(path), "rb") as f:
            return f.read()

    def read_many(self, sized_paths):
        return {}

    def readlink(self, path):
        return os.readlink(self.p(path))

    def close(self):
        complaint = unmount(self.dir)
        if complaint is not None:
            raise Failure(f"cannot unmount {self.dir}: {complaint!r}")
        os.rmdir(self.dir)


def entry_names(entries, directory):
    prefix = directory + "/" if directory else ""
    names = []
    for e in entries:
        path = e["path"]
        if path == directory or not path.startswith(prefix):
            continue
        rest = path[len(prefix):]
        if "/" not in rest:
            names.append(rest)
    return sorted(names)


def check_entries(view, manifest, entries, mounted, problems):
    by_path = {e["path"]: e for e in entries}
    prefetched = {}
    if not mounted:
        sized = [(e["path"], e["size"]) for e in entries
                 if e["kind"] == "file" and e["reachable"] and not e["refused"] and "size" in e]
        prefetched = view.read_many(sized)
    for e in entries:
        path = e["path"]
        try:
            if not e["reachable"]:
                continue
            if e["kind"] == "dir":
                if e["refused"]:
                    try:
                        view.listdir(path)
                    except PermissionError:
                        pass
                    else:
                        raise Failure(f"{path}: refused directory could be listed")
                    if mounted:
                        st = os.lstat(view.p(path))
                        check(st.st_mode & 0o777 == 0, f"{path}: refused but mode {oct(st.st_mode)}")
                    continue
                got = view.listdir(path)
                want = entry_names(entries, path)
                if got != want:
                    # cut names: any unique name with the prefix and suffix
                    missing = [n for n in want if n not in got]
                    extra = [n for n in got if n not in want]
                    for n in list(missing):
                        m = by_path[(path + "/" if path else "") + n]
                        if m.get("truncated"):
                            for x in extra:
                                if x.startswith(m["name_prefix"]) and x.endswith(m["name_suffix"]) \
                                        and len(x.encode()) <= 255:
                                    missing.remove(n)
                                    extra.remove(x)
                                    break
                        for alt in m.get("alt_names", []):
                            if alt in extra:
                                missing.remove(n)
                                extra.remove(alt)
                                break
                    if path == ".skops" and "problems" in extra:
                        # spec'd after these manifests; a valid model has none
                        extra.remove("problems")
                        check(view.read(".skops/problems") == b"", ".skops/problems is not empty")
                    check(not missing and not extra,
                          f"{path or '/'}: entries differ: missing {missing}, extra {extra}")
            elif e["kind"] == "file":
                if e["refused"]:
                    try:
                        view.read(path)
                    except PermissionError:
                        pass
                    else:
                        raise Failure(f"{path}: refused file could be read")
                    continue
                data = prefetched[path] if path in prefetched else view.read(path)
                if "sha256" in e:
                    if e.get("compare") == "text-strip":
                        check(data.rstrip(b"\n") == e["content"].encode().rstrip(b"\n"),
                              f"{path}: content {data[:80]!r}")
                    else:
                        check(hashlib.sha256(data).hexdigest() == e["sha256"],
                              f"{path}: sha256 differs; got {data[:80]!r}"
                              + (f", want {e['content'][:80]!r}" if "content" in e else ""))
                if mounted and "size" in e:
                    st = os.stat(view.p(path))
                    check(st.st_size == e["size"], f"{path}: st_size {st.st_size} != {e['size']}")
            elif e["kind"] == "symlink":
                target = view.readlink(path)
                if "target" in e:
                    check(target == e["target"], f"{path}: link to {target!r}, want {e['target']!r}")
            if mounted and e["kind"] != "symlink" and e["role"] == "node":
                check_xattrs(view, e)
        except Failure as f:
            problems.append(str(f))
        except OSError as x:
            problems.append(f"{path}: {x}")


def check_xattrs(view, e):
    p = view.p(e["path"])
    def get(name):
        try:
            return os.getxattr(p, name, follow_symlinks=False)
        except OSError:
            return None
    if e.get("type"):
        check(get("user.skops.type") == e["type"].encode(), f"{e['path']}: user.skops.type")
    if e.get("loader"):
        check(get("user.skops.loader") == e["loader"].encode(), f"{e['path']}: user.skops.loader")
    if "key" in e:
        check(get("user.skops.key") == e["key"].encode("utf-8", "surrogatepass"),
              f"{e['path']}: user.skops.key {get('user.skops.key')!r}")
    if "json" in e:
        check(get("user.skops.json") == e["json"].encode(), f"{e['path']}: user.skops.json")
    if "npy" in e:
        npy = e["npy"]
        check(get("user.skops.dtype") == str(npy["descr"]).encode() or isinstance(npy["descr"], list),
              f"{e['path']}: user.skops.dtype {get('user.skops.dtype')!r}")
        check(get("user.skops.shape") == ",".join(str(d) for d in npy["shape"]).encode(),
              f"{e['path']}: user.skops.shape {get('user.skops.shape')!r}")
    check(get("user.skops.trusted") == (b"0" if e["refused"] else b"1"),
          f"{e['path']}: user.skops.trusted")


def long_listing(mount_dir, relative, shown):
    """What `skopsfs ls -laR` must print for the directory RELATIVE of the
    mount (SHOWN as its heading), built from lstat(2) in the mount."""
    directory = os.path.join(mount_dir, relative)
    out = f"{shown}:\n"
    try:
        names = sorted(os.listdir(directory), key=os.fsencode)
    except PermissionError:
        return ""  # a refused directory: the CLI says so on stderr
    for name in names:
        st = os.lstat(os.path.join(directory, name))
        out += f"{stat.filemode(st.st_mode)} {st.st_nlink} {st.st_size:10} {name}"
        if stat.S_ISLNK(st.st_mode):
            out += " -> " + os.readlink(os.path.join(directory, name))
        out += "\n"
    for name in names:
        if stat.S_ISDIR(os.lstat(os.path.join(directory, name)).st_mode):
            out += "\n" + long_listing(mount_dir, os.path.join(relative, name), f"{shown}/{name}")
    return out


def check_ls_long_agrees(args, archive, trust_file, view, problems):
    """`skopsfs ls -laR` and stat(2) in the mount show every entry alike:
    mode, link count and size (a refused file included: mode 000, size 0)."""
    trust = ["--trust-file", trust_file] if trust_file else []
    r = subprocess.run([args.skopsfs, "ls", "-laR", *trust, archive, "/"], capture_output=True)
    got = os.fsdecode(r.stdout).split("\n")
    want = long_listing(view.dir, "", "/").split("\n")
    for line, (a, b) in enumerate(zip(got, want)):
        if a != b:
            problems.append(f"ls -laR line {line + 1}: skopsfs ls shows {a!r}, stat in the "
                            f"mount {b!r}")
            return
    if len(got) != len(want):
        problems.append(f"ls -laR: {len(got)} lines, the mount {len(want)}")


def trust_passes(manifest):
    """(trusted types or None, entries) for each way the manifest says the
    model is seen: as it is, and with everything untrusted trusted."""
    untrusted = manifest.get("untrusted")
    passes = [(None, manifest["entries"])]
    trust_all = manifest.get("trust_all")
    if trust_all is not None and untrusted:
        overrides = {e["path"]: e for e in trust_all.get("entries_override", [])}
        entries = []
        for e in manifest["entries"]:
            e = dict(overrides.get(e["path"], e))
            e["refused"] = False
            e["reachable"] = True
            entries.append(e)
        passes.append((trust_all.get("trusted", untrusted), entries))
    return passes


def audit(skopsfs, archive, trust_file=None):
    args = [skopsfs, "audit"] + (["--trust-file", trust_file] if trust_file else []) + [archive]
    return subprocess.run(args, capture_output=True)


def check_fixture(args, manifest_path, problems):
    manifest = json.load(open(manifest_path))
    archive = os.path.join(os.path.dirname(manifest_path), manifest["file"])
    untrusted = manifest.get("untrusted")
    fails = manifest.get("expect") == "mount_fails" or "entries" not in manifest
    r = audit(args.skopsfs, archive)
    if fails:
        if untrusted is None:
            check(r.returncode == 2 and r.stdout == b"" and len(r.stderr.splitlines()) == 1,
                  f"audit of a file skops cannot read: exit {r.returncode}, {r.stderr!r}")
    else:
        want = "".join(t + "\n" for t in untrusted).encode()
        check(r.stdout == want, f"audit printed {r.stdout!r}, want {want!r}")
        check(r.returncode == (1 if untrusted else 0), f"audit exit {r.returncode}")
    if fails:
        if args.backend == "mount":
            try:
                Mount(args.mount_bin, archive).close()
            except Failure:
                return
            raise Failure("mounted a file that must fail to mount")
        return

    for trusted, entries in trust_passes(manifest):
        trust_file = None
        if trusted is not None:
            fd, trust_file = tempfile.mkstemp(prefix="skopsfs-trust-")
            os.write(fd, "".join(t + "\n" for t in trusted).encode())
            os.close(fd)
            r = audit(args.skopsfs, archive, trust_file)
            check(r.stdout == b"" and r.returncode == 0, "audit with all trusted still reports")
        view = Cli(args.skopsfs, archive, trust_file) if args.backend == "cli" else \
            Mount(args.mount_bin, archive, trust_file)
        try:
            local = []
            check_entries(view, manifest, entries, args.backend == "mount", local)
            if args.backend == "mount":
                check_ls_long_agrees(args, archive, trust_file, view, local)
            problems.extend(("trusted: " if trusted else "") + p for p in local)
        finally:
            view.close()
            if trust_file:
                os.unlink(trust_file)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["cli", "mount"], default="cli")
    parser.add_argument("--skopsfs", required=True)
    parser.add_argument("--mount-bin")
    parser.add_argument("dirs", nargs="+")
    args = parser.parse_args()
    manifests = []
    for d in args.dirs:
        manifests += sorted(os.path.join(d, f) for f in os.listdir(d)
                            if f.endswith(".json") and os.path.exists(os.path.join(d, f[:-5] + ".skops")))
    def run(m):
        problems = []
        try:
            check_fixture(args, m, problems)
        except Failure as f:
            problems.append(str(f))
        return problems

    # The CLI checks spawn a process per entry: run fixtures side by side.
    workers = 4 if args.backend == "cli" else 1
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(run, manifests))
    return report_problems(zip(manifests, results))


if __name__ == "__main__":
    sys.exit(main())
