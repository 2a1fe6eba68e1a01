#!/usr/bin/env python3
"""Writes the hostile zip cases into tests/fixtures/hostile-zip/: archives
that different zip readers read differently. Each starts from the real model
in tests/fixtures/est_LinearRegression.skops; the attacker's alternative is
the same model whose root claims to be os.system (so a wrong reading changes
the audit) or an array with other numbers.

Each NAME.skops gets NAME.json: `attack`, `class`, `python` (what Debian's
/usr/bin/python3 zipfile reads: the member lines of tests/zipreading.py and
the untrusted list skops would compute, or the exception), `python_3_12_plus`
where 3.12 and later read otherwise, and `expect` for skopsfs: `refused`, or
`same_as_python` (refusing is accepted there too). `expect` is also what
tests/check_hostile.py checks: refused means the mount fails with one line and
`skopsfs audit` exits 2; `hostile` overrides that check where the refusal may
come when a member is read rather than at mount.

Run with /usr/bin/python3 (3.11) to regenerate; the output is the same
bytes every time."""
import hashlib
import json
import os
import struct
import sys
import zipfile
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from zipreading import (DEFLATED, UTF8_FLAG, Member, archive, deflate, directory,  # noqa: E402
                        end_record, end_record64, escape, line, locals_of, locator64, python_reading)

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fixtures", "hostile-zip")
BASE = os.path.join(HERE, "fixtures", "est_LinearRegression.skops")

with zipfile.ZipFile(BASE) as _z:
    BASE_MEMBERS = [(i.filename, _z.read(i.filename)) for i in _z.infolist()]
GOOD_SCHEMA = dict(BASE_MEMBERS)["schema.json"]
ARRAYS = [(n, d) for n, d in BASE_MEMBERS if n != "schema.json"]
GOOD_ROOT = b'"__class__": "LinearRegression",\n  "__module__": "sklearn.linear_model._base"'
EVIL_ROOT = b'"__class__": "system",\n  "__module__": "os"'
assert GOOD_ROOT in GOOD_SCHEMA
# The same length as the good schema, so that forged offsets line up.
EVIL_SCHEMA = GOOD_SCHEMA.replace(GOOD_ROOT, EVIL_ROOT + b" " * (len(GOOD_ROOT) - len(EVIL_ROOT)))
CAFE_SCHEMA = GOOD_SCHEMA.replace(ARRAYS[0][0].encode(), "café.npy".encode())
SHORTER = GOOD_SCHEMA[:-100]
LONGER = GOOD_SCHEMA + b" " * 100
# What skops audits for each schema a reading may hold, and the members the
# schema needs (skops fails when one is missing).
UNTRUSTED = {hashlib.sha256(GOOD_SCHEMA).hexdigest(): [],
             hashlib.sha256(EVIL_SCHEMA).hexdigest(): ["os.system"],
             hashlib.sha256(CAFE_SCHEMA).hexdigest(): [],
             hashlib.sha256(SHORTER).hexdigest(): "skops fails: schema.json is not JSON"}
NEEDS = {hashlib.sha256(CAFE_SCHEMA).hexdigest(): ["café.npy"] + [n for n, _ in ARRAYS[1:]]}
ARRAY_PATH = {"140107352409168.npy": "coef_.npy", "140107353666160.npy": "singular_.npy",
              "140107369454480.npy": "intercept_.npy"}


def other_numbers(npy):
    """The same .npy header with other float64 values: a different valid array."""
    header = 10 + struct.unpack_from("<H", npy, 8)[0]
    count = (len(npy) - header) // 8
    return npy[:header] + struct.pack(f"<{count}d", *[666.0 + i for i in range(count)])


def model(schema=GOOD_SCHEMA, arrays=ARRAYS, method=0):
    return [Member(n, d, method) for n, d in arrays] + [Member("schema.json", schema, method)]


def good():
    return model()


def evil():
    return model(EVIL_SCHEMA)


# --- the cases: each returns the archive's bytes -------------------------


def two_archives(first, second):
    a, b = archive(first), archive(second)
    return a + b


