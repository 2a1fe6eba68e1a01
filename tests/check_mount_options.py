#!/usr/bin/env python3
"""mount.skopsfs as a user meets it: -o strict, -o trust=, read-only in every
way, stable inodes, st_mtime and statfs, and failures that leave nothing
mounted. Prints "N passed, N failed"."""
import argparse
import errno
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile

from checklib import mounted, run_checks, unmount

FIXTURE = "est_KBinsDiscretizer"  # one untrusted type: numpy.dtype
SHRINK_FIXTURE = "est_MDS"  # all trusted, a 176 KiB stored array


class Mount:
    def __init__(self, mount_bin, archive, *options):
        self.dir = tempfile.mkdtemp(prefix="skopsfs-options-")
        self.result = subprocess.run([mount_bin, archive, self.dir, *options], capture_output=True)

    def close(self):
        if mounted(self.dir):
            unmount(self.dir)
        os.rmdir(self.dir)


def strict_refuses_untrusted(args, archive):
    m = Mount(args.mount_bin, archive, "-o", "strict")
    try:
        assert m.result.returncode != 0, "strict mount of an untrusted model succeeded"
        lines = m.result.stderr.decode().strip().splitlines()
        assert len(lines) == 1 and "numpy.dtype" in lines[0] and "trust=" in lines[0], lines
        assert not mounted(m.dir), "left mounted"
    finally:
        m.close()
    m = Mount(args.mount_bin, archive, "-o", "strict,trust=numpy.dtype")
    try:
        assert m.result.returncode == 0, m.result.stderr
        with open(os.path.join(m.dir, "_encoder/dtype")) as f:
            assert f.read() == "<f8\n"
        with open(os.path.join(m.dir, ".skops/untrusted")) as f:
            assert f.read() == ""
    finally:
        m.close()


def read_only_everywhere(args, archive):
    m = Mount(args.mount_bin, archive)
    try:
        assert m.result.returncode == 0
        root = m.dir
        attempts = [
            lambda: open(os.path.join(root, "new"), "w"),
            lambda: open(os.path.join(root, "n_bins"), "w"),
            lambda: open(os.path.join(root, "n_bins"), "r+"),
            lambda: os.mkdir(os.path.join(root, "d")),
            lambda: os.rename(os.path.join(root, "n_bins"), os.path.join(root, "x")),
            lambda: os.unlink(os.path.join(root, "n_bins")),
            lambda: os.rmdir(os.path.join(root, "bin_edges_")),
            lambda: os.chmod(os.path.join(root, "n_bins"), 0o777),
            lambda: os.symlink("n_bins", os.path.join(root, "link")),
            lambda: os.truncate(os.path.join(root, "n_bins"), 0),
            lambda: os.setxattr(os.path.join(root, "n_bins"), "user.x", b"1"),
        ]
        for i, attempt in enumerate(attempts):
            try:
                attempt()
            except OSError as e:
                assert e.errno == errno.EROFS, f"attempt {i}: {e}"
            else:
                raise AssertionError(f"attempt {i} changed a read-only mount")
        st = os.statvfs(root)
        assert st.f_flag & os.ST_RDONLY and st.f_namemax == 255
        assert os.stat(os.path.join(root, "n_bins")).st_mtime == os.stat(archive).st_mtime
        refused = os.path.join(root, "_encoder/dtype")
        assert os.stat(refused).st_mode & 0o777 == 0
        try:
            open(refused).close()
            raise AssertionError("root opened a refused file")
        except PermissionError:
            pass
        assert os.getxattr(refused, "user.skops.trusted") == b"0"
    finally:
        m.close()


def inodes_are_stable(args, archive):
    seen = []
    for _ in range(2):
        m = Mount(args.mount_bin, archive)
        try:
            inodes = {}
            for d, dirs, files in os.walk(m.dir):
                for name in dirs + files:
                    path = os.path.join(d, name)
                    inodes[os.path.relpath(path, m.dir)] = os.lstat(path).st_ino
            seen.append(inodes)
        finally:
            m.close()
    assert seen[0] == seen[1] and len(seen[0]) > 10


def failures_leave_nothing(args, archive):
    for argv, why in (([archive, "/nonexistent/mnt"], "missing mount point"),
                      (["/nonexistent.skops", None], "missing archive"),
                      ([archive, None, "-o", "trust_file=/nonexistent"], "missing trust file")):
        d = tempfile.mkdtemp(prefix="skopsfs-options-")
        try:
            r = subprocess.run([args.mount_bin] + [a if a is not None else d for a in argv],
                               capture_output=True)
            lines = r.stderr.decode().strip().splitlines()
            assert r.returncode != 0 and len(lines) == 1, (why, r.returncode, lines)
            assert not mounted(d), why
        finally:
            os.rmdir(d)


