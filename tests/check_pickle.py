#!/usr/bin/python3
"""Pickle and joblib files against their manifests (tests/fixtures/pickle/README.md).

Pairs (NAME.json with "pickles"): each pickle/joblib file must audit exactly
as NAME.skops does (the manifest's "untrusted"), and show the manifest's
entries, in both trust modes, through the CLI or a real mount, except what
two dumps of one object cannot share: schema.json's bytes (ids, member
names) and .npz bytes (zip timestamps), compared by their inner arrays
against NAME.skops instead.

pkl_* cases: the audit names every global of "must_report" on a line
marked "!" (one of them holding "must_say", what skops would lose), exits
with one of "audit_exit", and nothing runs: no file
appears in a scratch folder the pickles' commands would write to."""
import argparse
import concurrent.futures
import hashlib
import io
import json
import os
import subprocess
import sys
import tempfile
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_fixtures import (Cli, Failure, Mount, audit, check, check_entries,  # noqa: E402
                            trust_passes)
from checklib import report_problems  # noqa: E402

DUMP_SPECIFIC = (".skops/schema.json",)


def npz_arrays(data):
    """sha256 of each .npy inside an .npz: what two dumps of one sparse matrix share."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return {n: hashlib.sha256(z.read(n)).hexdigest() for n in z.namelist()}


def comparable(entries, skops_file):
    """The manifest's entries with dump-specific bytes replaced by what a pickle can match."""
    members = {}
    if os.path.exists(skops_file):  # the subset here keeps no .skops files
        with zipfile.ZipFile(skops_file) as z:
            for n in z.namelist():
                if n.endswith(".npz"):
                    members[n] = npz_arrays(z.read(n))
    out = []
    for e in entries:
        e = dict(e)
        if e["path"] in DUMP_SPECIFIC:
            e.pop("sha256", None)
            e.pop("size", None)
        elif e["kind"] == "file" and e["path"].endswith(".npz") and "sha256" in e:
            e.pop("sha256")
            e.pop("size", None)
            e["npz_arrays"] = members.get(e.get("member"))
        out.append(e)
    return out


def check_npz(view, entries, problems):
    for e in entries:
        if e.get("npz_arrays") is None or e["refused"] or not e["reachable"]:
            continue
        try:
            got = npz_arrays(view.read(e["path"]))
            check(got == e["npz_arrays"], f"{e['path']}: inner arrays differ: {got} != {e['npz_arrays']}")
        except Failure as f:
            problems.append(str(f))


def check_pair_file(args, manifest, folder, name, problems, skops_file=None):
    path = os.path.join(folder, name)
    untrusted = manifest["untrusted"]
    r = audit(args.skopsfs, path)
    want = "".join(t + "\n" for t in untrusted).encode()
    if r.stdout != want or r.returncode != (1 if untrusted else 0):
        problems.append(f"{name}: audit exit {r.returncode}, printed {r.stdout!r}, want {want!r}; "
                        f"{r.stderr.decode(errors='replace').strip()}")
        return
    skops_file = skops_file or os.path.join(folder, manifest["file"])
    for trusted, entries in trust_passes(manifest):
        entries = comparable(entries, skops_file)
        trust_file = None
        if trusted is not None:
            fd, trust_file = tempfile.mkstemp(prefix="skopsfs-trust-")
            os.write(fd, "".join(t + "\n" for t in trusted).encode())
            os.close(fd)
        try:
            view = Cli(args.skopsfs, path, trust_file) if args.backend == "cli" else \
                Mount(args.mount_bin, path, trust_file)
        except Failure as f:
            problems.append(f"{name}: {f}")
            continue
        try:
            local = []
            check_entries(view, manifest, entries, args.backend == "mount", local)
            check_npz(view, entries, local)
            problems.extend(f"{name}: " + ("trusted: " if trusted else "") + p for p in local)
        finally:
            view.close()
            if trust_file:
                os.unlink(trust_file)


def convert(args, path, out, trusted=()):
    cmd = [args.skopsfs, "convert"] + [a for t in trusted for a in ("--trust", t)] + [path, out]
    return subprocess.run(cmd, capture_output=True)