def hidden_end_record(trailing):
    """Both schemas' members, a good directory and an evil one. The good end
    record's comment holds the evil end record; the evil directory's last
    entry's comment holds the good end record, so the evil directory runs
    up to the evil end record as zipfile expects."""
    g, e = good(), evil()
    members = g + [e[-1]]
    blob, offsets = locals_of(members)
    good_cd = directory(g, offsets[:len(g)])
    evil_offsets = offsets[:len(ARRAYS)] + [offsets[-1]]
    good_cd_at = len(blob)
    evil_cd_at = good_cd_at + len(good_cd)
    e[-1].comment = b"\0" * 22  # placeholder of the good end record's size
    evil_cd = directory(e, evil_offsets)
    good_end = end_record(len(g), len(good_cd), good_cd_at, b"\0" * (22 + len(trailing)))[:22]
    e[-1].comment = good_end
    evil_cd = directory(e, evil_offsets)
    evil_end = end_record(len(e), len(evil_cd), evil_cd_at)
    return blob + good_cd + evil_cd + evil_end + trailing


def prepended_decoy():
    """A good archive whose offsets do not count a prefix; the prefix holds
    the evil members laid out where the stated offsets point."""
    prefix, _ = locals_of(evil())
    return prefix + archive(good())


def directory_elsewhere():
    """The end record's offset names an evil directory; the good one lies
    just before the end record, where zipfile reads, its offsets shifted by
    the gap zipfile computes."""
    g, e = good(), evil()
    decoy, _ = locals_of([e[-1]])
    blob, offsets = locals_of(g, len(decoy))
    evil_cd = directory(e, offsets[:len(ARRAYS)] + [0])
    good_cd = directory(g, offsets, shift=len(evil_cd))
    assert len(evil_cd) == len(good_cd)
    evil_cd_at = len(decoy) + len(blob)
    return decoy + blob + evil_cd + good_cd + end_record(len(g), len(good_cd), evil_cd_at)


def zip64_records(saturated):
    """Two ZIP64 end records: the locator names the evil one, the good one
    lies just before the locator. SATURATED: the classic end record says
    0xFFFF/0xFFFFFFFF; else it names the evil directory itself."""
    g, e = good(), evil()
    members = g + [e[-1]]
    blob, offsets = locals_of(members)
    evil_cd = directory(e, offsets[:len(ARRAYS)] + [offsets[-1]])
    evil_cd_at = len(blob)
    evil_record_at = evil_cd_at + len(evil_cd)
    evil_record = end_record64(len(e), len(evil_cd), evil_cd_at)
    good_cd_at = evil_record_at + len(evil_record)
    good_cd = directory(g, offsets)
    good_record = end_record64(len(g), len(good_cd), good_cd_at)
    locator = locator64(evil_record_at)
    if saturated:
        end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    else:
        end = end_record(len(e), len(evil_cd), evil_cd_at)
    return blob + evil_cd + evil_record + good_cd + good_record + locator + end


def unicode_path(name, target, crc_of=None):
    crc = zlib.crc32(crc_of if crc_of is not None else name)
    field = struct.pack("<BL", 1, crc) + target
    return struct.pack("<HH", 0x7075, len(field)) + field


def unicode_renames_to_schema():
    """A second schema, named schema.bak, whose Unicode Path field says
    schema.json: 3.12+ reads it as a second schema.json, the last one."""
    m = good()
    bak = Member("schema.bak", EVIL_SCHEMA, extra=unicode_path(b"schema.bak", b"schema.json"))
    return archive(m + [bak])


def unicode_renames_array():
    m = good()
    m[0].extra = unicode_path(m[0].name, b"renamed.npy")
    return archive(m)


def unicode_bad_crc():
    m = good()
    m[0].extra = unicode_path(m[0].name, b"renamed.npy", crc_of=b"something else")
    return archive(m)


def local_name_differs(index):
    m = evil() if index == -1 else good()
    m[index].local_name = m[index].name[:-1] + b"X"
    return archive(m)


def overlap():
    """The first array's declared data runs over the next member's local
    header and data: the second array lies inside the first."""
    m = good()
    m[0].payload += m[1].local()
    m[0].size = m[0].comp_size = len(m[0].payload)
    m[0].crc = zlib.crc32(m[0].payload)
    blob, offsets = locals_of([m[0]] + m[2:])
    inner = offsets[0] + 30 + len(m[0].name) + len(ARRAYS[0][1])
    offsets = [offsets[0], inner] + offsets[1:]
    cd = directory(m, offsets)
    return blob + cd + end_record(len(m), len(cd), len(blob))


