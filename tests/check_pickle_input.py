"""Checks issue 11's input modules against the Python libraries they mirror.

* decompression: every compressed joblib fixture in DIR, decompressed by
  pinput_tool, equals what joblib's own decompressor objects read (nothing is
  unpickled); the file with bytes after its zlib stream is refused, and
  with --allow-trailing reports their count;
* npy headers: pinput_tool's header equals numpy.lib.format's bytes for many
  dtypes (simple, structured with gaps, titles, subarrays, nesting, names
  beyond latin-1: version 3.0), shapes and orders (a header over 64 KiB:
  version 2.0);
* the stored-zip writer: Python's zipfile reads the archive (names, bytes,
  CRC-32, timestamps), skopsfs's own reader accepts it (zipdump), two writes
  are byte-identical, also in the ZIP64 form.
"""
import argparse
import hashlib
import io
import json
import os
import subprocess
import sys
import tempfile
import zipfile

import warnings

import numpy as np
from numpy.lib import format as npformat
from joblib import compressor as jc

failures = []
passed = 0


def check(ok, what):
    global passed
    what = what if len(what) < 2000 else what[:2000] + "..."
    if ok:
        passed += 1
    else:
        failures.append(what)
        print("FAIL:", what)


def joblib_decompress(path, name):
    with open(path, "rb") as f:
        reader = jc._COMPRESSORS[name].decompressor_file(f)
        return reader.read()


def check_decompression(tool, directory):
    names = {".z3.": "zlib", ".gz.": "gzip", ".bz2.": "bz2", ".xz.": "xz", ".lzma.": "lzma"}
    for entry in sorted(os.listdir(directory)):
        path = os.path.join(directory, entry)
        if entry.startswith("pkl_"):
            continue
        name = next(v for k, v in names.items() if k in entry)
        run = subprocess.run([tool, "decompress", path], capture_output=True)
        check(run.returncode == 0, f"{entry}: decompress exits {run.returncode} {run.stderr!r}")
        expected = joblib_decompress(path, name)
        check(run.stdout == expected, f"{entry}: {len(run.stdout)} bytes, joblib reads "
              f"{len(expected)}")
        check(run.stderr.decode().split() == [name, "0"], f"{entry}: reported {run.stderr!r}")
        # the smallest limit that fails, and the largest ratio that fails
        small = subprocess.run([tool, "decompress", "--max-bytes", str(len(expected) - 1), path],
                               capture_output=True)
        check(small.returncode == 1 and b"SK_MAX_PICKLE_BYTES" in small.stderr,
              f"{entry}: a limit one byte short is not refused: {small.stderr!r}")
        exact = subprocess.run([tool, "decompress", "--max-bytes", str(len(expected)), path],
                               capture_output=True)
        check(exact.returncode == 0, f"{entry}: an exact limit is refused: {exact.stderr!r}")
    trailing = os.path.join(directory, "pkl_joblib_zlib_trailing.joblib")
    run = subprocess.run([tool, "decompress", trailing], capture_output=True)
    check(run.returncode == 1 and b"72 bytes follow the end of the zlib stream" in run.stderr,
          f"trailing bytes not refused: {run.stderr!r}")
    run = subprocess.run([tool, "decompress", "--allow-trailing", trailing], capture_output=True)
    with open(trailing, "rb") as f:
        d = __import__("zlib").decompressobj()
        expected = d.decompress(f.read())
    check(run.returncode == 0 and run.stdout == expected and
          run.stderr.decode().split() == ["zlib", "72"],
          f"--allow-trailing: {run.returncode} {run.stderr!r}")


def descr_spec(dt):
    """pinput_tool's JSON for a numpy dtype."""
    if dt.names is None:
        return dt.str
    fields = []
    for name in dt.names:
        info = dt.fields[name]
        sub, offset = info[0], info[1]
        field = {"name": name, "offset": offset}
        if len(info) > 2:
            field["title"] = info[2]
        if sub.subdtype is not None:
            field["dtype"] = descr_spec(sub.subdtype[0])
            field["shape"] = list(sub.subdtype[1])
        else:
            field["dtype"] = descr_spec(sub)
        fields.append(field)
    return {"itemsize": dt.itemsize, "fields": fields}


