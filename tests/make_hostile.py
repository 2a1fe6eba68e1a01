#!/usr/bin/env python3
"""Writes skopsfs's own hostile archives into tests/fixtures/hostile-own/:
NAME.skops plus NAME.json in the format of the shared hostile set (expect,
also_ok, checks), for tests/check_hostile.py. Run it again to regenerate."""
import hashlib
import json
import os
import struct
import zipfile

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "hostile-own")
_ids = iter(range(140000000000000, 150000000000000, 16))


def node(cls, module, loader, **fields):
    return {"__class__": cls, "__module__": module, "__loader__": loader, **fields, "__id__": next(_ids)}


def json_node(value):
    return node("str", "builtins", "JsonNode", content=json.dumps(value), is_json=True)


def dict_node(mapping):
    return node("dict", "builtins", "DictNode", content=mapping,
                key_types=node("list", "builtins", "ListNode",
                               content=[node("str", "builtins", "TypeNode") for _ in mapping]))


def array_node(file):
    return node("ndarray", "numpy", "NdArrayNode", type="numpy", file=file)


def npy(values=(1.0, 2.0, 3.0), shape=None, descr="<f8"):
    data = struct.pack(f"<{len(values)}d", *values)
    shape = shape if shape is not None else (len(values),)
    header = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, repr(tuple(shape)))
    total = 10 + len(header) + 1
    header += " " * ((64 - total % 64) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + data


def schema_text(root):
    root["protocol"] = 2
    root["_skops_version"] = "0.15.dev0"
    return json.dumps(root)


def write(name, manifest, members, schema=None):
    path = os.path.join(OUT, name + ".skops")
    with zipfile.ZipFile(path, "w") as z:
        if schema is not None:
            z.writestr(zipfile.ZipInfo("schema.json"), schema)
        for member, data, method in members:
            z.writestr(zipfile.ZipInfo(member), data, compress_type=method)
    manifest = {"file": name + ".skops", **manifest}
    with open(os.path.join(OUT, name + ".json"), "w") as f:
        json.dump(manifest, f, indent=1, ensure_ascii=False)
    return path


LOCAL, CENTRAL = b"PK\x03\x04", b"PK\x01\x02"


def patch_headers(path, member, edit):
    """Calls EDIT(data, header_offset, is_local) on the local and central
    headers of MEMBER, to forge what zipfile will not write."""
    data = bytearray(open(path, "rb").read())
    for signature in (LOCAL, CENTRAL):
        local = signature == LOCAL
        at = 0
        while (at := data.find(signature, at)) >= 0:
            name_length = struct.unpack_from("<H", data, at + (26 if local else 28))[0]
            name_at = at + (30 if local else 46)
            if member is None or data[name_at:name_at + name_length] == member.encode():
                edit(data, at, local)
            at += 4
    open(path, "wb").write(bytes(data))


STORED, DEFLATED = zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED


def main():
    os.makedirs(OUT, exist_ok=True)
    arr = npy()

    # zip tricks
    write("zip_duplicate_member", {
        "attack": "two members named a.npy with different bytes; the schema names a.npy",
        "expect": "mount_fails", "also_ok": "mounts",
        "notes": "Which copy is meant is ambiguous (Python's zipfile takes the last, libzip the first): refusing is safest."},
        [("a.npy", npy((1.0,)), STORED), ("a.npy", npy((2.0,)), STORED)],
        schema_text(dict_node({"a": array_node("a.npy")})))
    p = write("zip_encrypted_member", {
        "attack": "the array member has the encryption flag set",
        "expect": "mount_fails", "notes": "skopsfs does not decrypt; nothing is served in its place."},
        [("a.npy", arr, STORED)], schema_text(dict_node({"a": array_node("a.npy")})))
    def encrypted(data, at, local):
        data[at + (6 if local else 8)] |= 1
    patch_headers(p, "a.npy", encrypted)
    p = write("zip_unsupported_method", {
        "attack": "the array member claims compression method 99 (AE-x/unknown)",
        "expect": "mount_fails"},
        [("a.npy", arr, STORED)], schema_text(dict_node({"a": array_node("a.npy")})))
    patch_headers(p, "a.npy", lambda data, at, local: struct.pack_into("<H", data, at + (8 if local else 10), 99))
    write("zip_member_size_lies_short", {
        "attack": "a stored member whose data is shorter than its directory entry says (cut archive body)",
        "expect": "mount_fails", "also_ok": "mounts"},
        [("a.npy", arr, STORED)], schema_text(dict_node({"a": array_node("a.npy")})))
    patch_headers(os.path.join(OUT, "zip_member_size_lies_short.skops"), "a.npy",
                  lambda data, at, local: struct.pack_into("<II", data, at + (18 if local else 20), 10 ** 9, 10 ** 9))
    write("deflate_stream_short", {
        "attack": "a DEFLATE member whose stream ends before its declared size",
        "expect": "mounts", "also_ok": "mount_fails", "untrusted_exact": [],
        "read_must_fail": ["b.bin"],
        "notes": "Reading past what the stream holds fails (EIO) instead of inventing bytes."},
        [("b.bin", b"x" * 5000, DEFLATED)],
        schema_text(dict_node({"b": node("bytes", "builtins", "BytesNode", file="b.bin")})))
    patch_headers(os.path.join(OUT, "deflate_stream_short.skops"), "b.bin",
                  lambda data, at, local: struct.pack_into("<I", data, at + (22 if local else 24), 9000))

    # JSON tricks
    schema = schema_text(dict_node({"a": json_node(1), "b": json_node(2)}))
    schema = schema.replace('"b": {', '"a": {', 1)
    write("json_duplicate_keys", {
        "attack": "a dict whose content has the key 'a' twice",
        "expect": "mounts", "untrusted_exact": [], "file_content": {"a": "2\n"}, "dir_entries": {"": 1},
        "notes": "As Python's json: the last value wins, in the first one's place."},
        [], schema)
    write("json_wrong_types", {
        "attack": "a ListNode whose content is a string, not a list",
        "expect": "mount_fails"},
        [], schema_text(dict_node({"l": node("list", "builtins", "ListNode", content="abc")})))
    write("json_top_level_array", {
        "attack": "schema.json is a JSON array", "expect": "mount_fails"}, [], "[1, 2, 3]")
    write("json_huge_integer_id", {
        "attack": "__id__ values of 400 digits, reused, and a slice bound of 60 digits",
        "expect": "mounts", "untrusted_exact": [],
        "file_content": {"s": "slice(%s, None, None)\n" % ("9" * 60), "y": "1\n"}},
        [], schema_text(dict_node({
            "x": {**json_node(1), "__id__": int("7" * 400)},
            "y": {"__class__": "int", "__module__": "builtins", "__loader__": "CachedNode", "__id__": int("7" * 400)},
            "s": node("slice", "builtins", "SliceNode", content={"start": int("9" * 60), "stop": None, "step": None})})))

    # node tricks
    write("node_cached_unknown_id", {
        "attack": "a CachedNode whose __id__ was never seen",
        "expect": "mounts", "untrusted_exact": ["evil.Thing"], "denied": ["c"]},
        [], schema_text(dict_node({"c": {"__class__": "Thing", "__module__": "evil",
                                         "__loader__": "CachedNode", "__id__": 1234}})))
    root = dict_node({})
    root["content"]["me"] = {"__class__": "list", "__module__": "builtins", "__loader__": "ListNode",
                             "content": [{"__class__": "list", "__module__": "builtins",
                                          "__loader__": "CachedNode", "__id__": 99},
                                         {"__class__": "dict", "__module__": "builtins",
                                          "__loader__": "CachedNode", "__id__": root["__id__"]}],
                             "__id__": 99}
    root["key_types"]["content"].append(node("str", "builtins", "TypeNode"))
    write("node_list_cycles", {
        "attack": "a list that holds itself and the root",
        "expect": "mounts", "untrusted_exact": [], "symlink_to": {"me/0": "me", "me/1": ""}},
        [], schema_text(root))
    write("node_operator_wrong_module", {
        "attack": "an OperatorFuncNode from module os", "expect": "mount_fails"},
        [], schema_text(dict_node({"f": node("system", "os", "OperatorFuncNode",
                                             attrs=node("tuple", "builtins", "TupleNode", content=[]))})))
    write("node_tree_hides_os_system", {
        "attack": "an ObjectNode of os.system inside a TreeNode's state (only Tree itself is inherited)",
        "expect": "mounts", "untrusted_exact": ["os.system"], "denied": ["t/x"]},
        [], schema_text(dict_node({"t": node("Tree", "sklearn.tree._tree", "TreeNode",
                                             content=dict_node({"x": node("system", "os", "ObjectNode")}),
                                             __reduce__={"args": node("tuple", "builtins", "TupleNode", content=[])})})))

    # npy tricks
    short = npy((1.0, 2.0), shape=(1000,))
    write("npy_shape_larger_than_data", {
        "attack": "an .npy header whose shape needs 8000 bytes over 16 bytes of data",
        "expect": "mounts", "untrusted_exact": [],
        "file_sha256": {"a.npy": hashlib.sha256(short).hexdigest()},
        "notes": "Served byte for byte (numpy itself refuses it); no dtype/shape xattrs."},
        [("a.npy", short, STORED)], schema_text(dict_node({"a": array_node("a.npy")})))
    bad = b"\x93NUMPY\x01\x00\xff\xff" + b"{" * 20
    write("npy_truncated_header", {
        "attack": "an .npy header that declares 65535 bytes and holds 20",
        "expect": "mounts", "untrusted_exact": [], "file_sha256": {"a.npy": hashlib.sha256(bad).hexdigest()}},
        [("a.npy", bad, STORED)], schema_text(dict_node({"a": array_node("a.npy")})))

    # name tricks
    key = "/" * 200 + "é" * 100
    write("names_overlong_slashes", {
        "attack": "a 400-byte key of slashes and two-byte characters", "expect": "mounts",
        "untrusted_exact": [], "dir_entries": {"": 1}},
        [], schema_text(dict_node({key: json_node("long")})))
    write("names_dotdot_everywhere", {
        "attack": "keys '..', '../..', '../../etc/passwd' on nested dicts", "expect": "mounts",
        "untrusted_exact": [], "must_exist": ["%2E.", "%2E.%2F..", "%2E.%2F..%2Fetc%2Fpasswd", "%2E./%2E."],
        "must_not_exist": ["etc"],
        "file_content": {"%2E.%2F..%2Fetc%2Fpasswd": "root\n", "%2E./%2E./x": "1\n"}},
        [], schema_text(dict_node({"..": dict_node({"..": dict_node({"x": json_node(1)})}),
                                   "../..": json_node(0), "../../etc/passwd": json_node("root")})))
    # not an attack: ZIP64 extra fields in every header, as zipfile writes
    # members over 2 GiB; the data starts after them
    a64 = npy(tuple(float(i) for i in range(4096)))
    b64 = b"skops" * 3000
    path = os.path.join(OUT, "zip64_headers.skops")
    with zipfile.ZipFile(path, "w", allowZip64=True) as z:
        for member, data, method in (("a.npy", a64, STORED), ("b.bin", b64, DEFLATED)):
            info = zipfile.ZipInfo(member)
            info.compress_type = method
            with z.open(info, "w", force_zip64=True) as f:
                f.write(data)
        z.writestr(zipfile.ZipInfo("schema.json"), schema_text(dict_node({
            "a": array_node("a.npy"), "b": node("bytes", "builtins", "BytesNode", file="b.bin")})))
    with open(os.path.join(OUT, "zip64_headers.json"), "w") as f:
        json.dump({"file": "zip64_headers.skops",
                   "attack": "none: ZIP64 extra fields in every header (sizes there, not in the header)",
                   "expect": "mounts", "untrusted_exact": [],
                   "file_sha256": {"a.npy": hashlib.sha256(a64).hexdigest(),
                                   "b.bin": hashlib.sha256(b64).hexdigest()}}, f, indent=1)

    # __id__ identity: two states are one object exactly when skops's memo
    # (a dict keyed by the json.loads value) says so
    def with_id(state, id_text):
        return {**state, "__id__": id_text}
    def id_schema(pairs):
        """A dict whose entries are JsonNodes with the given raw __id__ texts."""
        marks = {}
        content = {}
        for i, (key, value, id_text) in enumerate(pairs):
            marks[f"@ID{i}@"] = id_text
            content[key] = with_id(json_node(value), f"@ID{i}@")
        text = schema_text(dict_node(content))
        for mark, id_text in marks.items():
            text = text.replace(f'"{mark}"', id_text)
        return text
    long = "x" * 300
    write("ids_long_strings", {
        "attack": "two string __id__s of 301 characters equal in their first 300",
        "expect": "mounts", "untrusted_exact": [], "file_content": {"a": "1\n", "b": "2\n"},
        "notes": "Two objects for skops: a memo key cut to a fixed length would make b a copy of a."},
        [], id_schema([("a", 1, f'"{long}a"'), ("b", 2, f'"{long}b"')]))
    write("ids_nul_inside", {
        "attack": "string __id__s that differ only after a NUL character",
        "expect": "mounts", "untrusted_exact": [],
        "file_content": {"a": "1\n", "b": "2\n", "c": "1\n"}},
        [], id_schema([("a", 1, '"a\\u0000b"'), ("b", 2, '"a\\u0000c"'), ("c", 3, '"a\\u0000b"')]))
    write("ids_numbers", {
        "attack": "__id__s 1, 1.0, true, \"1\", 2**53+1, 9007199254740993.0, 2**53, 10**30, 1e30",
        "expect": "mounts", "untrusted_exact": [],
        "file_content": {"int": "1\n", "float": "1\n", "true": "1\n", "string": "4\n",
                         "big": "5\n", "float_big": "6\n", "two53": "6\n", "two53_float": "6\n",
                         "e30_int": "9\n", "e30": "10\n", "e30_exact": "10\n"},
        "notes": "Python equality: 1 == 1.0 == True; a str never equals an int; "
                 "9007199254740993.0 reads as 2**53; 1e30 is 1000000000000000019884624838656."},
        [], id_schema([("int", 1, "1"), ("float", 2, "1.0"), ("true", 3, "true"), ("string", 4, '"1"'),
                       ("big", 5, "9007199254740993"), ("float_big", 6, "9007199254740993.0"),
                       ("two53", 7, "9007199254740992"), ("two53_float", 8, "9007199254740992.0"),
                       ("e30_int", 9, "1000000000000000000000000000000"), ("e30", 10, "1e30"),
                       ("e30_exact", 11, "1000000000000000019884624838656")]))
    write("ids_spelled_bigint_mark", {
        "attack": "a string __id__ spelling skopsfs's in-memory mark of a big integer, and that integer",
        "expect": "mount_fails",
        "notes": "skops loads it (two objects); skopsfs refuses strings that start with NUL + 'bigint:' "
                 "rather than risk taking one for an integer (see README, choices)."},
        [], id_schema([("a", 1, '"\\u0000bigint:100000000000000000000"'),
                       ("b", 2, "100000000000000000000")]))

    # names are exact: NUL never cuts one, a suffix makes another loader
    lr = {"__class__": "LinearRegression", "__module__": "sklearn.linear_model._base", "__loader__": "ObjectNode"}
    for name, field, value in (("names_nul_in_module", "__module__", "sklearn.linear_model._base\0evil"),
                               ("names_nul_in_class", "__class__", "LinearRegression\0evil"),
                               ("names_nul_in_loader", "__loader__", "ObjectNode\0x")):
        write(name, {
            "attack": f"{field} {value!r}: cut at the NUL it would name a trusted type or a real loader",
            "expect": "mount_fails",
            "notes": "skopsfs refuses names holding NUL (skops would use the whole name, trusted nowhere)."},
            [], schema_text(dict_node({"m": {**lr, field: value, "__id__": next(_ids)}})))
    write("names_loader_suffix", {
        "attack": "__loader__ 'ObjectNodeX'", "expect": "mount_fails",
        "notes": "skops: Can't find loader ObjectNodeX."},
        [], schema_text(dict_node({"m": {**lr, "__loader__": "ObjectNodeX", "__id__": next(_ids)}})))
    write("names_nul_in_function", {
        "attack": "an old FunctionNode whose function is 'erfc\\0x' (cut: a trusted scipy ufunc)",
        "expect": "mount_fails"},
        [], schema_text(dict_node({"f": node("ufunc", "numpy", "FunctionNode", content={
            "module_path": "scipy.special._ufuncs", "function": "erfc\0x"})})).replace(
                '"protocol": 2', '"protocol": 0'))

    # refused means refused for later occurrences too
    def evil(content):
        return node("system", "os", "ObjectNode", content=dict_node(content))
    shared = array_node("a.npy")
    write("alias_array_in_untrusted", {
        "attack": "an array inside an untrusted object, referenced again from a trusted dict",
        "expect": "mounts", "untrusted_exact": ["os.system"], "denied": ["evil"],
        "unreachable": ["evil/a.npy"], "read_must_fail": ["t/again.npy"], "kind": {"t/again.npy": "symlink"}},
        [("a.npy", arr, STORED)],
        schema_text(dict_node({"evil": evil({"a": shared}), "t": dict_node({"again": dict(shared)})})))
    shared = dict_node({"x": json_node("secret")})
    write("alias_dict_in_untrusted", {
        "attack": "a dict inside an untrusted object, referenced again from a trusted dict",
        "expect": "mounts", "untrusted_exact": ["os.system"], "denied": ["evil"],
        "unreachable": ["evil/d", "t/again/x"], "read_must_fail": ["t/again/x"],
        "kind": {"t/again": "symlink"}},
        [], schema_text(dict_node({"evil": evil({"d": shared}), "t": dict_node({"again": dict(shared)})})))
    shared = json_node("secret")
    write("alias_json_in_untrusted", {
        "attack": "a JSON value inside an untrusted object, repeated in a trusted dict",
        "expect": "mounts", "untrusted_exact": ["os.system"], "denied": ["evil"],
        "file_content": {"t/again": "secret\n"}, "kind": {"t/again": "file"},
        "notes": "The spec: a repeated JSON value is a plain file with that value, wherever it occurs "
                 "(None, True, False are shared all over real models)."},
        [], schema_text(dict_node({"evil": evil({"s": shared}), "t": dict_node({"again": dict(shared)})})))
    shared = array_node("a.npy")
    hidden = dict_node({})
    hidden["key_types"]["content"] = [node("Thing", "evil", "TypeNode"), shared]
    write("alias_hidden_in_untrusted", {
        "attack": "an array first read in the hidden key_types of a refused dict, referenced again from a trusted dict",
        "expect": "mounts", "untrusted_exact": ["evil.Thing"], "denied": ["h", "t/again.npy"],
        "read_must_fail": ["t/again.npy"]},
        [("a.npy", arr, STORED)], schema_text(dict_node({"h": hidden, "t": dict_node({"again": dict(shared)})})))

    print(f"wrote {len(os.listdir(OUT)) // 2} cases to {OUT}")


if __name__ == "__main__":
    main()
