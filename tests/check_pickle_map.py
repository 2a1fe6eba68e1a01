#!/usr/bin/python3
"""Checks the pickle machine and its mapping (tests/pickledump) against the
pickle fixtures' manifests (README.md of the fixture set):
  (a) globals == the manifest's per-file `globals` (sorted, as spelled);
  (b) the mapped schema, canonicalized like `schema_canonical_sha256`
      (each __id__ by its 1-based rank of first appearance, each `file` by
      m<rank><ext>, json.dumps(indent=2)), equals the manifest's hash;
  (a') joblib files: each array section's start/end == `joblib_arrays`;
  (c) pkl_* cases: every `must_report` name is among the findings.
Usage: check_pickle_map.py --pickledump BIN DIR [--all DIR] [--strict]
DIR's pairs must all match (exit 1 otherwise); --all DIR is counted and
reported (skipped when absent)."""
import argparse
import collections
import hashlib
import json
import os
import subprocess
import sys


def canonical_sha256(schema):
    ids, files = {}, {}

    def walk(v):
        if isinstance(v, dict):
            out = {}
            for k, x in v.items():
                if k == "__id__":
                    out[k] = ids.setdefault(x, len(ids) + 1)
                elif k == "file" and isinstance(x, str):
                    rank = files.setdefault(x, len(files) + 1)
                    out[k] = "m%d%s" % (rank, os.path.splitext(x)[1])
                else:
                    out[k] = walk(x)
            return out
        if isinstance(v, list):
            return [walk(x) for x in v]
        return v

    return hashlib.sha256(json.dumps(walk(schema), indent=2).encode()).hexdigest()


def dump(pickledump, path):
    proc = subprocess.run([pickledump, "--skops-copies", path], capture_output=True, timeout=300)
    if proc.returncode not in (0, 2):
        raise RuntimeError("%s: pickledump crashed (%d): %s" % (path, proc.returncode,
                                                               proc.stderr.decode()[-500:]))
    sections, name = collections.defaultdict(list), None
    for line in proc.stdout.decode("utf-8", "replace").split("\n"):
        if line.startswith("== "):
            name = line[3:]
            continue
        if name is not None:
            sections[name].append(line)
    schema_text = "\n".join(sections["schema"]).strip()
    return {
        "rc": proc.returncode,
        "schema": json.loads(schema_text, object_pairs_hook=dict) if schema_text else None,
        "globals": sorted(set(l.split(" ")[0] for l in sections["globals"] if l)),
        "findings": [l.split("\t") for l in sections["unrepresentable"] if l],
        "error": "\n".join(sections["error"]).strip(),
        "joblib": [[int(x) for x in l.split()] for l in sections["joblib arrays"] if l],
    }


def check_dir(pickledump, directory, verbose):
    results = collections.Counter()
    failures = []
    for name in sorted(os.listdir(directory)):
        if not name.endswith(".json"):
            continue
        manifest = json.load(open(os.path.join(directory, name)))
        if "pickle_files" in manifest:
            want_hash = manifest.get("pickle_compare", {}).get("schema_canonical_sha256")
            for entry in manifest["pickle_files"]:
                path = os.path.join(directory, entry["file"])
                if not os.path.exists(path) or entry.get("compression"):
                    continue
                got = dump(pickledump, path)
                ok_globals = got["globals"] == entry["globals"]
                if "joblib_arrays" in entry:
                    want = [[a["start"], a["end"]] for a in entry["joblib_arrays"]]
                    ok_joblib = got["joblib"] == want
                    results["joblib_files"] += 1
                    results["joblib_offsets_ok"] += ok_joblib
                    if not ok_joblib:
                        failures.append("%s: joblib sections %s, manifest %s" % (
                            entry["file"], got["joblib"][:3], want[:3]))
                ok_schema = (got["schema"] is not None and not got["findings"] and
                             canonical_sha256(got["schema"]) == want_hash)
                results["files"] += 1
                results["globals_ok"] += ok_globals
                results["schema_ok"] += ok_schema
                if not (ok_globals and ok_schema):
                    why = []
                    if not ok_globals:
                        why.append("globals %s" % sorted(set(got["globals"]) ^
                                                         set(entry["globals"])))
                    if not ok_schema:
                        why.append("schema (%s; findings %s)" % (
                            got["error"] or "hash differs", got["findings"][:3]))
                    failures.append("%s: %s" % (entry["file"], "; ".join(why)))
        elif manifest.get("file", "").startswith("pkl_"):
            path = os.path.join(directory, manifest["file"])
            if not os.path.exists(path) or manifest.get("compression"):
                continue
            got = dump(pickledump, path)
            reported = set(f[0] for f in got["findings"])
            missing = [g for g in manifest.get("must_report", []) if g not in reported]
            clean_ok = manifest.get("convert") != "ok" or (not got["findings"] and
                                                          got["rc"] == 0)
            ok_globals = got["globals"] == manifest["globals"]
            results["pkl"] += 1
            results["pkl_ok"] += not missing and clean_ok and ok_globals
            if missing or not clean_ok or not ok_globals:
                failures.append("%s: missing %s, clean_ok %s, globals_ok %s (%s)" % (
                    manifest["file"], missing, clean_ok, ok_globals, got["findings"][:4]))
    return results, failures


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pickledump", required=True)
    ap.add_argument("directory")
    ap.add_argument("--all", help="count matches over this set when present")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    results, failures = check_dir(args.pickledump, args.directory, args.verbose)
    print("fixtures: %s" % dict(results))
    for f in failures:
        print("FAIL", f)
    if args.all and os.path.isdir(args.all):
        all_results, all_failures = check_dir(args.pickledump, args.all, args.verbose)
        print("all fixtures (%s): %s" % (args.all, dict(all_results)))
        if args.verbose:
            for f in all_failures:
                print("  differs:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