def count_mismatch(extra_member, count_delta):
    m = good() + ([extra_member] if extra_member else [])
    blob, offsets = locals_of(m)
    cd = directory(m, offsets)
    return blob + cd + end_record(len(m) + count_delta, len(cd), len(blob))


def duplicate_schema():
    return archive(good() + [Member("schema.json", EVIL_SCHEMA)])


def nul_name_after_good():
    return archive(good() + [Member(b"schema.json\0.evil", EVIL_SCHEMA)])


def nul_name_only():
    m = good()
    m[-1] = Member(b"schema.json\0", GOOD_SCHEMA)
    return archive(m)


def renamed_array(stored_name, flags=0):
    """The first array's member is STORED_NAME, and the schema names it
    café.npy."""
    m = model(CAFE_SCHEMA)
    m[0] = Member(stored_name, ARRAYS[0][1], flags=flags)
    return archive(m)


def bad_crc(index):
    m = good()
    m[index].crc ^= 1
    return archive(m)


def deflate_schema(payload, declared_size=None, crc_of=None):
    """schema.json DEFLATE with a forged stream, size or CRC."""
    m = model(method=DEFLATED)
    s = m[-1]
    s.payload = payload
    s.comp_size = len(payload)
    if declared_size is not None:
        s.size = declared_size
    if crc_of is not None:
        s.crc = zlib.crc32(crc_of)
    return archive(m)


EXTRA_ARRAY = Member("extra.npy", other_numbers(ARRAYS[0][1]))