def check_converted(args, manifest, folder, name, problems):
    """convert writes an archive that audits and shows as NAME.skops does,
    the same bytes each time; without --trust it refuses an untrusted type."""
    path = os.path.join(folder, name)
    untrusted = manifest["untrusted"]
    with tempfile.TemporaryDirectory(prefix="skopsfs-convert-") as scratch:
        out = os.path.join(scratch, "out.skops")
        if untrusted:
            r = convert(args, path, out)
            if r.returncode != 1 or os.path.exists(out):
                problems.append(f"{name}: convert of untrusted types: exit {r.returncode}")
            for t in untrusted:
                if f"untrusted type {t} " not in r.stderr.decode(errors="replace"):
                    problems.append(f"{name}: convert does not name {t}: {r.stderr!r}")
        r = convert(args, path, out, untrusted)
        if r.returncode != 0:
            problems.append(f"{name}: convert exit {r.returncode}: {r.stderr!r}")
            return
        again = os.path.join(scratch, "again.skops")
        convert(args, path, again, untrusted)
        with open(out, "rb") as a, open(again, "rb") as b:
            check(a.read() == b.read(), "two conversions differ")
        converted = dict(manifest, file="out.skops")
        local = []
        check_pair_file(args, converted, scratch, "out.skops", local,
                        skops_file=os.path.join(folder, manifest["file"]))
        problems.extend(f"{name} converted: {p}" for p in local)


def check_hostile_case(args, manifest, folder, problems):
    path = os.path.join(folder, manifest["file"])
    with tempfile.TemporaryDirectory(prefix="skopsfs-pkl-") as scratch:
        r = subprocess.run([args.skopsfs, "audit", path], capture_output=True, cwd=scratch)
        marked = [line[1:].split()[0] for line in r.stdout.decode(errors="replace").splitlines()
                  if line.startswith("!")]
        for g in manifest["must_report"]:
            if g not in marked:
                problems.append(f"audit does not mark {g!r} unrepresentable: {r.stdout!r}")
        said = [line for line in r.stdout.decode(errors="replace").splitlines()
                if line.startswith("!") and manifest.get("must_say", "") in line]
        if "must_say" in manifest and not said:
            problems.append(f"audit does not say {manifest.get('must_say')!r}: {r.stdout!r}")
        if r.returncode not in manifest["audit_exit"]:
            problems.append(f"audit exit {r.returncode}, want one of {manifest['audit_exit']}: "
                            f"{r.stderr!r}")
        if args.backend == "mount":
            try:
                m = Mount(args.mount_bin, path)
            except Failure:
                pass  # refusing cleanly is allowed
            else:
                try:
                    for d, _, files in os.walk(m.dir):
                        for f in files:
                            try:
                                with open(os.path.join(d, f), "rb") as fh:
                                    fh.read()
                            except PermissionError:
                                pass
                finally:
                    m.close()
        if manifest.get("convert") != "ok":
            out = os.path.join(scratch, "out.skops")
            r = convert(args, path, out)
            if r.returncode == 0 or os.path.exists(out):
                problems.append(f"convert did not refuse: exit {r.returncode}")
            os.path.exists(out) and os.unlink(out)
        if os.listdir(scratch):
            problems.append(f"something ran: {os.listdir(scratch)} appeared")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["cli", "mount"], default="cli")
    parser.add_argument("--skopsfs", required=True)
    parser.add_argument("--mount-bin")
    parser.add_argument("dirs", nargs="+")
    args = parser.parse_args()
    args.skopsfs = os.path.abspath(args.skopsfs)  # audits run in a scratch folder
    args.dirs = [os.path.abspath(d) for d in args.dirs]
    jobs = []
    for d in args.dirs:
        if not os.path.isdir(d):
            continue
        for f in sorted(os.listdir(d)):
            if not f.endswith(".json"):
                continue
            manifest = json.load(open(os.path.join(d, f)))
            if f.startswith("pkl_"):
                jobs.append((f, lambda p, m=manifest, d=d: check_hostile_case(args, m, d, p)))
                continue
            present = [n for n in manifest.get("pickles", []) if os.path.exists(os.path.join(d, n))]
            for name in present:
                jobs.append((name, lambda p, m=manifest, d=d, n=name:
                             check_pair_file(args, m, d, n, p)))
            if present:  # one conversion a pair: they all map to one state
                jobs.append((present[0] + " (convert)", lambda p, m=manifest, d=d, n=present[0]:
                             check_converted(args, m, d, n, p)))

    def run(job):
        problems = []
        try:
            job[1](problems)
        except Failure as f:
            problems.append(str(f))
        return problems

    workers = 4 if args.backend == "cli" else 1
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(run, jobs))
    return report_problems(zip([j[0] for j in jobs], results))


if __name__ == "__main__":
    sys.exit(main())