def numpy_header(dt, shape, fortran):
    d = {"descr": npformat.dtype_to_descr(dt), "fortran_order": fortran, "shape": shape}
    out = io.BytesIO()
    npformat._write_array_header(out, d, None)
    return out.getvalue()


def header_cases():
    dtypes = ["<f8", ">f8", "<f4", "<f2", "<i8", ">i4", "|i1", "|u1", "<u2", "<u8", "|b1", "<c8",
              "<c16", ">c16", "|S1", "|S300", "<U1", "<U7", ">U2", "|V5", "<M8[ns]", "<m8[s]",
              "<M8[D]", "<M8", "<m8[10ms]", "|O", "<f16"]
    structured = [
        np.dtype([("a", "<i4"), ("b", "<f8")]),
        np.dtype({"names": ["a", "b"], "formats": ["<i4", "<f8"], "offsets": [0, 8],
                  "itemsize": 24}),
        np.dtype({"names": ["x"], "formats": ["<i2"], "offsets": [6], "itemsize": 8}),
        np.dtype([("sub", "<f4", (2, 3)), ("one", "<i8", (1,))]),
        np.dtype([("nested", [("p", "<i2"), ("q", "|S3")]), ("r", ">u4")]),
        np.dtype({"names": ["t"], "formats": ["<i4"], "titles": ["the title"]}),
        np.dtype([("it's", "<i4"), ('say "x"', "<i4"), ("both'\"", "<i4"), ("back\\slash", "<i4")]),
        np.dtype([("tab\tnl\ncr\r", "<i4"), ("\x01\x7f", "<i4"), ("é\xa0\xad\x80", "<f8")]),
        np.dtype([("Ω", "<i4"), ("名前", "<f8"), ("ĉ", "<i2")]),
        np.dtype([("f", "<f8")] * 1 + [("", "<i4")] if False else [("f", "<f8")]),
        # the sklearn Tree node record (padding inside the record)
        np.dtype({"names": ["left_child", "right_child", "feature", "threshold", "impurity",
                            "n_node_samples", "weighted_n_node_samples",
                            "missing_go_to_left"],
                  "formats": ["<i8", "<i8", "<i8", "<f8", "<f8", "<i8", "<f8", "|u1"],
                  "offsets": [0, 8, 16, 24, 32, 40, 48, 56], "itemsize": 64}),
    ]
    shapes = [(), (0,), (1,), (3,), (2, 3), (10**12, 7), (7, 10**12), (2**63 - 1,),
              (1, 1, 1, 1), tuple(range(1, 33))]
    cases = []
    for dt in [np.dtype(d) for d in dtypes] + structured:
        for shape in shapes:
            for fortran in (False, True):
                cases.append((dt, shape, fortran))
    return cases


def check_headers(tool):
    warnings.simplefilter("ignore", UserWarning)  # numpy's note on version 3.0
    cases = header_cases()
    spec = [{"dtype": descr_spec(dt), "shape": list(shape), "fortran": fortran}
            for dt, shape, fortran in cases]
    run = subprocess.run([tool, "npyheader"], input=json.dumps(spec).encode(),
                         capture_output=True)
    lines = run.stdout.decode().splitlines()
    check(len(lines) == len(cases), f"npyheader: {len(lines)} lines for {len(cases)} cases")
    versions = set()
    for (dt, shape, fortran), line in zip(cases, lines):
        expected = numpy_header(dt, shape, fortran)
        versions.add(expected[6])
        check(line == expected.hex(),
              f"header of {str(dt)[:100]} {shape} fortran={fortran}: {line[:200]!r}, numpy "
              f"{expected[:200]!r}")
    check(versions == {1, 3}, f"header versions covered: {versions}")
    # Version 2.0 is for headers over 65535 bytes, more than skopsfs's npy
    # reader takes (SK_MAX_NPY_HEADER_BYTES): the writer refuses them too.
    huge = np.dtype([(f"field_{i:05d}", "<f8") for i in range(4000)])
    run = subprocess.run([tool, "npyheader"], capture_output=True, input=json.dumps(
        [{"dtype": descr_spec(huge), "shape": [1]}]).encode())
    check(run.stdout.startswith(b"error: the .npy header would be 96"),
          f"a version 2.0 header: {run.stdout[:100]!r}")
    # numpy refuses these, and so must the writer
    bad = [{"dtype": "<f3", "shape": [1]}, {"dtype": "f8", "shape": [1]},
           {"dtype": "<M8[parsec]", "shape": [1]},
           {"dtype": {"itemsize": 8, "fields": [
               {"name": "a", "offset": 4, "dtype": "<i4"},
               {"name": "b", "offset": 0, "dtype": "<i4"}]}, "shape": [1]},
           {"dtype": {"itemsize": 4, "fields": [{"name": "a", "offset": 0, "dtype": "<f8"}]},
            "shape": [1]},
           {"dtype": {"itemsize": 4, "fields": [{"name": "\U0001F600", "offset": 0,
                                                 "dtype": "<i4"}]}, "shape": [1]}]
    run = subprocess.run([tool, "npyheader"], input=json.dumps(bad).encode(),
                         capture_output=True)
    lines = run.stdout.decode().splitlines()
    check(len(lines) == len(bad) and all(l.startswith("error: ") for l in lines),
          f"npyheader accepts what numpy cannot write: {lines}")


