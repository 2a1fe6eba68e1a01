#!/usr/bin/env python3
"""Inputs that are not what they should be, and how the daemon starts and
stops: a FIFO, socket, device or directory given as a trust file or as the
archive is refused at once with one line (never read, so never a hang); a
trust file over its limits names the limit, the file and the line; a mount
point that is not a directory is refused and nothing is mounted; the daemon
started with fds 0-2 closed serves the right bytes; SIGTERM, SIGHUP and
SIGINT unmount and exit 0, in the foreground and daemonized. Prints
"N passed, N failed"."""
import ctypes
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

from checklib import daemon_checker_args, daemons_of, mounted, run_checks, unmount

FIXTURE = "est_MDS"  # all trusted: every file can be compared with the manifest
TIMEOUT = 10  # seconds for a command that should fail at once; a hang fails the check
MOUNT_WAIT = 10  # seconds for a foreground daemon to mount, or a signalled one to exit
PR_SET_CHILD_SUBREAPER = 36
# a line of a trust file longer than SK_MAX_TRUST_LINE_BYTES; a trust file
# longer than SK_MAX_TRUST_FILE_BYTES
TRUST_LINE_LIMIT = 65536
TRUST_FILE_LIMIT = 16 * 1024 * 1024


class Scratch:
    """A directory holding one of each kind of file that is not regular,
    and an empty mount point."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="skopsfs-inputs-")
        self.mnt = self.path("mnt")
        os.mkdir(self.mnt)
        os.mkfifo(self.path("fifo"))
        self.listener = socket.socket(socket.AF_UNIX)
        self.listener.bind(self.path("socket"))
        os.mkdir(self.path("directory"))
        self.not_regular = {"FIFO": self.path("fifo"), "socket": self.path("socket"),
                            "device": "/dev/zero", "directory": self.path("directory")}

    def path(self, name):
        return os.path.join(self.dir, name)

    def close(self):
        self.listener.close()
        for name in os.listdir(self.dir):
            path = self.path(name)
            if mounted(path):
                unmount(path)
            if os.path.isdir(path) and not os.path.islink(path):
                os.rmdir(path)
            else:
                os.unlink(path)
        os.rmdir(self.dir)


def fails_with_one_line(argv, *wanted):
    """Runs ARGV, which must fail at once with one line on stderr holding
    every string in WANTED. Returns that line."""
    r = subprocess.run(argv, capture_output=True, timeout=TIMEOUT)
    lines = r.stderr.decode(errors="replace").strip().splitlines()
    assert r.returncode != 0, f"{argv}: exit 0"
    assert len(lines) == 1, f"{argv}: stderr {lines}"
    for w in wanted:
        assert w in lines[0], f"{argv}: {w!r} not in {lines[0]!r}"
    return lines[0]


def mount_fails_with_one_line(args, scratch, argv, *wanted):
    """As fails_with_one_line, for mount.skopsfs ARGV mounting on
    scratch.mnt, which must stay unmounted."""
    try:
        return fails_with_one_line([args.mount_bin] + argv, *wanted)
    finally:
        if mounted(scratch.mnt):
            unmount(scratch.mnt)
            raise AssertionError(f"{argv}: left mounted")


def default_signals():
    """The daemon's signals as a service manager leaves them: libfuse does
    not catch a signal its parent ignored (a shell's background job ignores
    SIGINT)."""
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, signal.SIG_DFL)


def daemon_of(mount_dir):
    """The pid of the daemonized mount.skopsfs serving MOUNT_DIR: this
    process is a subreaper, so the daemon became its child."""
    pids = daemons_of(mount_dir, parent=os.getpid())
    if not pids:
        raise AssertionError(f"no daemon serving {mount_dir}")
    return pids[0]


def wait_exit_status(pid):
    """PID's exit status, waiting at most MOUNT_WAIT seconds."""
    deadline = time.monotonic() + MOUNT_WAIT
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    raise AssertionError(f"daemon {pid} still running {MOUNT_WAIT} s after the signal")


def manifest_files(fixtures):
    with open(os.path.join(fixtures, FIXTURE + ".json")) as f:
        entries = json.load(f)["entries"]
    return {e["path"]: e["sha256"] for e in entries
            if e["kind"] == "file" and e["reachable"] and not e["refused"] and "sha256" in e}


def serves_the_manifest(mount_dir, files):
    """Every file's bytes equal the manifest's: an archive whose fd was
    replaced by /dev/null would read back empty."""
    wrong = []
    for path, sha in files.items():
        with open(os.path.join(mount_dir, path), "rb") as f:
            if hashlib.sha256(f.read()).hexdigest() != sha:
                wrong.append(path)
    assert not wrong, f"wrong bytes in {wrong}"


def trust_file_not_regular(args, scratch):
    for kind, path in scratch.not_regular.items():
        want = f"trust file {path}: is a"
        mount_fails_with_one_line(args, scratch,
                                  [args.archive, scratch.mnt, "-o", f"trust_file={path}"],
                                  want, "not a regular file")
        fails_with_one_line([args.skopsfs, "audit", "--trust-file", path, args.archive],
                            want, "not a regular file")
    return f"{', '.join(scratch.not_regular)} refused by mount.skopsfs and skopsfs"


