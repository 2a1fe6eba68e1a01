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


def archive_shrinking_under_the_mount(args, fixtures):
    """The archive must not change while mounted, but if it shrinks anyway
    (another process truncates it), reads of what is gone come up short or
    fail with EIO; the daemon stays up and unmounts cleanly."""
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
            cut_short = 0
            for path, size in sizes.items():
                try:
                    with open(path, "rb") as f:
                        got = len(f.read())
                    assert got <= size, f"{path}: read {got} bytes of {size}"
                    cut_short += got < size
                except OSError as e:
                    assert e.errno == errno.EIO, f"{path}: {e}"
                    cut_short += 1
            assert cut_short > 0, "no read saw the archive shrink"
            assert os.path.isdir(os.path.join(m.dir, ".skops")), "the mount stopped answering"
        finally:
            m.close()
        assert not mounted(m.dir), "left mounted"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mount-bin", required=True)
    parser.add_argument("fixtures")
    args = parser.parse_args()
    archive = os.path.join(args.fixtures, FIXTURE + ".skops")
    checks = [(check.__name__, lambda check=check: check(args, archive))
              for check in (strict_refuses_untrusted, read_only_everywhere, inodes_are_stable,
                            failures_leave_nothing)]
    checks.append(("archive_shrinking_under_the_mount",
                   lambda: archive_shrinking_under_the_mount(args, args.fixtures)))
    return run_checks(checks)


if __name__ == "__main__":
    sys.exit(main())
