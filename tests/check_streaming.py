#!/usr/bin/env python3
"""schema.json is read a window at a time, never held whole (issue 14).

Each fixture's schema.json is padded after every newline with spaces until
it is tens of megabytes, the graph it makes unchanged, and written stored
and deflated. The audit must say exactly what the jansson reader
(SKOPSFS_SCHEMA_READER=jansson, which holds the whole text) says, and its
peak memory must stay far below the text's size. The ensembles alias whole
estimators far from their originals once padded (skops writes a shared
object in full wherever it recurs): they take the second streamed pass,
with a digest of every container."""
import argparse
import os
import subprocess
import sys
import tempfile
import zipfile

# Aliases of strings and types (all), of a whole estimator (ExtraTrees'
# _estimator, the VotingClassifier's estimators_), CachedNodes.
CASES = [
    "est_ExtraTreesClassifier.skops",
    "pipeline_nested.skops",
    "cached_node_pipeline.skops",
    "est_HistGradientBoostingRegressor.skops",
    "voting_classifier.skops",
]
PADDED_BYTES = 24 << 20


def padded_copy(source, target, compression):
    with zipfile.ZipFile(source) as z:
        text = z.read("schema.json").decode()
        members = [(info, z.read(info)) for info in z.infolist() if info.filename != "schema.json"]
    pad = " " * max(1, PADDED_BYTES // max(1, text.count("\n")))
    text = text.replace("\n", "\n" + pad)
    with zipfile.ZipFile(target, "w", compression=compression) as z:
        z.writestr("schema.json", text)
        for info, data in members:
            z.writestr(info, data)
    return len(text)


def audit(skopsfs, path, reader):
    """Output, exit status and peak resident kilobytes of one audit. The
    peak is read by a small program between: a child forked from this
    Python would count this Python's pages too."""
    env = dict(os.environ)
    if reader:
        env["SKOPSFS_SCHEMA_READER"] = reader
    with tempfile.NamedTemporaryFile("r") as peak:
        result = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", peak.name, skopsfs, "audit",
                                 "--no-content-checks", path], capture_output=True, env=env,
                                timeout=300)
        lines = peak.read().split()
    return (result.stdout + result.stderr).decode(errors="replace"), result.returncode, \
        int(lines[-1])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--skopsfs", required=True)
    parser.add_argument("--fixtures", required=True)
    parser.add_argument("--check-memory", action="store_true",
                        help="hold the reads to a peak well below the text")
    args = parser.parse_args()
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name in CASES:
            for compression, how in ((zipfile.ZIP_STORED, "stored"),
                                     (zipfile.ZIP_DEFLATED, "deflated")):
                path = os.path.join(tmp, f"{how}-{name}")
                size = padded_copy(os.path.join(args.fixtures, name), path, compression)
                text, status, peak_kb = audit(args.skopsfs, path, None)
                old_text, old_status, old_peak_kb = audit(args.skopsfs, path, "jansson")
                problems = []
                if (text, status) != (old_text, old_status):
                    problems.append(f"audit says {status} {text!r}, the jansson reader "
                                    f"{old_status} {old_text!r}")
                if status < 0 or old_status < 0:
                    problems.append("killed by a signal")
                if args.check_memory and peak_kb * 1024 > size // 2:
                    problems.append(f"peak {peak_kb} KiB for {size} bytes of text: held whole")
                verdict = "FAIL" if problems else "ok  "
                print(f"{verdict} {how} {name}: {size >> 20} MiB of text, peak {peak_kb >> 10} MiB "
                      f"(jansson reader {old_peak_kb >> 10} MiB), exit {status}")
                for problem in problems:
                    print(f"     {problem}")
                failed += bool(problems)
                os.unlink(path)
    print(f"{2 * len(CASES) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