def trust_file_limits(args, scratch):
    long_line = scratch.path("long-line")
    with open(long_line, "w") as f:
        f.write("numpy.dtype\n# reviewed\n#" + "x" * TRUST_LINE_LIMIT + "\nbuiltins.int\n")
    too_big = scratch.path("too-big")
    with open(too_big, "w") as f:
        f.truncate(TRUST_FILE_LIMIT + 1)
    cases = ((long_line, ("line 3", "SK_MAX_TRUST_LINE_BYTES")),
             (too_big, ("SK_MAX_TRUST_FILE_BYTES",)))
    for path, wanted in cases:
        mount_fails_with_one_line(args, scratch,
                                  [args.archive, scratch.mnt, "-o", f"trust_file={path}"],
                                  path, *wanted)
        fails_with_one_line([args.skopsfs, "audit", "--trust-file", path, args.archive],
                            path, *wanted)


def archive_not_regular(args, scratch):
    """The archive is opened by format/archive.c, which must refuse these
    the same way before reading."""
    problems = []
    for kind, path in scratch.not_regular.items():
        for program, run in (
                ("mount.skopsfs", lambda: mount_fails_with_one_line(args, scratch,
                                                                    [path, scratch.mnt], path)),
                ("skopsfs", lambda: fails_with_one_line([args.skopsfs, "audit", path], path))):
            try:
                run()
            except (AssertionError, subprocess.TimeoutExpired) as e:
                problems.append(f"{kind} to {program}: {type(e).__name__}")
    assert not problems, "; ".join(problems)


def mount_point_not_directory(args, scratch):
    regular = scratch.path("regular")
    with open(regular, "w") as f:
        f.write("left alone\n")
    os.symlink(regular, scratch.path("link-to-regular"))
    points = {"a regular file": regular, "a FIFO": scratch.path("fifo"),
              "a socket": scratch.path("socket"),
              "a link to a regular file": scratch.path("link-to-regular"),
              "a missing path": scratch.path("missing")}
    for kind, point in points.items():
        try:
            fails_with_one_line([args.mount_bin, args.archive, point], "mount point")
        finally:
            left = mounted(point)
            if left:
                unmount(point)
        assert not left, f"mounted on {kind}"
    with open(regular) as f:
        assert f.read() == "left alone\n"
    return ", ".join(points)


def closed_standard_fds(args, scratch, files):
    served = []
    for closed in ((0,), (1,), (2,), (0, 1, 2)):
        def close_them(closed=closed):
            for fd in closed:
                os.close(fd)
        r = subprocess.run([args.mount_bin, args.archive, scratch.mnt], preexec_fn=close_them,
                           timeout=TIMEOUT)
        assert r.returncode == 0, f"fds {closed} closed: exit {r.returncode}"
        daemon = daemon_of(scratch.mnt)
        try:
            serves_the_manifest(scratch.mnt, files)
        finally:
            problem = unmount(scratch.mnt)
            status = wait_exit_status(daemon)
        assert problem is None, problem
        assert status == 0, f"fds {closed} closed: the daemon exited {status} once unmounted"
        served.append("".join(map(str, closed)))
    return f"{len(files)} files right with fds {', '.join(served)} closed"


def open_in_use(mount_dir, files):
    """A file of the mount, open and read from: a mount stopped while busy
    must still unmount, and the daemon close what was never released (the
    sanitized build fails the exit status on a leak)."""
    f = open(os.path.join(mount_dir, max(files, key=lambda p: p.endswith(".npy"))), "rb")
    f.read(4096)
    return f


def signal_foreground(args, scratch, files, sig):
    daemon = subprocess.Popen([args.mount_bin, args.archive, scratch.mnt, "-f"],
                              preexec_fn=default_signals, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + MOUNT_WAIT
        while not mounted(scratch.mnt):
            assert daemon.poll() is None, f"exited {daemon.returncode} before mounting"
            assert time.monotonic() < deadline, "not mounted"
            time.sleep(0.05)
        serves_the_manifest(scratch.mnt, files)
        with open_in_use(scratch.mnt, files):
            daemon.send_signal(sig)
            status = daemon.wait(timeout=MOUNT_WAIT)
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
        if mounted(scratch.mnt):
            unmount(scratch.mnt)
            raise AssertionError(f"{sig.name} left the mount behind")
    assert status == 0, f"{sig.name}: exit {status}, stderr {daemon.stderr.read()!r}"


def signal_daemonized(args, scratch, files, sig):
    r = subprocess.run([args.mount_bin, args.archive, scratch.mnt], preexec_fn=default_signals,
                       capture_output=True, timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr
    daemon = daemon_of(scratch.mnt)
    try:
        serves_the_manifest(scratch.mnt, files)
        with open_in_use(scratch.mnt, files):
            os.kill(daemon, sig)
            status = wait_exit_status(daemon)
    finally:
        if mounted(scratch.mnt):
            unmount(scratch.mnt)
            raise AssertionError(f"{sig.name} left the mount behind")
    assert status == 0, f"{sig.name}: exit {status}"


def main():
    args = daemon_checker_args()
    args.archive = os.path.join(args.fixtures, FIXTURE + ".skops")
    files = manifest_files(args.fixtures)
    # daemonized mounts become this process's children, to be waited for
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")
    scratch = Scratch()
    try:
        checks = [(check.__name__, lambda check=check: check(args, scratch))
                  for check in (trust_file_not_regular, trust_file_limits, archive_not_regular,
                                mount_point_not_directory)]
        checks.append(("closed_standard_fds", lambda: closed_standard_fds(args, scratch, files)))
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            for mode, check in (("foreground", signal_foreground),
                                ("daemonized", signal_daemonized)):
                checks.append((f"{sig.name}_{mode}",
                               lambda check=check, sig=sig: check(args, scratch, files, sig)))
        return run_checks(checks)
    finally:
        scratch.close()


if __name__ == "__main__":
    sys.exit(main())
