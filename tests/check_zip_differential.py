#!/usr/bin/env python3
"""Differential test of skopsfs's zip reader against Python's zipfile: for
every archive, skopsfs (tests/zipdump) must refuse it or read exactly what
zipfile reads (the same names mapped to the same bytes, so the same
schema.json). Run with /usr/bin/python3.

1. The hostile zip cases (a directory of NAME.skops + NAME.json written by
   tests/make_zip_cases.py): `skopsfs: refused` must be refused;
   `same_as_python` must be refused or read as every recorded zipfile
   version reads it. The recorded reading of this Python must still hold.
2. Mutants of real archives (the other arguments), made deterministically
   from a seed: header fields changed (sizes, offsets, name and extra
   lengths, counts, flags, methods, CRCs), random bytes, data prepended or
   appended, end records and directory entries duplicated, a comment or a
   whole archive appended. SKOPSFS_MUTANTS sets how many (default 2000, about 1-2 minutes),
   SKOPSFS_MUTANT_SEED the seed; it stops early, saying so, after
   SKOPSFS_MUTANT_SECONDS (default 240: a sanitized build on a busy machine
   is slow). Every disagreement is printed and the
   mutant kept in a temporary directory for replay.
Prints "N passed, N failed" last."""
import argparse
import json
import os
import random
import re
import struct
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from collections import Counter  # noqa: E402

from zipreading import (CENTRAL, END, LOCAL, LOCATOR64, agree,  # noqa: E402
                        python_reading, skopsfs_reading)

DEFAULT_MUTANTS = 2000
DEFAULT_SECONDS = 240
SHOWN = 20

# (offset, width) of each field a mutation may change, per record kind.
FIELDS = {
    "local": {"flags": (6, 2), "method": (8, 2), "crc": (14, 4), "comp_size": (18, 4),
              "size": (22, 4), "name_length": (26, 2), "extra_length": (28, 2),
              "version": (4, 2), "signature": (0, 4)},
    "central": {"flags": (8, 2), "method": (10, 2), "crc": (16, 4), "comp_size": (20, 4),
                "size": (24, 4), "name_length": (28, 2), "extra_length": (30, 2),
                "comment_length": (32, 2), "disk": (34, 2), "offset": (42, 4),
                "version": (6, 2), "signature": (0, 4)},
    "end": {"disk": (4, 2), "cd_disk": (6, 2), "count_disk": (8, 2), "count": (10, 2),
            "cd_size": (12, 4), "cd_offset": (16, 4), "comment_length": (20, 2),
            "signature": (0, 4)},
    "end64": {"record_size": (4, 8), "count_disk": (24, 8), "count": (32, 8),
              "cd_size": (40, 8), "cd_offset": (48, 8), "disk": (16, 4), "signature": (0, 4)},
    "locator64": {"disk": (4, 4), "offset": (8, 8), "disks": (16, 4), "signature": (0, 4)},
}


class Layout:
    """Where the records of a well-formed archive lie: (kind, offset, name
    offset, name length) for every header, found from its end record."""

    def __init__(self, data):
        self.records = []
        end = data.rfind(END)
        self.records.append(("end", end, 0, 0))
        count, cd_size, cd_offset = struct.unpack_from("<HLL", data, end + 10)
        locator = data.rfind(LOCATOR64, 0, end)
        if locator >= 0 and locator + 20 == end:
            self.records.append(("locator64", locator, 0, 0))
            record = struct.unpack_from("<Q", data, locator + 8)[0]
            self.records.append(("end64", record, 0, 0))
            count, cd_size, cd_offset = struct.unpack_from("<QQQ", data, record + 32)
        self.cd_offset, self.cd_size = cd_offset, cd_size
        self.entries = []
        at = cd_offset
        while at < cd_offset + cd_size and data[at:at + 4] == CENTRAL:
            n, e, c = struct.unpack_from("<HHH", data, at + 28)
            self.records.append(("central", at, at + 46, n))
            local = struct.unpack_from("<L", data, at + 42)[0]
            if local == 0xFFFFFFFF:  # in the ZIP64 extra field, after any sizes
                local = struct.unpack_from("<Q", data, at + 46 + n + e - 8)[0]
            if data[local:local + 4] == LOCAL:
                ln = struct.unpack_from("<H", data, local + 26)[0]
                self.records.append(("local", local, local + 30, ln))
            self.entries.append((at, 46 + n + e + c))
            at += 46 + n + e + c


def interesting(value, width, rng, data):
    top = (1 << (8 * width)) - 1
    choices = [0, 1, top, top - 1, value + 1, value - 1, value + rng.randint(2, 64),
               value - rng.randint(2, 64), value * 2, len(data), rng.randint(0, top),
               0x7FFFFFFF, 0xFFFF, 0xFFFFFFFF]
    return rng.choice(choices) & top


