#!/usr/bin/env python3
"""Writes .skops archives whose keys or __id__s all fall in one slot of an
unseeded hash table: a dict whose keys agree in the low 24 bits of their
64-bit FNV-1a hash, and a list whose states' integer __id__s agree in the
bits a fixed multiply-shift hash would take. With such a hash, a table
that probes linearly makes every insert walk all earlier ones: quadratic
work from a file of a few MB. The low L bits of FNV-1a depend only on the
low L bits of its state, so two blocks that collide from one state make
2**stages colliding keys when concatenated stage by stage. And a pickle
whose memo keys do the same to the pickle machine's memo.

    make_colliding.py keys PATH STAGES | ids PATH COUNT | memo PATH COUNT"""
import json
import sys
import zipfile

# The offset basis skopsfs 0.1 used (a digit short of the standard one).
FNV_OFFSET, FNV_PRIME, MASK64 = 1469598103934665603, 0x100000001B3, (1 << 64) - 1
LOW_BITS = 24
ALPHABET = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def fnv_step(state, block):
    for byte in block:
        state = ((state ^ byte) * FNV_PRIME) & MASK64
    return state


def colliding_pair(state):
    """Two 4-byte blocks taking STATE to the same low LOW_BITS bits."""
    seen = {}
    low = (1 << LOW_BITS) - 1
    for a in ALPHABET:
        for b in ALPHABET:
            for c in ALPHABET:
                for d in ALPHABET[:8]:
                    block = bytes((a, b, c, d))
                    end = fnv_step(state, block) & low
                    if end in seen:
                        return seen[end], block, fnv_step(state, block)
                    seen[end] = block
    raise SystemExit("no pair found")


def colliding_keys(stages, aimed=True):
    if not aimed:  # as many keys of the same length, spread by any hash
        return [f"{i:068x}" for i in range(2 ** stages)]
    state, pairs = FNV_OFFSET, []
    for _ in range(stages):
        first, second, state = colliding_pair(state)
        pairs.append((first, second))
    keys = [b""]
    for first, second in pairs:
        keys = [k + first for k in keys] + [k + second for k in keys]
    return [k.decode() for k in keys]


def json_int(value, node_id):
    return {"__class__": "int", "__module__": "builtins", "__loader__": "JsonNode",
            "content": str(value), "is_json": True, "__id__": node_id}


def colliding_ids(count, aimed=True):
    """Distinct int64 ids whose product with the golden-ratio constant has
    bits 20..43 all zero."""
    if not aimed:
        return list(range(140000000000000, 140000000000000 + 48 * count, 48))
    inverse = pow(0x9E3779B97F4A7C15, -1, 1 << 64)
    ids = []
    for k in range(1, count + 1):
        value = ((k << 44) * inverse) & MASK64
        ids.append(value - (1 << 64) if value >= 1 << 63 else value)
    return ids


def dict_schema(stages, aimed=True):
    keys = colliding_keys(stages, aimed)
    ids = iter(range(140000000000000, 1 << 62, 32))
    str_type = next(ids)
    return {"__class__": "dict", "__module__": "builtins", "__loader__": "DictNode",
            "content": {k: json_int(i, next(ids)) for i, k in enumerate(keys)},
            "key_types": {"__class__": "list", "__module__": "builtins", "__loader__": "ListNode",
                          "content": [{"__class__": "str", "__module__": "builtins",
                                       "__loader__": "TypeNode", "__id__": str_type}
                                      for _ in keys], "__id__": next(ids)},
            "__id__": next(ids), "protocol": 2, "_skops_version": "0.11.0"}


def list_schema(count, aimed=True):
    ids = colliding_ids(count + 1, aimed)
    return {"__class__": "list", "__module__": "builtins", "__loader__": "ListNode",
            "content": [json_int(i, ids[i]) for i in range(count)], "__id__": ids[count],
            "protocol": 2, "_skops_version": "0.11.0"}


def memo_pickle(count, aimed=True):
    """A protocol 2 pickle that stores None under COUNT memo keys 65536
    apart (LONG_BINPUT), which a fixed multiplicative hash sends to two
    slots. Python's own unpickler keeps its memo in an array indexed by the
    key: do not load this with it."""
    shift = 16 if aimed else 0
    body = b"".join(b"Nr" + (k << shift).to_bytes(4, "little") + b"0" for k in range(count))
    return b"\x80\x02" + body + b"N."


def write(path, schema):
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        z.writestr("schema.json", json.dumps(schema, indent=2))


def main_args(kind, path, size, aimed=True):
    """AIMED false: a file of the same size and shape whose keys any hash
    spreads, to compare times with."""
    if kind == "memo":
        with open(path, "wb") as f:
            f.write(memo_pickle(size, aimed))
    else:
        write(path, dict_schema(size, aimed) if kind == "keys" else list_schema(size, aimed))


def main():
    main_args(sys.argv[1], sys.argv[2], int(sys.argv[3]))


if __name__ == "__main__":
    main()
