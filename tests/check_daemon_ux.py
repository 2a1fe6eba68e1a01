#!/usr/bin/env python3
"""mount.skopsfs's side of the review workflow: trust in one step (trust=
and trust_file= accumulate, the untrusted line gives one option that trusts
all, and that option works as printed), one line for each usual mistake
(trust=A,B, an unknown option, a bad number, /dev/fuse a user cannot open,
a mount point mounted already), pickle and joblib files read by their bytes,
--help, --version,
the libfuse conventions (-s, negative lookups cached, a mount point with
a space), and the background: the command returns once mounted or with the
failure's status, and a read it no longer waits for stops. Prints "N
passed, N failed"."""
import os
import pickle
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import zipfile

from checklib import daemon_checker_args, daemons_of, mounted, run_checks, unmount

FIXTURE = "defaultdicts_untrusted"
UNTRUSTED = ["builtins.dict", "skopsfs_corpus_objs.MyDefaultDict",
             "skopsfs_corpus_objs.custom_func"]
READ_AHEAD_KB = 1008


class Mount:
    """Runs mount.skopsfs ARCHIVE DIR ARGS in a fresh directory; unmounts
    whatever got mounted on close (twice for -o over)."""

    def __init__(self, args, archive, *options, directory=None, shell_tail=None):
        self.dir = directory or tempfile.mkdtemp(prefix="skopsfs-ux-")
        argv = [args.mount_bin, archive, self.dir, *options]
        if shell_tail is None:
            self.result = subprocess.run(argv, capture_output=True)
        else:  # exactly as a user pastes it after the command
            line = shlex.join(argv) + " " + shell_tail
            self.result = subprocess.run(["sh", "-c", line], capture_output=True)
        self.lines = self.result.stderr.decode(errors="replace").strip().splitlines()

    def close(self):
        while mounted(self.dir):
            unmount(self.dir)
        os.rmdir(self.dir)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def one_line(m, *wanted):
    assert len(m.lines) == 1, m.lines
    for w in wanted:
        assert w in m.lines[0], (w, m.lines[0])
    return m.lines[0]


def refused_entries(root):
    return [os.path.join(d, n) for d, dirs, files in os.walk(root) for n in dirs + files
            if stat.S_IMODE(os.lstat(os.path.join(d, n)).st_mode) == 0]


def untrusted_file(root):
    with open(os.path.join(root, ".skops/untrusted")) as f:
        return f.read().split()


def failed_cleanly(m, *wanted):
    assert m.result.returncode != 0, "succeeded"
    assert not mounted(m.dir), "left mounted"
    return one_line(m, *wanted)


def repeated_trust_accumulates(args, archive):
    with Mount(args, archive, "-o", "trust=" + UNTRUSTED[0], "-o",
               "trust=" + UNTRUSTED[1] + ",strict") as m:
        line = failed_cleanly(m, "not mounted")
        assert line.endswith("to trust them all: -o trust=" + UNTRUSTED[2]), line
    with Mount(args, archive, "-o", "trust=" + UNTRUSTED[0], "-o", "trust=" + UNTRUSTED[1],
               "-o", "strict,trust=" + UNTRUSTED[2]) as m:
        assert m.result.returncode == 0, m.lines
        assert untrusted_file(m.dir) == []
    with tempfile.TemporaryDirectory() as scratch:
        files = []
        for i, names in enumerate((UNTRUSTED[:1], UNTRUSTED[1:])):
            files.append(os.path.join(scratch, f"trusted{i}"))
            with open(files[-1], "w") as f:
                f.write("".join(n + "\n" for n in names))
        with Mount(args, archive, "-o", "trust_file=" + files[0], "-o",
                   "trust_file=" + files[1] + ",strict") as m:
            assert m.result.returncode == 0, m.lines
        with Mount(args, archive, "-o", "trust_file=" + files[1] + ",strict") as m:
            failed_cleanly(m, "-o trust=" + UNTRUSTED[0])


def escaped_comma_separates(args, archive):
    with Mount(args, archive, "-o", "trust=" + "\\,".join(UNTRUSTED) + ",strict") as m:
        assert m.result.returncode == 0, m.lines
        assert untrusted_file(m.dir) == []


def hint_trusts_all_as_printed(args, archive):
    with Mount(args, archive) as m:
        assert m.result.returncode == 0, m.lines
        hint = "-o trust=" + ":".join(UNTRUSTED)
        assert m.lines == [
            f"mount.skopsfs: {archive}: nodes that need 3 untrusted types are refused "
            f"(listed in .skops/untrusted); to trust them all: {hint}"], m.lines
        assert refused_entries(m.dir), "nothing refused without trust"
    with Mount(args, archive, "-o", "strict", shell_tail=hint) as m:
        assert m.result.returncode == 0 and m.lines == [], m.lines
        assert untrusted_file(m.dir) == [] and refused_entries(m.dir) == []