def mutate_field(data, layout, rng):
    kind, at, _, _ = rng.choice(layout.records)
    field = rng.choice(sorted(FIELDS[kind]))
    offset, width = FIELDS[kind][field]
    if at + offset + width > len(data):
        return f"{kind}@{at}.{field}: out of range"
    value = int.from_bytes(data[at + offset:at + offset + width], "little")
    if field == "flags":
        new = value ^ rng.choice([1, 8, 0x800, 0x40, 0x20])
    elif field == "method":
        new = rng.choice([0, 8, 12, 14, 93, 99, 1])
    else:
        new = interesting(value, width, rng, data)
    data[at + offset:at + offset + width] = new.to_bytes(width, "little")
    return f"{kind}@{at}.{field} {value}->{new}"


def mutate_name(data, layout, rng):
    named = [r for r in layout.records if r[3] > 0 and r[2] + r[3] <= len(data)]
    if not named:
        return mutate_bytes(data, layout, rng)
    kind, at, name_at, length = rng.choice(named)
    i = name_at + rng.randrange(length)
    data[i] = rng.choice([0, 0x82, 0xC3, 0xFF, ord("/"), ord("X"), rng.randrange(256)])
    return f"{kind}@{at} name byte {i - name_at} -> {data[i]:#x}"


def mutate_bytes(data, layout, rng):
    count = rng.randint(1, 4)
    for _ in range(count):
        data[rng.randrange(len(data))] = rng.randrange(256)
    return f"{count} random bytes"


def prepend(data, layout, rng):
    junk = rng.choice([b"\0" * rng.randint(1, 300), bytes(rng.randrange(256) for _ in range(64)),
                       bytes(data[:rng.randint(1, len(data))])])
    data[0:0] = junk
    return f"prepended {len(junk)} bytes"


def append(data, layout, rng):
    junk = rng.choice([b"\0" * rng.randint(1, 100), bytes(data[-22:]), END + b"\0" * 18,
                       bytes(rng.randrange(256) for _ in range(30))])
    data += junk
    return f"appended {len(junk)} bytes"


def duplicate_end(data, layout, rng):
    end = layout.records[0][1]
    record = bytes(data[end:end + 22])
    if rng.random() < 0.5:
        data += record
        return "end record appended again"
    data[end + 20:end + 22] = struct.pack("<H", len(data) - end - 22 + 22)
    data += record
    return "end record hidden in the comment"


def duplicate_entry(data, layout, rng):
    if not layout.entries or layout.cd_size >= 0xFFFFFFFF:
        return mutate_bytes(data, layout, rng)
    at, length = rng.choice(layout.entries)
    entry = bytes(data[at:at + length])
    where = rng.choice([e[0] for e in layout.entries] + [layout.cd_offset + layout.cd_size])
    data[where:where] = entry
    end = data.rfind(END)
    count, cd_size = struct.unpack_from("<HL", data, end + 10)
    grow_count = rng.random() < 0.5
    if cd_size != 0xFFFFFFFF:
        struct.pack_into("<L", data, end + 12, cd_size + length)
    if grow_count and count != 0xFFFF:
        struct.pack_into("<HH", data, end + 8, count + 1, count + 1)
    return f"directory entry at {at} copied to {where}" + (", counted" if grow_count else "")


def append_archive(data, layout, rng, others=()):
    other = rng.choice(list(others) + [bytes(data)])
    data += other
    return f"an archive of {len(other)} bytes appended"


def add_comment(data, layout, rng):
    end = layout.records[0][1]
    comment = rng.choice([b"comment", END + b"\0" * 18, b"x" * rng.randint(1, 200)])
    data[end + 20:end + 22] = struct.pack("<H", len(comment) + rng.choice([0, 0, 1, -1, 5]) & 0xFFFF)
    data += comment
    return f"comment of {len(comment)} bytes"


MUTATIONS = [(mutate_field, 10), (mutate_name, 2), (mutate_bytes, 3), (prepend, 1), (append, 1),
             (duplicate_end, 1), (duplicate_entry, 2), (append_archive, 1), (add_comment, 1)]


def make_mutant(base, others, rng):
    data = bytearray(base)
    steps = []
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        try:
            layout = Layout(bytes(data))
        except (struct.error, ValueError):
            layout = None
        fns, weights = zip(*MUTATIONS)
        fn = rng.choices(fns, weights)[0]
        if layout is None:
            fn = mutate_bytes
            layout = Layout(bytes(base))
        try:
            if fn is append_archive:
                steps.append(fn(data, layout, rng, others))
            else:
                steps.append(fn(data, layout, rng))
        except (struct.error, IndexError, ValueError):  # a record an earlier step broke
            steps.append(mutate_bytes(data, layout, rng))
    return bytes(data), steps


