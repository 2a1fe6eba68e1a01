#!/usr/bin/env python3
"""The raisable limits: a dict of a million keys (which skops loads) audits
and mounts with the default limits; an archive over a limit fails with a
message that names the limit and the option that raises it, and passes
with the option raised. Generates its archives in a temporary directory."""
import argparse
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