def hint_is_quoted_for_the_shell(args, archive, scratch):
    """Type names a shell would take ('<', a space, a quote) are quoted; a
    name a trust= list cannot carry (':') is counted, not printed."""
    odd = os.path.join(scratch, "odd-names.skops")
    with zipfile.ZipFile(archive) as z, zipfile.ZipFile(odd, "w") as out:
        for info in z.infolist():
            data = z.read(info)
            if info.filename == "schema.json":
                data = (data.replace(b'"custom_func"', b'"<lambda>"')
                        .replace(b'"MyDefaultDict"', b'"My Dict\'s"'))
            out.writestr(info, data)
    with Mount(args, odd) as m:
        hint = one_line(m, "to trust them all: ").split("to trust them all: ")[1]
        assert hint == ("-o 'trust=builtins.dict:skopsfs_corpus_objs.<lambda>:"
                        "skopsfs_corpus_objs.My Dict'\\''s'"), hint
    with Mount(args, odd, "-o", "strict", shell_tail=hint) as m:
        assert m.result.returncode == 0 and m.lines == [], m.lines
        assert refused_entries(m.dir) == []
    colon = os.path.join(scratch, "colon-name.skops")
    with zipfile.ZipFile(archive) as z, zipfile.ZipFile(colon, "w") as out:
        for info in z.infolist():
            data = z.read(info)
            if info.filename == "schema.json":
                data = data.replace(b'"custom_func"', b'"a:b"')
            out.writestr(info, data)
    with Mount(args, colon, "-o", "strict") as m:
        line = failed_cleanly(m)
        assert line.endswith("; to trust the others: -o trust=builtins.dict:"
                             "skopsfs_corpus_objs.MyDefaultDict; 1 type has a name no option "
                             "can carry"), line


def trust_with_commas_explained(args, archive):
    with Mount(args, archive, "-o", f"trust={UNTRUSTED[0]},{UNTRUSTED[2]}") as m:
        line = failed_cleanly(m)
        assert line == (f"mount.skopsfs: -o trust={UNTRUSTED[0]},{UNTRUSTED[2]}: FUSE splits "
                        f"options at ','; separate types with ':' instead: "
                        f"-o trust={UNTRUSTED[0]}:{UNTRUSTED[2]}"), line


def bad_options_named(args, archive):
    with Mount(args, archive, "-o", "bogus") as m:
        failed_cleanly(m, "unknown option bogus", "mount.skopsfs --help")
    with Mount(args, archive, "-o", "ro,allow_other,colour") as m:
        failed_cleanly(m, "unknown option colour", "mount.skopsfs --help")
    for option in ("max_nodes=12abc", "max_entries=-1", "max_schema_mb=", "max_threads=x"):
        with Mount(args, archive, "-o", option) as m:
            failed_cleanly(m, f"-o {option}: give a whole number", "--help")


def mounted_already_refused(args, archive):
    with Mount(args, archive, "-o", "trust=" + ":".join(UNTRUSTED)) as first:
        assert first.result.returncode == 0, first.lines
        again = Mount(args, archive, directory=first.dir)
        assert again.result.returncode != 0, "mounted twice"
        one_line(again, f"{first.dir} is a mount point already (fuse.skopsfs)", "-o over")
        over = Mount(args, archive, "-o", "over", directory=first.dir)
        assert over.result.returncode == 0, over.lines
        assert open(os.path.join(first.dir, ".skops/untrusted")).read().split() == UNTRUSTED


def dev_fuse_for_a_user(args, archive, scratch):
    st = os.stat("/dev/fuse")
    if os.geteuid() != 0 or st.st_mode & 0o006:
        return "skipped: needs root and a /dev/fuse others cannot open"
    os.chmod(scratch, 0o755)
    target = os.path.join(scratch, "for-nobody")
    os.mkdir(target)
    os.chown(target, 65534, 65534)
    copy = os.path.join(scratch, "model.skops")
    with open(archive, "rb") as f, open(copy, "wb") as out:
        out.write(f.read())
    os.chmod(copy, 0o644)
    r = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                        args.mount_bin, copy, target], capture_output=True)
    lines = r.stderr.decode().strip().splitlines()
    assert r.returncode != 0 and not mounted(target)
    assert lines == ["mount.skopsfs: cannot open /dev/fuse: Permission denied; run as root, "
                     "or let your user open it (chmod 0666 /dev/fuse, or a group of yours "
                     "that may read and write it)"], lines
    os.rmdir(target)


