#!/usr/bin/env python3
"""numpy reads what a mount of a pickle shows: arrays this test pickles
itself (so loading them here is safe), written with pickle protocols 2, 4
and 5 and with joblib (plain and zlib), are mounted, read with numpy.load
(also mmap_mode='r') and compared with pickle.load/joblib.load of the same
file; then each is converted and the .skops mounted and read the same way.
Prints "N passed, N failed"."""
import argparse
import os
import pickle
import subprocess
import sys
import tempfile

import joblib
import numpy

from checklib import run_checks, unmount


def arrays():
    rng = numpy.random.default_rng(7)
    return {
        "f64": rng.random((300, 7)),
        "fortran": numpy.asfortranarray(rng.random((5, 9))),
        "big_endian": numpy.arange(1000, dtype=">i4"),
        "int8": numpy.arange(-50, 50, dtype=numpy.int8),
        "bools": rng.random(33) > 0.5,
        "structured": numpy.array([(1, 2.5, b"ab"), (3, 4.5, b"cd")],
                                  dtype=[("i", "<i4"), ("f", "<f8"), ("s", "S2")]),
        "complex": (rng.random(10) + 1j * rng.random(10)).astype(numpy.complex128),
        "scalar_array": numpy.array(3.25),
        "empty": numpy.zeros((0, 3)),
    }


def writers(folder, obj):
    files = {}
    for protocol in (2, 4, 5):
        path = os.path.join(folder, f"model.p{protocol}.pkl")
        with open(path, "wb") as f:
            pickle.dump(obj, f, protocol=protocol)
        files[path] = lambda p=path: pickle.load(open(p, "rb"))
    for compress in (0, 3):
        path = os.path.join(folder, f"model.z{compress}.joblib")
        joblib.dump(obj, path, compress=compress)
        files[path] = lambda p=path: joblib.load(p)
    return files


class Mounted:
    def __init__(self, mount_bin, archive):
        self.dir = tempfile.mkdtemp(prefix="skopsfs-pickle-consumer-")
        subprocess.run([mount_bin, archive, self.dir], check=True, capture_output=True)

    def __enter__(self):
        return self.dir

    def __exit__(self, *exc):
        unmount(self.dir)
        os.rmdir(self.dir)


def same(want, got, name):
    assert got.dtype == want.dtype.newbyteorder("=") or got.dtype == want.dtype, \
        f"{name}: dtype {got.dtype} != {want.dtype}"
    assert got.shape == want.shape, f"{name}: shape {got.shape} != {want.shape}"
    assert numpy.array_equal(got, want), f"{name}: values differ"


def read_through_mount(mount_bin, path, loaded):
    with Mounted(mount_bin, path) as d:
        for name, want in loaded.items():
            file = os.path.join(d, name + ".npy")
            same(want, numpy.load(file), name)
            same(want, numpy.load(file, mmap_mode="r"), name + " (mmap)")


def check_file(args, scratch, path, load):
    loaded = load()
    read_through_mount(args.mount_bin, path, loaded)
    converted = os.path.join(scratch, os.path.basename(path) + ".skops")
    r = subprocess.run([args.skopsfs, "convert", path, converted], capture_output=True)
    assert r.returncode == 0, r.stderr
    read_through_mount(args.mount_bin, converted, loaded)
    return f"{len(loaded)} arrays"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mount-bin", required=True)
    parser.add_argument("--skopsfs", required=True)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="skopsfs-pickles-") as scratch:
        files = writers(scratch, arrays())
        return run_checks([(os.path.basename(path),
                            lambda p=path, load=load: check_file(args, scratch, p, load))
                           for path, load in files.items()])


if __name__ == "__main__":
    sys.exit(main())
