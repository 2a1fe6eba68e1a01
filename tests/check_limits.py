#!/usr/bin/env python3
"""The raisable limits: a dict of a million keys (which skops loads) audits
and mounts with the default limits; an archive over a limit fails with a
message that names the limit and the option that raises it, and passes
with the option raised. Generates its archives in a temporary directory."""
import argparse
import errno
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import zipfile

from checklib import mounted, run_checks, unmount

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_big_dict  # noqa: E402

KEYS = 1000000


def small_dict(keys):
    """A skops dict of the given keys, each an int JsonNode."""
    return make_big_dict.schema(0) | {
        "content": {k: {"__class__": "int", "__module__": "builtins", "__loader__": "JsonNode",
                        "content": str(i), "is_json": True, "__id__": 1000 + i}
                    for i, k in enumerate(keys)},
        "key_types": {"__class__": "list", "__module__": "builtins", "__loader__": "ListNode",
                      "content": [{"__class__": "str", "__module__": "builtins",
                                   "__loader__": "TypeNode", "__id__": 999} for _ in keys],
                      "__id__": 998}}


def write(directory, name, schema):
    path = os.path.join(directory, name)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("schema.json", json.dumps(schema, indent=2))
    return path


def run(*args):
    return subprocess.run(args, capture_output=True, timeout=900)