def pickles_and_joblib_read(args, scratch):
    """Pickle and joblib files are recognized by their bytes, whatever their
    names, and read: audit is clean and the mount shows the array."""
    import joblib
    import numpy
    value = {"coef_": numpy.arange(4.0)}
    writers = {
        "model.pkl": lambda p: pickle.dump(value, open(p, "wb"), protocol=4),
        "model0.pkl": lambda p: pickle.dump(value, open(p, "wb"), protocol=0),
        "model.joblib": lambda p: joblib.dump(value, p, protocol=4),
        "model.joblib.z": lambda p: joblib.dump(value, p, compress=3),
        "model.joblib.xz": lambda p: joblib.dump(value, p, compress="xz"),
        "no-suffix": lambda p: joblib.dump(value, p, compress="bz2"),
    }
    for name, write in writers.items():
        path = os.path.join(scratch, name)
        write(path)
        r = subprocess.run([args.skopsfs, "audit", path], capture_output=True)
        assert r.returncode == 0 and r.stdout == b"", (name, r.returncode, r.stdout, r.stderr)
        with Mount(args, path) as m:
            assert m.result.returncode == 0, (name, m.lines)
            got = numpy.load(os.path.join(m.dir, "coef_.npy"))
            assert numpy.array_equal(got, value["coef_"]), (name, got)


