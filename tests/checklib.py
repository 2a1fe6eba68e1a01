"""Runs named checks and reports them the way every checker here does:
one line per check, then "N passed, N failed"; and what every checker that
mounts needs: whether a directory is mounted, unmounting it, and the
daemons serving it."""
import argparse
import os
import re
import subprocess
import time

UNMOUNT_TRIES = 50  # a tenth of a second apart: the daemon may still be busy


def mounted(directory):
    real = os.path.realpath(directory)
    with open("/proc/self/mounts") as f:
        return any(unescape_mount_field(line.split()[1]) == real for line in f)


def unescape_mount_field(field):
    """The kernel writes a space in a mount point as \\040, a tab as \\011..."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), field)


def unmount(directory):
    """Unmounts DIRECTORY, retrying while it is busy. Returns None once
    unmounted, else what fusermount3 said last."""
    for _ in range(UNMOUNT_TRIES):
        r = subprocess.run(["fusermount3", "-u", directory], capture_output=True)
        if r.returncode == 0:
            return None
        time.sleep(0.1)
    return r.stderr.decode(errors="replace").strip()


def daemons_of(mount_dir, parent=None):
    """The pids of the mount.skopsfs processes whose arguments name
    MOUNT_DIR (a zombie has none), only PARENT's children if given."""
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if os.path.basename(argv[0]) == b"mount.skopsfs" and mount_dir.encode() in argv and \
                (parent is None or ppid == parent):
            pids.append(int(pid))
    return pids


def run_checks(checks):
    """CHECKS: (name, callable returning a short summary or None) pairs.
    Returns the exit status: 0 when all passed."""
    passed = failed = 0
    for name, check in checks:
        try:
            summary = check()
            print(f"ok   {name}" + (f": {summary}" if summary else ""))
            passed += 1
        except Exception as e:  # report every kind of failure the same way
            print(f"FAIL {name}: {type(e).__name__}: {e}")
            failed += 1
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


def report_problems(results, shown=20):
    """RESULTS: (name, list of problems) pairs; prints the failing ones and
    the closing line. Returns the exit status."""
    passed = failed = 0
    for name, problems in results:
        if not problems:
            passed += 1
            continue
        failed += 1
        print(f"FAIL {name}")
        for p in problems[:shown]:
            print(f"    {p}")
        if len(problems) > shown:
            print(f"    ... and {len(problems) - shown} more")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


def daemon_checker_args():
    """The command line every checker of the daemon takes: both programs and
    the fixtures folder."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--mount-bin", required=True)
    parser.add_argument("--skopsfs", required=True)
    parser.add_argument("fixtures")
    return parser.parse_args()
