#!/usr/bin/env python3
"""Files that aim every key at one slot of a hash table (make_colliding.py):
dict keys, integer __id__s and pickle memo keys. With the fixed hashes
skopsfs 0.1 used, auditing these took 4-33 s each (quadratic in the keys,
hours at the node limit); with keyed hashes (format/hash.c) each takes
about as long as a file of the same size and shape whose keys any hash
spreads. Each must take at most SLOWER times that file's time plus SLACK
seconds (so the bound holds on any machine and under sanitizers), and
give the answer an ordinary file of its kind gives."""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

from checklib import run_checks

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_colliding  # noqa: E402

SLOWER, SLACK = 3.0, 0.5  # with the fixed hashes: 100x and more
TIMEOUT = 120.0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--skopsfs", required=True)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="skopsfs-collisions-")
    cases = [("dict keys sharing their hash's low 24 bits", "keys", 16, ["tree", "--depth", "1"]),
             ("integer __id__s aimed at one slot", "ids", 100000, ["audit"]),
             ("pickle memo keys aimed at two slots", "memo", 65536, ["audit"])]

    def run_timed(kind, size, command, aimed):
        path = os.path.join(tmp, f"{kind}-{aimed}.{'pkl' if kind == 'memo' else 'skops'}")
        make_colliding.main_args(kind, path, size, aimed)
        start = time.monotonic()
        try:
            r = subprocess.run([args.skopsfs, *command, path], capture_output=True,
                               timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{' '.join(command)} took more than {TIMEOUT} s")
        took = time.monotonic() - start
        if r.returncode != 0:
            raise AssertionError(f"exit {r.returncode}: {r.stderr.decode()[:300]}")
        return took, r.stdout

    def timed_check(kind, size, command):
        def check():
            plain_time, plain_out = run_timed(kind, size, command, False)
            aimed_time, aimed_out = run_timed(kind, size, command, True)
            if aimed_time > SLOWER * plain_time + SLACK:
                raise AssertionError(f"{aimed_time:.2f} s, against {plain_time:.2f} s for keys "
                                     "that no hash puts together")
            if command[0] == "audit" and aimed_out != plain_out:
                raise AssertionError(f"audit says {aimed_out!r}, not {plain_out!r}")
            lines = aimed_out.count(b"\n")
            if command[0] == "tree" and lines != plain_out.count(b"\n"):
                raise AssertionError(f"tree shows {lines} lines, not one a key")
            return f"{aimed_time:.2f} s (spread keys: {plain_time:.2f} s)"
        return check

    try:
        status = run_checks([(name, timed_check(kind, size, command))
                             for name, kind, size, command in cases])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(status)


if __name__ == "__main__":
    main()