def help_and_version(args):
    r = subprocess.run([args.mount_bin, "--help"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    for wanted in ("-o trust=TYPE[:TYPE...]", "-o trust_file=PATH", "-o over", "-o strict",
                   "max_nodes=N", "-o allow_other", "-o max_threads", "-s "):
        assert wanted in r.stdout, wanted
    r = subprocess.run([args.mount_bin, "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("mount.skopsfs "), r.stdout
    assert "(libfuse 3." in r.stdout, r.stdout


def wait_mounted(directory, process):
    for _ in range(100):
        if mounted(directory):
            return
        assert process.poll() is None, process.stderr.read()
        time.sleep(0.05)
    raise AssertionError("never mounted")


def foreground(args, archive, *options):
    d = tempfile.mkdtemp(prefix="skopsfs-ux-")
    p = subprocess.Popen([args.mount_bin, archive, d, "-f", "-o", "trust=" + ":".join(UNTRUSTED),
                          *options], stderr=subprocess.PIPE, text=True)
    wait_mounted(d, p)
    return d, p


def stop(d, p):
    problem = unmount(d)
    out = p.communicate(timeout=30)[1]
    os.rmdir(d)
    assert problem is None, problem
    return out


def negative_lookups_cached(args, archive):
    d, p = foreground(args, archive, "-d")
    try:
        for _ in range(3):
            assert not os.path.exists(os.path.join(d, "no-such-entry"))
    finally:
        log = stop(d, p)
    lookups = log.count("opcode: LOOKUP")
    assert lookups == 1, f"{lookups} lookups for one missing name asked three times"


def single_threaded_with_s(args, archive):
    threads = {}
    for label, options in (("-s", ["-s"]), ("default", [])):
        d, p = foreground(args, archive, *options)
        try:
            for name in os.listdir(d):  # let the workers start
                os.lstat(os.path.join(d, name))
            threads[label] = len(os.listdir(f"/proc/{p.pid}/task"))
        finally:
            stop(d, p)
    assert threads["-s"] == 1 and threads["default"] > 1, threads


def mount_point_with_a_space(args, archive, scratch):
    d = os.path.join(scratch, "with a space")
    os.mkdir(d)
    with Mount(args, archive, directory=d) as m:
        assert m.result.returncode == 0, m.lines
        dev = os.stat(d).st_dev
        with open(f"/sys/class/bdi/{os.major(dev)}:{os.minor(dev)}/read_ahead_kb") as f:
            assert int(f.read()) == READ_AHEAD_KB
        again = Mount(args, archive, directory=d)
        one_line(again, "is a mount point already")


def detached_once_mounted(args, archive):
    """The command returns once the mount is up; the daemon then has a
    session of its own, works from /, and has /dev/null on 0-2."""
    with Mount(args, archive, "-o", "trust=" + ":".join(UNTRUSTED)) as m:
        assert m.result.returncode == 0 and m.lines == [], m.lines
        assert os.path.exists(os.path.join(m.dir, ".type"))
        pids = daemons_of(m.dir)
        assert len(pids) == 1, pids
        pid = pids[0]
        assert os.getsid(pid) == pid and os.getsid(pid) != os.getsid(0), "still in our session"
        assert os.readlink(f"/proc/{pid}/cwd") == "/", os.readlink(f"/proc/{pid}/cwd")
        for fd in range(3):
            assert os.readlink(f"/proc/{pid}/fd/{fd}") == "/dev/null", fd


def gave_up_with_its_status(args, scratch):
    """A model that fails after the command went into the background: its
    message and a failing status, and no process left."""
    bad = os.path.join(scratch, "no-schema.skops")
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("a.npy", b"not an array")
    m = Mount(args, bad)
    try:
        failed_cleanly(m, "no schema.json")
        assert daemons_of(m.dir) == [], "a process is left"
    finally:
        m.close()


def first_child(pid, seconds=5.0):
    """PID's first child, looked for without pause (a fork is caught within
    a fraction of a millisecond), or None."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/task/{pid}/children") as f:
                children = f.read().split()
        except OSError:
            return None
        if children:
            return int(children[0])
    return None


def opened(pid, path):
    """Whether PID has PATH open; None once PID is gone."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return None
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == path:
                return True
        except OSError:
            pass
    return False


def stopped_while_reading(args, archive, d):
    """Starts a mount of ARCHIVE on D and stops its child once the child has
    the archive open: (command, child), or None when the child was not
    caught reading."""
    p = subprocess.Popen([args.mount_bin, archive, d, "-o", "trust=" + ":".join(UNTRUSTED)],
                         stderr=subprocess.DEVNULL)
    child = first_child(p.pid)
    deadline = time.monotonic() + 5.0
    while child is not None and opened(child, archive) is False and time.monotonic() < deadline:
        pass
    if child is not None and opened(child, archive):
        os.kill(child, signal.SIGSTOP)
        if not mounted(d):
            return p, child
        os.kill(child, signal.SIGCONT)
    p.wait()
    while mounted(d):
        unmount(d)
    return None


def load_dies_with_the_command(args, big_archive):
    """Killing the command while its child reads the model stops the read:
    nothing mounts later. The child is stopped while it has the archive
    open, the command killed, and the child let go."""
    d = tempfile.mkdtemp(prefix="skopsfs-ux-")
    caught = None
    try:
        for _ in range(50):
            caught = stopped_while_reading(args, os.path.realpath(big_archive), d)
            if caught is not None:
                break
        assert caught is not None, "the child was never caught reading"
        p, child = caught
        p.kill()
        p.wait()
        os.kill(child, signal.SIGCONT)
        for _ in range(200):
            try:
                with open(f"/proc/{child}/stat") as f:
                    if f.read().rsplit(") ", 1)[1].startswith(("Z", "X")):
                        break
            except OSError:
                break
            time.sleep(0.01)
        else:
            raise AssertionError("the read went on without the command")
        assert not mounted(d), "mounted without the command"
    finally:
        if caught is not None:
            try:
                os.kill(caught[1], signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.05)
        while mounted(d):
            unmount(d)
        os.rmdir(d)


def main():
    args = daemon_checker_args()
    archive = os.path.join(args.fixtures, FIXTURE + ".skops")
    scratch = tempfile.mkdtemp(prefix="skopsfs-ux-scratch-")
    checks = [
        ("repeated_trust_accumulates", lambda: repeated_trust_accumulates(args, archive)),
        ("escaped_comma_separates", lambda: escaped_comma_separates(args, archive)),
        ("hint_trusts_all_as_printed", lambda: hint_trusts_all_as_printed(args, archive)),
        ("hint_is_quoted_for_the_shell",
         lambda: hint_is_quoted_for_the_shell(args, archive, scratch)),
        ("trust_with_commas_explained", lambda: trust_with_commas_explained(args, archive)),
        ("bad_options_named", lambda: bad_options_named(args, archive)),
        ("mounted_already_refused", lambda: mounted_already_refused(args, archive)),
        ("dev_fuse_for_a_user", lambda: dev_fuse_for_a_user(args, archive, scratch)),
        ("pickles_and_joblib_read", lambda: pickles_and_joblib_read(args, scratch)),
        ("help_and_version", lambda: help_and_version(args)),
        ("negative_lookups_cached", lambda: negative_lookups_cached(args, archive)),
        ("single_threaded_with_s", lambda: single_threaded_with_s(args, archive)),
        ("mount_point_with_a_space", lambda: mount_point_with_a_space(args, archive, scratch)),
        ("detached_once_mounted", lambda: detached_once_mounted(args, archive)),
        ("gave_up_with_its_status", lambda: gave_up_with_its_status(args, scratch)),
        ("load_dies_with_the_command",
         lambda: load_dies_with_the_command(
             args, os.path.join(args.fixtures, "est_GaussianProcessClassifier.skops"))),
    ]
    try:
        return run_checks(checks)
    finally:
        for d, _, _ in os.walk(scratch):
            if mounted(d):
                unmount(d)
        shutil.rmtree(scratch)


if __name__ == "__main__":
    sys.exit(main())