def differ(ours, python):
    if ours[0] is None:
        return None
    if python[0] is None:
        return f"skopsfs reads it, zipfile {python[1]}"
    a, b = set(ours[0]), set(python[0])
    return f"only skopsfs: {sorted(a - b)[:3]}; only zipfile: {sorted(b - a)[:3]}"


def kind(why):
    """A disagreement's kind, without the names and numbers in it."""
    if why.startswith("skopsfs reads it, zipfile refused: "):
        return "zipfile refuses: " + re.sub(r"('[^']*'|b'[^']*'|\"[^\"]*\"|\d+)", "_", why[35:])[:70]
    return "both read it, differently"


def check_cases(zipdump, directory):
    results = []
    for name in sorted(os.listdir(directory)):
        if not name.endswith(".json"):
            continue
        m = json.load(open(os.path.join(directory, name)))
        path = os.path.join(directory, m["file"])
        problems = []
        python = python_reading(path)
        ours = skopsfs_reading(zipdump, path)
        recorded = m.get("python", m.get("python_3_11"))
        now = python[0] if python[0] is not None else python[1][len("refused: "):]
        if sys.version_info[:2] == (3, 11) and now != recorded.get("refused", recorded.get("members")):
            problems.append("this zipfile no longer reads what the manifest records: "
                            "regenerate with tests/make_zip_cases.py")
        if m["skopsfs"] == "refused" and ours[0] is not None:
            problems.append(f"skopsfs reads it ({differ(ours, python) or 'as zipfile does'}); "
                            "must refuse")
        elif not agree(ours, python):
            problems.append(f"skopsfs and zipfile {sys.version.split()[0]} differ: "
                            f"{differ(ours, python)}")
        later = m.get("python_3_12_plus")
        if later and ours[0] is not None and ours[0] != later.get("members"):
            problems.append("skopsfs reads it, but not as zipfile 3.12+ does")
        verdict = ours[1] or "skopsfs reads it"
        print(f"{'FAIL' if problems else 'ok  '} {m['file']}: {verdict}")
        for p in problems:
            print(f"    {p}")
        results.append(not problems)
    return results


def check_mutants(zipdump, bases, count, seed, seconds):
    rng = random.Random(seed)
    originals = [open(b, "rb").read() for b in bases]
    keep = tempfile.mkdtemp(prefix="skopsfs-zipdiff-")
    work = os.path.join(keep, "mutant.skops")
    tried = refused_ours = refused_python = 0
    disagreements = []
    started = time.monotonic()
    for i in range(count):
        if time.monotonic() - started > seconds:
            print(f"mutants: stopped after {seconds} s (SKOPSFS_MUTANT_SECONDS)")
            break
        k = i % len(originals)
        data, steps = make_mutant(originals[k], originals, rng)
        with open(work, "wb") as f:
            f.write(data)
        tried += 1
        python = python_reading(work)
        try:
            ours = skopsfs_reading(zipdump, work)
        except Exception as e:  # a crash or hang is a disagreement too
            ours = ([f"zipdump failed: {e}"], None)
        refused_ours += ours[0] is None
        refused_python += python[0] is None
        if not agree(ours, python):
            kept = os.path.join(keep, f"mutant-{i}.skops")
            os.replace(work, kept)
            disagreements.append((kept, os.path.basename(bases[k]), steps, differ(ours, python)))
    print(f"mutants: {tried} tried from {len(bases)} archives (seed {seed}) in "
          f"{time.monotonic() - started:.0f} s; skopsfs refused {refused_ours}, "
          f"zipfile refused {refused_python}, {len(disagreements)} disagreements")
    for kept, base, steps, why in disagreements[:SHOWN]:
        print(f"FAIL {kept} (from {base}: {'; '.join(steps)}): {why}")
    if len(disagreements) > SHOWN:
        print(f"    ... and {len(disagreements) - SHOWN} more in {keep}")
    for what, n in Counter(kind(d[3]) for d in disagreements).most_common():
        print(f"    {n:5d} {what}")
    if not disagreements:
        if os.path.exists(work):
            os.unlink(work)
        os.rmdir(keep)
    return [True] * (tried - len(disagreements)) + [False] * len(disagreements)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--zipdump", required=True)
    parser.add_argument("cases", help="directory of hostile zip cases")
    parser.add_argument("bases", nargs="*", help="well-formed archives to mutate")
    args = parser.parse_args()
    results = check_cases(args.zipdump, args.cases)
    if args.bases:
        count = int(os.environ.get("SKOPSFS_MUTANTS", DEFAULT_MUTANTS))
        seed = int(os.environ.get("SKOPSFS_MUTANT_SEED", 1))
        seconds = float(os.environ.get("SKOPSFS_MUTANT_SECONDS", DEFAULT_SECONDS))
        results += check_mutants(args.zipdump, args.bases, count, seed, seconds)
    failed = results.count(False)
    print(f"{len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