def member_files(root):
    """The mounted files whose bytes come from archive members: the arrays."""
    return [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs if f.endswith(".npy")]


def expect_eio(path):
    try:
        with open(path, "rb") as f:
            f.read()
    except OSError as e:
        assert e.errno == errno.EIO, f"{path}: {e}"
        return
    raise AssertionError(f"{path}: read succeeded")


def archive_shrinking_under_the_mount(args, fixtures):
    """The archive must not change while mounted, but if it shrinks anyway
    (another process truncates it), every read of member bytes fails with
    EIO, never a short read that looks like the end of the file; the daemon
    stays up and unmounts cleanly."""
    archive = os.path.join(fixtures, SHRINK_FIXTURE + ".skops")
    with zipfile.ZipFile(archive) as z:
        big = max(z.infolist(), key=lambda i: i.file_size if i.filename.endswith(".npy") else 0)
    assert big.compress_type == zipfile.ZIP_STORED and big.file_size > 65536, big
    # the local header's fixed part is 30 bytes; cut the member's data in two
    cut = big.header_offset + 30 + len(big.filename.encode()) + len(big.extra) + big.file_size // 2
    with tempfile.TemporaryDirectory(prefix="skopsfs-shrink-") as scratch:
        copy = os.path.join(scratch, "model.skops")
        shutil.copyfile(archive, copy)
        m = Mount(args.mount_bin, copy)
        try:
            assert m.result.returncode == 0, m.result.stderr
            # sizes now: after a short read the kernel takes the file to end there
            sizes = {os.path.join(d, f): os.path.getsize(os.path.join(d, f))
                     for d, _, fs in os.walk(m.dir) for f in fs}
            os.truncate(copy, cut)
            arrays = member_files(m.dir)
            assert arrays, "no array files"
            for path in arrays:
                expect_eio(path)
            for path, size in sizes.items():
                try:  # whole (text from the audited schema) or EIO, never short
                    with open(path, "rb") as f:
                        assert len(f.read()) == size, path
                except OSError as e:
                    assert e.errno == errno.EIO, f"{path}: {e}"
            assert os.path.isdir(os.path.join(m.dir, ".skops")), "the mount stopped answering"
        finally:
            m.close()
        assert not mounted(m.dir), "left mounted"


def pickle_shrinking_under_the_mount(args, fixtures):
    """A plain pickle cut short under its mount, as an archive is above: its
    arrays (latin-1 text of protocol 2, byte ranges of protocol 4) fail with
    EIO, and the daemon, which never reads the file through a mapping once
    mounted, stays up and unmounts cleanly."""
    for protocol in ("p2", "p4"):
        fixture = os.path.join(fixtures, "pickle", f"est_LogisticRegression.{protocol}.pkl")
        with tempfile.TemporaryDirectory(prefix="skopsfs-shrink-") as scratch:
            copy = os.path.join(scratch, "model.pkl")
            shutil.copyfile(fixture, copy)
            m = Mount(args.mount_bin, copy)
            try:
                assert m.result.returncode == 0, m.result.stderr
                arrays = member_files(m.dir)
                assert arrays, f"{protocol}: no array files"
                os.truncate(copy, 16)
                for path in arrays:
                    expect_eio(path)
                assert os.path.isdir(os.path.join(m.dir, ".skops")), "the mount stopped answering"
            finally:
                m.close()
            assert not mounted(m.dir), f"{protocol}: left mounted"


def archive_rewritten_under_the_mount(args, fixtures):
    """`cp other.skops live` keeps the inode and (here) the size but not the
    bytes: reads of member bytes fail with EIO. A file replaced by rename is
    not this: the daemon's descriptor still reads the audited file."""
    archive = os.path.join(fixtures, SHRINK_FIXTURE + ".skops")
    with tempfile.TemporaryDirectory(prefix="skopsfs-rewrite-") as scratch:
        live, other = os.path.join(scratch, "live.skops"), os.path.join(scratch, "other.skops")
        shutil.copyfile(archive, live)
        data = bytearray(open(archive, "rb").read())
        data[200] ^= 0xFF  # inside the first member's data
        open(other, "wb").write(data)
        m = Mount(args.mount_bin, live)
        try:
            assert m.result.returncode == 0, m.result.stderr
            arrays = member_files(m.dir)
            assert len(arrays) >= 2, arrays
            # a header is read when first asked for: before the change, kept
            asked_before = os.getxattr(arrays[0], "user.skops.dtype")
            shutil.copyfile(other, live)  # what cp does: same inode, rewritten
            assert os.path.getsize(live) == len(data)
            for path in arrays:
                expect_eio(path)
            assert os.getxattr(arrays[0], "user.skops.dtype") == asked_before
            # after it, not read from the changed bytes
            names = os.listxattr(arrays[1])
            assert "user.skops.type" in names and "user.skops.dtype" not in names, names
        finally:
            m.close()
        # replaced by rename: the old file is still what is served
        shutil.copyfile(archive, live)
        m = Mount(args.mount_bin, live)
        try:
            assert m.result.returncode == 0, m.result.stderr
            os.rename(other, live)
            for path in member_files(m.dir):
                with open(path, "rb") as f:
                    f.read()
        finally:
            m.close()