CASES = [
    # (name, class, attack, build, expect, extra manifest keys)
    ("eocd_two_archives_evil_last", "two end records",
     "a good archive with an evil one appended: zipfile reads the last end record",
     lambda: two_archives(good(), evil()), "same_as_python", {}),
    ("eocd_two_archives_good_last", "two end records",
     "an evil archive with a good one appended: zipfile reads the last end record",
     lambda: two_archives(evil(), good()), "same_as_python", {}),
    ("eocd_hidden_in_comment_last22", "two end records",
     "the good end record's comment is an evil end record, which zipfile takes because the "
     "last 22 bytes are a comment-less end record", lambda: hidden_end_record(b""),
     "same_as_python", {}),
    ("eocd_hidden_in_comment_rfind", "two end records",
     "the good end record's comment is an evil end record and one more byte: zipfile's rfind "
     "finds the evil one", lambda: hidden_end_record(b"x"), "same_as_python", {}),
    ("cd_prepended_decoy", "central directory not at its stated offset",
     "data prepended without fixing offsets; the prefix holds the evil schema where the stated "
     "offsets point", prepended_decoy, "same_as_python", {}),
    ("cd_offset_names_other_directory", "central directory not at its stated offset",
     "the end record's offset names an evil directory; zipfile reads the good one just before "
     "the end record and shifts its offsets", directory_elsewhere, "same_as_python", {}),
    ("zip64_locator_elsewhere", "ZIP64 locator",
     "the ZIP64 locator names an evil ZIP64 end record; zipfile reads the good one just before "
     "the locator", lambda: zip64_records(True), "same_as_python", {}),
    ("zip64_record_overrides_end", "ZIP64 locator",
     "the classic end record names an evil directory, the ZIP64 end record (found by position) "
     "a good one, which zipfile uses", lambda: zip64_records(False), "same_as_python", {}),
    ("unicode_path_second_schema", "Info-ZIP Unicode Path (0x7075)",
     "an evil schema.bak whose Unicode Path field says schema.json: 3.11 reads two members, "
     "3.12+ reads schema.json twice and takes the evil last", unicode_renames_to_schema,
     "refused", {}),
    ("unicode_path_renames_array", "Info-ZIP Unicode Path (0x7075)",
     "an array's Unicode Path field renames it: 3.12+ no longer finds the name the schema uses",
     unicode_renames_array, "refused", {}),
    ("unicode_path_bad_crc", "Info-ZIP Unicode Path (0x7075)",
     "a Unicode Path field whose CRC does not match the name: every zipfile ignores it",
     unicode_bad_crc, "same_as_python", {}),
    ("local_name_differs_schema", "local header name differs",
     "schema.json's local header names schema.jsoX (and the data is the evil schema)",
     lambda: local_name_differs(-1), "refused", {}),
    ("local_name_differs_array", "local header name differs",
     "an array's local header has another name", lambda: local_name_differs(0), "refused",
     {"hostile": {"expect": "mount_fails", "also_ok": "mounts",
                  "read_must_fail": [ARRAY_PATH[ARRAYS[0][0]]]}}),
    ("overlap_member_inside_member", "overlapping members",
     "the first array's data holds the second array's local header and data",
     overlap, "refused",
     {"hostile": {"expect": "mount_fails", "also_ok": "mounts",
                  "read_must_fail": [ARRAY_PATH[ARRAYS[0][0]]]}}),
    ("cd_count_hides_duplicate_schema", "more directory entries than counted",
     "the end record counts 4 entries; a fifth, an evil schema.json, lies within the "
     "directory's size", lambda: count_mismatch(Member("schema.json", EVIL_SCHEMA), -1),
     "refused", {}),
    ("cd_count_hides_member", "more directory entries than counted",
     "the end record counts 4 entries; a fifth, extra.npy, lies within the directory's size",
     lambda: count_mismatch(EXTRA_ARRAY, -1), "same_as_python", {}),
    ("cd_count_exceeds_entries", "more directory entries than counted",
     "the end record counts 6 entries; the directory's size holds 4",
     lambda: count_mismatch(None, 2), "same_as_python", {}),
    ("duplicate_schema_evil_last", "duplicate names",
     "schema.json twice, the evil one last (zipfile takes the last)", duplicate_schema,
     "refused", {}),
    ("nul_name_evil_schema", "NUL in a name",
     "schema.json, then an evil 'schema.json\\0.evil' that zipfile cuts to schema.json",
     nul_name_after_good, "refused", {}),
    ("nul_name_only_schema", "NUL in a name",
     "the schema's name is 'schema.json\\0'", nul_name_only, "same_as_python", {}),
    ("cp437_name", "non-UTF-8 names",
     "an array named caf\\x82.npy without the UTF-8 flag (cp437: café.npy), which the schema "
     "names", lambda: renamed_array(b"caf\x82.npy"), "same_as_python", {}),
    ("utf8_name_without_flag", "non-UTF-8 names",
     "an array named café.npy in UTF-8 bytes without the UTF-8 flag: zipfile reads cafÃ©.npy",
     lambda: renamed_array("café.npy".encode()), "same_as_python", {}),
    ("utf8_flag_invalid_bytes", "non-UTF-8 names",
     "the UTF-8 flag on a name that is not UTF-8",
     lambda: renamed_array(b"caf\xe9.npy", UTF8_FLAG), "refused", {}),
    ("bad_crc_schema", "bad CRC", "schema.json's CRC-32 does not match its bytes",
     lambda: bad_crc(-1), "refused", {}),
    ("bad_crc_array", "bad CRC", "an array's CRC-32 does not match its bytes",
     lambda: bad_crc(0), "refused",
     {"hostile": {"expect": "mount_fails", "also_ok": "mounts",
                  "read_must_fail": [ARRAY_PATH[ARRAYS[0][0]]]}}),
    ("deflate_stream_shorter", "DEFLATE stream length",
     "schema.json's stream ends 100 bytes before its declared size (CRC of what it holds)",
     lambda: deflate_schema(deflate(SHORTER), len(GOOD_SCHEMA), SHORTER), "refused", {}),
    ("deflate_stream_longer_crc_of_declared", "DEFLATE stream length",
     "schema.json's stream holds 100 bytes more than declared; the CRC is of the declared bytes",
     lambda: deflate_schema(deflate(LONGER), len(GOOD_SCHEMA), GOOD_SCHEMA),
     "same_as_python", {}),
    ("deflate_stream_longer_crc_of_all", "DEFLATE stream length",
     "schema.json's stream holds 100 bytes more than declared; the CRC is of all of them",
     lambda: deflate_schema(deflate(LONGER), len(GOOD_SCHEMA), LONGER), "refused", {}),
    ("deflate_stream_cut", "DEFLATE stream length",
     "schema.json's stream is cut before its end marker",
     lambda: deflate_schema(deflate(GOOD_SCHEMA)[:-200]), "refused", {}),
]

