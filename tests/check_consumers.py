#!/usr/bin/env python3
"""Real consumers of a mount: numpy.load (also with mmap_mode='r') on every
array path, scipy.sparse.load_npz on sparse paths, and many threads reading
random ranges of several members at once, all compared with the archive's
members as Python's zipfile reads them. Prints "N passed, N failed"."""
import argparse
import io
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import zipfile

import numpy
import scipy.sparse

from checklib import run_checks, unmount

THREADS = 8
READS_PER_THREAD = 400


class Mounted:
    def __init__(self, mount_bin, archive, *options):
        self.dir = tempfile.mkdtemp(prefix="skopsfs-consumer-")
        subprocess.run([mount_bin, archive, self.dir, *options], check=True, capture_output=True)

    def __enter__(self):
        return self.dir

    def __exit__(self, *exc):
        unmount(self.dir)
        os.rmdir(self.dir)


def manifest_members(manifest_path):
    """(mount path, member) of every reachable, not refused member file."""
    manifest = json.load(open(manifest_path))
    return [(e["path"], e["member"]) for e in manifest["entries"]
            if e.get("member") and e["kind"] == "file" and not e["refused"] and e["reachable"]]


def numpy_loads(args, fixtures):
    count = 0
    for name in ["numpy_arrays", "tree_structured", "forest_compressed", "est_KMeans", "masked_arrays"]:
        archive = os.path.join(fixtures, name + ".skops")
        zf = zipfile.ZipFile(archive)
        with Mounted(args.mount_bin, archive) as root:
            for path, member in manifest_members(os.path.join(fixtures, name + ".json")):
                if not path.endswith(".npy"):
                    continue
                want = numpy.load(io.BytesIO(zf.read(member)), allow_pickle=False)
                got = numpy.load(os.path.join(root, path), allow_pickle=False)
                assert got.dtype == want.dtype and got.shape == want.shape, path
                assert numpy.array_equal(got, want, equal_nan=want.dtype.kind in "fc"), path
                mapped = numpy.load(os.path.join(root, path), mmap_mode="r")
                if want.size:
                    assert mapped.reshape(-1)[-1].tobytes() == want.reshape(-1)[-1].tobytes(), path
                del mapped  # a live map keeps the mount busy
                count += 1
    assert count > 40, f"only {count} arrays checked"
    return count


def sparse_loads(args, fixtures):
    archive = os.path.join(fixtures, "sparse_matrices.skops")
    manifest = json.load(open(os.path.join(fixtures, "sparse_matrices.json")))
    zf = zipfile.ZipFile(archive)
    with Mounted(args.mount_bin, archive, "-o", "trust=" + ":".join(manifest["untrusted"])) as root:
        count = 0
        for e in manifest["entries"]:
            if e.get("loader") == "SparseMatrixNode" and e["kind"] == "file":
                got = scipy.sparse.load_npz(os.path.join(root, e["path"]))
                want = scipy.sparse.load_npz(io.BytesIO(zf.read(e["member"])))
                assert got.format == want.format and (got != want).nnz == 0, e["path"]
                count += 1
    assert count >= 6
    return count


def parallel_readers(args, workdir):
    """Several large members, stored and DEFLATE, read at random by 8 threads."""
    rng = random.Random(7)
    members = {}
    for i in range(4):
        # compressible but not uniform, so DEFLATE makes many blocks
        members[f"m{i}.bin"] = bytes(rng.getrandbits(4) + (k // 9000) % 11 for k in range(3 << 20))
    content = {}
    for i, name in enumerate(members):
        content[f"blob{i}"] = {"__class__": "bytes", "__module__": "builtins", "__loader__": "BytesNode",
                               "file": name, "__id__": 100 + i}
    schema = {"__class__": "dict", "__module__": "builtins", "__loader__": "DictNode", "protocol": 2,
              "_skops_version": "test", "__id__": 1, "content": content,
              "key_types": {"__class__": "list", "__module__": "builtins", "__loader__": "ListNode",
                            "content": [{"__class__": "str", "__module__": "builtins",
                                         "__loader__": "TypeNode", "__id__": 2}] * len(content)}}
    archive = os.path.join(workdir, "parallel.skops")
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("schema.json", json.dumps(schema))
        for i, (name, data) in enumerate(members.items()):
            zf.writestr(name, data, compress_type=zipfile.ZIP_DEFLATED if i % 2 else zipfile.ZIP_STORED)
    errors = []
    with Mounted(args.mount_bin, archive) as root:
        def reader(seed):
            r = random.Random(seed)
            handles = {i: open(os.path.join(root, f"blob{i}.bin"), "rb", buffering=0) for i in range(4)}
            try:
                for _ in range(READS_PER_THREAD):
                    i = r.randrange(4)
                    data = members[f"m{i}.bin"]
                    at = r.randrange(len(data))
                    length = r.randrange(1, 200000)
                    got = os.pread(handles[i].fileno(), length, at)
                    if got != data[at:at + length]:
                        errors.append(f"blob{i}.bin at {at}+{length}")
                        return
            finally:
                for h in handles.values():
                    h.close()
        threads = [threading.Thread(target=reader, args=(s,)) for s in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors, errors[:3]
    return THREADS * READS_PER_THREAD


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mount-bin", required=True)
    parser.add_argument("fixtures")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        return run_checks([
            ("numpy_loads", lambda: f"{numpy_loads(args, args.fixtures)} checked"),
            ("sparse_loads", lambda: f"{sparse_loads(args, args.fixtures)} checked"),
            ("parallel_readers", lambda: f"{parallel_readers(args, workdir)} checked"),
        ])


if __name__ == "__main__":
    sys.exit(main())