def write_pickles(directory):
    """Small pickle and joblib files, each past one pickle limit set low:
    their paths by name."""
    import pickle
    import joblib
    import numpy as np
    paths = {name: os.path.join(directory, name)
             for name in ("dict.pkl", "zeros.joblib", "shared.pkl")}
    # 30000 memoized keys: ~90000 opcodes, ~60000 values, over 1 MiB of
    # values (the memo table and the dict's items)
    keys = {f"key_{i}": i for i in range(30000)}
    with open(paths["dict.pkl"], "wb") as f:
        pickle.dump(keys, f, protocol=4)
    joblib.dump({"w": np.zeros(600000)}, paths["zeros.joblib"], compress=3)  # 4.8 MB inflated
    shared = [1, 2]
    for _ in range(12):  # written out in full: ~8 MiB of schema.json
        shared = [shared, shared]
    with open(paths["shared.pkl"], "wb") as f:
        pickle.dump(shared, f, protocol=4)
    return paths


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--skopsfs", required=True)
    parser.add_argument("--mount-bin", required=True)
    parser.add_argument("--keys", type=int, default=KEYS)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="skopsfs-limits-")
    big = os.path.join(tmp, "big.skops")
    long_key = write(tmp, "long_key.skops", small_dict(["k" * 70000]))
    many = write(tmp, "many.skops", small_dict(["a", "b", "c", "d"]))
    pickles = write_pickles(tmp)

    def over_limit(path, limit, cli_option, mount_option, value):
        def check():
            r = run(args.skopsfs, "audit", path)
            err = r.stderr.decode()
            if r.returncode != 2 or limit not in err or cli_option not in err \
                    or mount_option not in err:
                raise AssertionError(f"audit exit {r.returncode}: {err!r}")
            r = run(args.skopsfs, "audit", cli_option, str(value), path)
            if r.returncode != 0:
                raise AssertionError(f"{cli_option} {value}: exit {r.returncode}: {r.stderr!r}")
            directory = tempfile.mkdtemp(dir=tmp)
            r = run(args.mount_bin, path, directory)
            if r.returncode == 0 or limit not in r.stderr.decode():
                unmount(directory)
                raise AssertionError(f"mount: exit {r.returncode}: {r.stderr!r}")
            r = run(args.mount_bin, path, directory, "-o", f"{mount_option}{value}")
            if r.returncode != 0:
                raise AssertionError(f"-o {mount_option}{value}: {r.stderr!r}")
            if unmount(directory) is not None:
                raise AssertionError("cannot unmount")
        return check

    def lowered_limit(path, limit, cli_option, value):
        def check():
            r = run(args.skopsfs, "audit", cli_option, str(value), path)
            if r.returncode != 2 or limit not in r.stderr.decode():
                raise AssertionError(f"{cli_option} {value}: exit {r.returncode}: {r.stderr!r}")
        return check

    def pickle_limit(path, limit, option, low, high):
        """OPTION ("max_pickle_memo") set to LOW refuses PATH, through the CLI
        and a mount, with a message that names LIMIT and both spellings of
        the option; set to HIGH it accepts PATH."""
        cli_option = "--" + option.replace("_", "-")
        mount_option = option + "="

        def check():
            r = run(args.skopsfs, "audit", cli_option, str(low), path)
            err = r.stderr.decode()
            if r.returncode != 2 or not all(s in err for s in (limit, cli_option, mount_option)):
                raise AssertionError(f"{cli_option} {low}: exit {r.returncode}: {err!r}")
            r = run(args.skopsfs, "audit", cli_option, str(high), path)
            if r.returncode not in (0, 1):
                raise AssertionError(f"{cli_option} {high}: exit {r.returncode}: {r.stderr!r}")
            directory = tempfile.mkdtemp(dir=tmp)
            r = run(args.mount_bin, path, directory, "-o", f"{mount_option}{low}")
            if r.returncode == 0 or mount_option not in r.stderr.decode():
                unmount(directory)
                raise AssertionError(f"-o {mount_option}{low}: exit {r.returncode}: {r.stderr!r}")
            r = run(args.mount_bin, path, directory, "-o", f"{mount_option}{high}")
            if r.returncode != 0:
                raise AssertionError(f"-o {mount_option}{high}: {r.stderr!r}")
            try:
                os.listdir(directory)
            finally:
                if unmount(directory) is not None:
                    raise AssertionError("cannot unmount")
        return check

    def pickle_schema_text(path):
        """.skops/schema.json of a pickle whose shared objects skops writes
        out in full: past max_pickle_schema_mb that one file fails (E2BIG,
        the CLI naming the option); raised, it reads whole."""
        def check():
            r = run(args.skopsfs, "cat", "--max-pickle-schema-mb", "1", path, ".skops/schema.json")
            err = r.stderr.decode()
            if r.returncode == 0 or "SK_MAX_PICKLE_SCHEMA_TEXT" not in err \
                    or "--max-pickle-schema-mb" not in err or "max_pickle_schema_mb=" not in err:
                raise AssertionError(f"cat with 1 MiB: exit {r.returncode}: {err!r}")
            whole = run(args.skopsfs, "cat", "--max-pickle-schema-mb", "16", path,
                        ".skops/schema.json")
            if whole.returncode != 0 or not 1 << 20 < len(whole.stdout) < 16 << 20:
                raise AssertionError(f"cat with 16 MiB: {whole.returncode} {whole.stderr!r}")
            for mb, expected in ((1, None), (16, whole.stdout)):
                directory = tempfile.mkdtemp(dir=tmp)
                r = run(args.mount_bin, path, directory, "-o", f"max_pickle_schema_mb={mb}")
                if r.returncode != 0:
                    raise AssertionError(f"-o max_pickle_schema_mb={mb}: {r.stderr!r}")
                try:
                    with open(os.path.join(directory, ".skops", "schema.json"), "rb") as f:
                        got = f.read()
                    if expected is None or got != expected:
                        raise AssertionError(f"max_pickle_schema_mb={mb}: read {len(got)} bytes")
                except OSError as e:
                    if expected is not None or e.errno != errno.E2BIG:
                        raise
                finally:
                    if unmount(directory) is not None:
                        raise AssertionError("cannot unmount")
        return check

    def pickle_count_too_large():
        r = run(args.skopsfs, "audit", "--max-pickle-memo", str(1 << 31), pickles["dict.pkl"])
        if r.returncode != 2 or b"at most" not in r.stderr:
            raise AssertionError(f"--max-pickle-memo 2**31: exit {r.returncode}: {r.stderr!r}")

    def schema_mb_overflow():
        r = run(args.skopsfs, "audit", "--max-schema-mb", str(1 << 44), many)
        if r.returncode != 2 or b"64 bits" not in r.stderr:
            raise AssertionError(f"--max-schema-mb 2**44: exit {r.returncode}: {r.stderr!r}")
        r = run(args.skopsfs, "audit", "--max-schema-mb", str((1 << 44) - 1), many)
        if r.returncode != 0:
            raise AssertionError(f"--max-schema-mb 2**44-1: {r.stderr!r}")
        directory = tempfile.mkdtemp(dir=tmp)
        r = run(args.mount_bin, many, directory, "-o", f"max_schema_mb={1 << 44}")
        if r.returncode == 0 or mounted(directory):
            unmount(directory)
            raise AssertionError("max_schema_mb=2**44 mounted")

    def big_dict():
        start = time.monotonic()
        with zipfile.ZipFile(big, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as z:
            z.writestr("schema.json", json.dumps(make_big_dict.schema(args.keys), indent=2))
        made = time.monotonic() - start
        start = time.monotonic()
        r = run(args.skopsfs, "audit", big)
        audited = time.monotonic() - start
        if r.returncode != 0:
            raise AssertionError(f"audit: exit {r.returncode}: {r.stderr!r}")
        directory = tempfile.mkdtemp(dir=tmp)
        start = time.monotonic()
        r = run(args.mount_bin, big, directory)
        if r.returncode != 0:
            raise AssertionError(f"mount: {r.stderr!r}")
        try:
            mount_time = time.monotonic() - start
            last = f"key_{args.keys - 1}"
            with open(os.path.join(directory, last), "rb") as f:
                if f.read() != f"{args.keys - 1}\n".encode():
                    raise AssertionError(f"{last}: wrong content")
        finally:
            if unmount(directory) is not None:
                raise AssertionError("cannot unmount")
        rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024
        return (f"{args.keys} keys, schema.json {zipfile.ZipFile(big).infolist()[0].file_size >> 20}"
                f" MiB: written {made:.1f} s, audit {audited:.1f} s, mount {mount_time:.1f} s,"
                f" peak RSS of a child {rss} MiB")

    status = run_checks([
        ("key over SK_MAX_KEY_BYTES", over_limit(long_key, "SK_MAX_KEY_BYTES", "--max-key-bytes",
                                                 "max_key_bytes=", 100000)),
        ("children over --max-children", lowered_limit(many, "SK_MAX_CHILDREN_PER_NODE",
                                                       "--max-children", 3)),
        ("children within --max-children", lambda: run(args.skopsfs, "audit", "--max-children",
                                                       "5", many).check_returncode()),
        ("--max-schema-mb that overflows", schema_mb_overflow),
        ("pickle over --max-pickle-opcodes", pickle_limit(
            pickles["dict.pkl"], "SK_PICKLE_MAX_OPCODES", "max_pickle_opcodes", 1000, 1000000)),
        ("pickle over --max-pickle-memo", pickle_limit(
            pickles["dict.pkl"], "SK_PICKLE_MAX_MEMO", "max_pickle_memo", 1000, 1000000)),
        ("pickle over --max-pickle-values", pickle_limit(
            pickles["dict.pkl"], "SK_PICKLE_MAX_VALUES", "max_pickle_values", 1000, 1000000)),
        ("pickle over --max-pickle-arena-mb", pickle_limit(
            pickles["dict.pkl"], "SK_PICKLE_MAX_ARENA_BYTES", "max_pickle_arena_mb", 1, 64)),
        ("joblib over --max-pickle-mb", pickle_limit(
            pickles["zeros.joblib"], "SK_MAX_PICKLE_BYTES", "max_pickle_mb", 1, 8)),
        ("pickle schema.json over --max-pickle-schema-mb",
         pickle_schema_text(pickles["shared.pkl"])),
        ("--max-pickle-memo past what the machine counts", pickle_count_too_large),
        ("a million-key dict with default limits", big_dict),
        ("schema over --max-schema-mb (big)", lowered_limit(big, "SK_MAX_SCHEMA_BYTES",
                                                            "--max-schema-mb", 1)),
    ])
    for name in os.listdir(tmp):
        path = os.path.join(tmp, name)
        os.rmdir(path) if os.path.isdir(path) else os.unlink(path)
    os.rmdir(tmp)
    sys.exit(status)


if __name__ == "__main__":
    main()