# Python 3.12 and later apply Info-ZIP Unicode Path fields (version 1, CRC of
# the name field): what they read where that differs from 3.11.
PYTHON_3_12_PLUS = {
    "unicode_path_second_schema": lambda: sorted(
        [line(n.encode(), d) for n, d in ARRAYS] + [line(b"schema.json", EVIL_SCHEMA)]),
    "unicode_path_renames_array": lambda: sorted(
        [line(b"renamed.npy", ARRAYS[0][1])] + [line(n.encode(), d) for n, d in ARRAYS[1:]]
        + [line(b"schema.json", GOOD_SCHEMA)]),
}


def outcome(lines, error):
    """The manifest's record of one reading, with what skops would audit."""
    if error is not None:
        return {"refused": error[len("refused: "):]}
    schema = [entry for entry in lines if entry.startswith("schema.json ")]
    digest = schema[0].split()[2] if schema else None
    names = {entry.split()[0] for entry in lines}
    missing = [n for n in NEEDS.get(digest, [n for n, _ in ARRAYS]) if escape(n.encode()) not in names]
    untrusted = UNTRUSTED.get(digest, "no schema.json" if digest is None else "unknown")
    if missing and isinstance(untrusted, list):
        untrusted = f"skops fails: no member {missing[0]}"
    return {"members": lines, "untrusted": untrusted}


def hostile_keys(expect, reading):
    if expect == "refused":
        return {"expect": "mount_fails"}
    keys = {"expect": "mounts", "also_ok": "mount_fails"}
    if isinstance(reading.get("untrusted"), list):
        keys["untrusted_exact"] = reading["untrusted"]
    return keys


README_HEAD = """# Hostile zip cases

Archives that zip readers read differently, written by
`tests/make_zip_cases.py` (run it with `/usr/bin/python3` to regenerate; the
bytes come out the same). Each starts from `est_LinearRegression.skops`; the
attacker's alternative is the same model whose root claims to be `os.system`.
`NAME.json` records what Python's zipfile reads (`python`, or `python_3_11`
and `python_3_12_plus` where they differ: the member lines of
`tests/zipreading.py` and what skops would audit) and what skopsfs must do
(`skopsfs`: `refused`, or `same_as_python`, where refusing is accepted too).
`expect`/`also_ok`/`untrusted_exact`/`read_must_fail` are the keys of
`tests/check_hostile.py` (see `../hostile/README.md`).

Checked by `tests/check_zip_differential.py` (skopsfs's `zipdump` against
zipfile) and `tests/check_hostile.py` (mount and `skopsfs audit`).

| case | class | zipfile 3.11 | skopsfs must |
| --- | --- | --- | --- |
"""


def readme_row(name, cls, reading, expect):
    said = reading.get("refused") or f"reads it; audit: {reading['untrusted']}"
    return f"| {name} | {cls} | {said} | {expect.replace('_', ' ')} |\n"


def main():
    if sys.version_info[:2] != (3, 11):
        sys.exit("run with /usr/bin/python3 (3.11): the manifests record what its zipfile reads")
    os.makedirs(OUT, exist_ok=True)
    readme = README_HEAD
    for name, cls, attack, build, expect, extra in CASES:
        data = build()
        path = os.path.join(OUT, name + ".skops")
        with open(path, "wb") as f:
            f.write(data)
        reading = outcome(*python_reading(path))
        manifest = {"file": name + ".skops", "class": cls, "attack": attack,
                    "python_version": "%d.%d.%d" % sys.version_info[:3]}
        if name in PYTHON_3_12_PLUS:
            manifest["python_3_11"] = reading
            manifest["python_3_12_plus"] = outcome(PYTHON_3_12_PLUS[name](), None)
        else:
            manifest["python"] = reading
        manifest["skopsfs"] = expect
        hostile = extra.get("hostile") or hostile_keys(expect, reading)
        manifest.update(hostile)
        manifest["notes"] = ("skopsfs must refuse" if expect == "refused" else
                             "skopsfs must refuse or read exactly what zipfile reads")
        with open(os.path.join(OUT, name + ".json"), "w") as f:
            json.dump(manifest, f, indent=1, ensure_ascii=False)
            f.write("\n")
        readme += readme_row(name, cls, reading, expect)
    with open(os.path.join(OUT, "README.md"), "w") as f:
        f.write(readme)


if __name__ == "__main__":
    main()
