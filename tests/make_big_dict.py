#!/usr/bin/env python3
"""Writes a .skops archive of a dict with N keys (default 1,000,000) whose
values are small ints, as skops.io.dump writes it: schema.json indented by
2, one JsonNode per value, key_types a list of TypeNodes of str that share
one __id__. Generated at test time: the file is hundreds of MB."""
import json
import sys
import zipfile


def schema(count):
    ids = iter(range(140000000000000, 1 << 62, 32))
    str_type_id = next(ids)
    content = {f"key_{i}": {"__class__": "int", "__module__": "builtins", "__loader__": "JsonNode",
                            "content": str(i), "is_json": True, "__id__": next(ids)}
               for i in range(count)}
    key_types = {"__class__": "list", "__module__": "builtins", "__loader__": "ListNode",
                 "content": [{"__class__": "str", "__module__": "builtins", "__loader__": "TypeNode",
                              "__id__": str_type_id} for _ in range(count)],
                 "__id__": next(ids)}
    return {"__class__": "dict", "__module__": "builtins", "__loader__": "DictNode",
            "content": content, "key_types": key_types, "__id__": next(ids),
            "protocol": 2, "_skops_version": "0.11.0"}


def main():
    path = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 1000000
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        z.writestr("schema.json", json.dumps(schema(count), indent=2))


if __name__ == "__main__":
    main()