def bad_member_archive(fixtures, scratch, method):
    """A copy of the shrink fixture whose largest array is stored with METHOD
    and declares a wrong CRC-32 in both its headers (zipfile: Bad CRC-32)."""
    source = os.path.join(fixtures, SHRINK_FIXTURE + ".skops")
    path = os.path.join(scratch, f"bad-{method}.skops")
    with zipfile.ZipFile(source) as z, zipfile.ZipFile(path, "w") as out:
        big = max(z.infolist(), key=lambda i: i.file_size)
        for info in z.infolist():
            out.writestr(info.filename, z.read(info),
                         compress_type=method if info is big else zipfile.ZIP_STORED)
    with zipfile.ZipFile(path) as z:
        info = z.getinfo(big.filename)
        central = z.start_dir
    data = bytearray(open(path, "rb").read())
    name = big.filename.encode()
    entry = data.index(b"PK\1\2", central)
    while data[entry + 46:entry + 46 + len(name)] != name:
        entry = data.index(b"PK\1\2", entry + 4)
    for field in (entry + 16, info.header_offset + 14):
        data[field] ^= 0x01
    open(path, "wb").write(data)
    with zipfile.ZipFile(path) as z:
        assert z.testzip() == big.filename, "zipfile does not see the bad CRC"
    return path, os.path.splitext(big.filename)[0]


def bad_crc_is_eio(args, fixtures):
    """A member whose bytes fail their CRC-32 is never served, stored
    (spliced) or DEFLATE: EIO. -o verify refuses to mount it, with one line;
    `skopsfs verify` exits 1 naming it, 0 on a good file, 2 on no zip."""
    with tempfile.TemporaryDirectory(prefix="skopsfs-badcrc-") as scratch:
        for method in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            path, _ = bad_member_archive(fixtures, scratch, method)
            m = Mount(args.mount_bin, path)
            try:
                assert m.result.returncode == 0, m.result.stderr
                failed = 0
                for array in member_files(m.dir):
                    try:
                        with open(array, "rb") as f:
                            f.read()
                    except OSError as e:
                        assert e.errno == errno.EIO, f"{array}: {e}"
                        failed += 1
                assert failed == 1, f"method {method}: {failed} arrays failed, not 1"
            finally:
                m.close()
            m = Mount(args.mount_bin, path, "-o", "verify")
            try:
                lines = m.result.stderr.decode().strip().splitlines()
                assert m.result.returncode != 0 and len(lines) == 1, lines
                assert "integrity" in lines[0] and "not mounted" in lines[0], lines
                assert not mounted(m.dir), "left mounted"
            finally:
                m.close()
            if args.skopsfs:
                r = subprocess.run([args.skopsfs, "verify", path], capture_output=True)
                assert r.returncode == 1 and len(r.stdout.splitlines()) == 1, r
        if args.skopsfs:
            good = os.path.join(fixtures, SHRINK_FIXTURE + ".skops")
            assert subprocess.run([args.skopsfs, "verify", good]).returncode == 0
            junk = os.path.join(scratch, "junk.skops")
            open(junk, "wb").write(b"not a zip")
            r = subprocess.run([args.skopsfs, "verify", good, junk], capture_output=True)
            assert r.returncode == 2 and len(r.stderr.splitlines()) == 1, r
        m = Mount(args.mount_bin, os.path.join(fixtures, SHRINK_FIXTURE + ".skops"), "-o", "verify")
        try:
            assert m.result.returncode == 0, m.result.stderr
        finally:
            m.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mount-bin", required=True)
    parser.add_argument("--skopsfs", help="the CLI, for `skopsfs verify`")
    parser.add_argument("fixtures")
    args = parser.parse_args()
    archive = os.path.join(args.fixtures, FIXTURE + ".skops")
    checks = [(check.__name__, lambda check=check: check(args, archive))
              for check in (strict_refuses_untrusted, read_only_everywhere, inodes_are_stable,
                            failures_leave_nothing)]
    for check in (archive_shrinking_under_the_mount, pickle_shrinking_under_the_mount,
                  archive_rewritten_under_the_mount,
                  bad_crc_is_eio):
        checks.append((check.__name__, lambda check=check: check(args, args.fixtures)))
    return run_checks(checks)


if __name__ == "__main__":
    sys.exit(main())