def check_zip(tool, zipdump):
    with tempfile.TemporaryDirectory() as tmp:
        members = {"b.npy": os.urandom(1000), "a/x.npy": b"", "é.bin": b"\x00" * 70000,
                   "z.npz": b"PK-looking but stored"}
        schema = json.dumps({"__class__": "dict", "content": {}}, indent=2).encode()
        with open(os.path.join(tmp, "schema.json"), "wb") as f:
            f.write(schema)
        args = []
        for i, (name, data) in enumerate(members.items()):
            path = os.path.join(tmp, f"m{i}")
            with open(path, "wb") as f:
                f.write(data)
            args.append(f"{name}={path}")
        for zip64 in (False, True):
            flag = ["--zip64"] if zip64 else []
            outs = []
            for n in range(2):
                out = os.path.join(tmp, f"out{n}.skops")
                run = subprocess.run([tool, "zip"] + flag + [out, os.path.join(tmp, "schema.json")]
                                     + args[::(-1 if n else 1)], capture_output=True)
                check(run.returncode == 0, f"zip{flag}: {run.stderr!r}")
                with open(out, "rb") as f:
                    outs.append(f.read())
            check(outs[0] == outs[1], f"zip{flag}: two writes (members in other orders) differ")
            with zipfile.ZipFile(out) as z:
                check(z.testzip() is None, f"zip{flag}: zipfile finds a bad CRC")
                names = z.namelist()
                check(names == ["schema.json"] + sorted(members, key=lambda s: s.encode()),
                      f"zip{flag}: order {names}")
                check(z.read("schema.json") == schema, f"zip{flag}: schema.json differs")
                for name, data in members.items():
                    check(z.read(name) == data, f"zip{flag}: {name} differs")
                for info in z.infolist():
                    check(info.date_time == (1980, 1, 1, 0, 0, 0) and
                          info.compress_type == zipfile.ZIP_STORED,
                          f"zip{flag}: {info.filename} {info.date_time} {info.compress_type}")
            dump = subprocess.run([zipdump, out], capture_output=True, text=True)
            check(dump.returncode == 0, f"zip{flag}: skopsfs's reader refuses: {dump.stdout}")
            want = {name: hashlib.sha256(data).hexdigest() for name, data in members.items()}
            want["schema.json"] = hashlib.sha256(schema).hexdigest()
            got = dump.stdout
            check(all(h in got for h in want.values()), f"zip{flag}: zipdump bytes: {got}")
        run = subprocess.run([tool, "zip", os.path.join(tmp, "dup.skops"),
                              os.path.join(tmp, "schema.json"), args[0], args[0]],
                             capture_output=True)
        check(run.returncode == 1 and b"given twice" in run.stderr and
              not os.path.exists(os.path.join(tmp, "dup.skops")),
              f"a repeated name is not refused: {run.stderr!r}")
        check(sorted(os.listdir(tmp)) == sorted(["schema.json", "out0.skops", "out1.skops"] +
                                                [f"m{i}" for i in range(len(members))]),
              f"temporary files left: {os.listdir(tmp)}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tool", required=True)
    parser.add_argument("--zipdump", required=True)
    parser.add_argument("fixtures")
    args = parser.parse_args()
    check_decompression(args.tool, args.fixtures)
    check_headers(args.tool)
    check_zip(args.tool, args.zipdump)
    print(f"{passed} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
