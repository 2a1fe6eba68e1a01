#!/usr/bin/env python3
"""Content checks (docs/content-checks.md) against real and mutated models.

  fixtures   every content fixture (NAME.json: valid, problems, path): audit
             flags exactly the invalid ones, with the manifest's codes at its
             path, and --json says the same; valid ones print the plain
             untrusted list and exit as before.
  mount      the same through a mount: /.skops/problems, user.skops.problems
             on the bad node, -o strict refusing.
  no alarms  no other fixture (valid models all) gets a content problem.
  mutations  each rule broken on a valid tree, HGB predictor or CSR/CSC
             matrix is caught (at its path, exit 1 for sparse ones);
             byte-swapped, 32-bit and scikit-learn >= 1.3 records are not.
Prints "N passed, N failed"."""
import argparse
import glob
import io
import json
import os
import subprocess
import sys
import tempfile
import zipfile

import numpy as np

from checklib import mounted, report_problems, unmount

MARK = "# content: "


def setf(field, where, value):
    """A change to the nodes array: FIELD of the record WHERE picks becomes VALUE
    (or VALUE(nodes, i))."""
    def change(nodes):
        i = where(nodes)
        nodes[field][i] = value(nodes, i) if callable(value) else value
        return nodes
    return change


def audit(skopsfs, archive, *options):
    r = subprocess.run([skopsfs, "audit", *options, archive], capture_output=True, timeout=120)
    lines = r.stdout.decode().splitlines()
    types = [x for x in lines if not x.startswith(MARK)]
    found = [x[len(MARK):] for x in lines if x.startswith(MARK)]
    return r, types, found


def parse(line):
    """'PATH: CODE[ at ...]' -> (path, code)."""
    path, rest = line.split(": ", 1)
    return ("" if path == "." else path), rest.split(" ", 1)[0]


def check_fixture(args, archive, m):
    problems = []
    r, types, found = audit(args.skopsfs, archive)
    if types != sorted(m["untrusted_types"]):
        problems.append(f"untrusted types {types}")
    got = {parse(x) for x in found}
    if m["valid"]:
        if found:
            problems.append(f"valid model flagged: {found}")
        if r.returncode != (1 if types else 0):
            problems.append(f"exit {r.returncode}")
        return problems
    if r.returncode != 1:
        problems.append(f"exit {r.returncode}")
    for code in m["problems"]:
        if (m["path"], code) not in got:
            problems.append(f"{code} at {m['path']!r} not reported: {found}")
    j = subprocess.run([args.skopsfs, "audit", "--json", archive], capture_output=True)
    listed = {(p["path"], p["code"]) for p in json.loads(j.stdout).get("problems", [])}
    if listed != got:
        problems.append(f"--json lists {listed}, text {got}")
    return problems


def check_fixture_mount(args, archive, m):
    problems = []
    trust = ["-o", "trust=" + ":".join(m["untrusted_types"])] if m["untrusted_types"] else []
    d = tempfile.mkdtemp(prefix="skopsfs-content-")
    try:
        r = subprocess.run([args.mount_bin, archive, d, *trust], capture_output=True)
        if r.returncode != 0:
            return [f"mount failed: {r.stderr!r}"]
        with open(os.path.join(d, ".skops/problems")) as f:
            listed = {parse(x) for x in f.read().splitlines()}
        want = set() if m["valid"] else {(m["path"], c) for c in m["problems"]}
        if not want <= listed or (m["valid"] and listed):
            problems.append(f".skops/problems {listed}, want {want}")
        if not m["valid"]:
            value = os.getxattr(os.path.join(d, m["path"]), "user.skops.problems").decode()
            for code in m["problems"]:
                if code not in value:
                    problems.append(f"user.skops.problems {value!r} lacks {code}")
        unmount(d)
        r = subprocess.run([args.mount_bin, archive, d, "-o", "strict", *trust],
                           capture_output=True)
        if m["valid"] and r.returncode != 0:
            problems.append(f"-o strict refused a valid model: {r.stderr!r}")
        if not m["valid"] and (r.returncode == 0 or mounted(d)):
            problems.append("-o strict mounted an invalid model")
    finally:
        if mounted(d):
            unmount(d)
        os.rmdir(d)
    return problems


def check_no_alarms(args, directories):
    problems = []
    for directory in directories:
        for archive in sorted(glob.glob(os.path.join(directory, "*.skops"))):
            _, _, found = audit(args.skopsfs, archive)
            if found:
                problems.append(f"{os.path.basename(archive)}: {found}")
    return problems


# ---- mutations: one rule broken at a time on a valid model ----

class Model:
    """A .skops archive held in memory, to rewrite one member."""

    def __init__(self, path):
        with zipfile.ZipFile(path) as z:
            self.members = {n: z.read(n) for n in z.namelist()}
        self.schema = json.loads(self.members["schema.json"])

    def array(self, state):
        return np.load(io.BytesIO(self.members[state["file"]]))

    def put(self, state, array):
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        self.members[state["file"]] = buffer.getvalue()

    def write(self, path):
        self.members["schema.json"] = json.dumps(self.schema).encode()
        with zipfile.ZipFile(path, "w") as z:
            for name, data in self.members.items():
                z.writestr(name, data)


def tree_of(model):
    tree = model.schema["content"]["content"]["tree_"]
    return tree, tree["content"]["content"]


def deepest_internal(nodes):
    internal = np.nonzero(nodes["left_child"] != -1)[0]
    return int(internal[-1])


def tree_mutations():
    """(name, want code or None for 'no problem', edit(model))."""

    def edit_nodes(change):
        def edit(model):
            tree, state = tree_of(model)
            nodes = model.array(state["nodes"])
            model.put(state["nodes"], change(nodes))
        return edit

    root = lambda nodes: 0
    last = deepest_internal

    def schema_int(key, value):
        def edit(model):
            _, state = tree_of(model)
            state[key]["content"] = str(value(model))
            state[key]["__id__"] = 7_000_000 + len(key)  # fresh: skops must read it
        return edit

    def nodes_in_depth(model):
        return len(model.array(tree_of(model)[1]["nodes"]))

    def true_depth(model):
        """Edges on the longest path from the root, level by level."""
        nodes = model.array(tree_of(model)[1]["nodes"])
        depth, level = 0, [0]
        while True:
            level = [int(c) for i in level for c in (nodes["left_child"][i], nodes["right_child"][i])
                     if c != -1]
            if not level:
                return depth
            depth += 1

    def reorder(nodes):
        names = list(nodes.dtype.names)
        names[0], names[1] = names[1], names[0]
        return nodes[names].astype(np.dtype([(n, nodes.dtype[n]) for n in names]))

    def with_missing_go_to_left(nodes):  # scikit-learn >= 1.3 records, padded to 64 bytes
        names = list(nodes.dtype.names) + ["missing_go_to_left"]
        formats = [nodes.dtype[n] for n in nodes.dtype.names] + [np.uint8]
        dtype = np.dtype({"names": names, "formats": formats,
                          "offsets": [nodes.dtype.fields[n][1] for n in nodes.dtype.names] + [56],
                          "itemsize": 64})
        out = np.zeros(len(nodes), dtype)
        for n in nodes.dtype.names:
            out[n] = nodes[n]
        return out

    def int32(nodes):
        dtype = [(n, "<i4" if nodes.dtype[n].kind == "i" else nodes.dtype[n].str)
                 for n in nodes.dtype.names]
        return nodes.astype(dtype)

    def values_rows(model):
        _, state = tree_of(model)
        values = model.array(state["values"])
        model.put(state["values"], values[:-1])

    def n_features_in(model):
        est = model.schema["content"]["content"]
        est["n_features_in_"]["content"] = "9"
        est["n_features_in_"]["__id__"] = 7_100_000

    def alias(model):
        _, state = tree_of(model)
        # the estimator's max_depth param came first with this id: skops loads that
        state["max_depth"]["content"] = "9999"

    return [
        ("tree.valid", None, lambda model: None),
        ("tree.big_endian", None, edit_nodes(lambda n: n.astype(n.dtype.newbyteorder(">")))),
        ("tree.int32_records", None, edit_nodes(int32)),
        ("tree.missing_go_to_left", None, edit_nodes(with_missing_go_to_left)),
        ("tree.half_leaf", "tree.half_leaf", edit_nodes(setf("right_child", root, -1))),
        ("tree.child_out_of_range", "tree.child_out_of_range",
         edit_nodes(setf("left_child", root, lambda n, i: len(n)))),
        ("tree.child_negative", "tree.child_out_of_range",
         edit_nodes(setf("right_child", root, -7))),
        ("tree.cycle", "tree.cycle", edit_nodes(setf("left_child", last, 0))),
        ("tree.child_not_after_parent", "tree.child_not_after_parent",
         edit_nodes(setf("left_child", last, 0))),
        ("tree.shared_child", "tree.shared_child",
         edit_nodes(setf("right_child", root, lambda n, i: int(n["left_child"][i])))),
        ("tree.feature_too_large", "tree.feature_out_of_range",
         edit_nodes(setf("feature", root, 4))),
        ("tree.feature_negative", "tree.feature_out_of_range",
         edit_nodes(setf("feature", root, -3))),
        ("tree.nodes_dtype_reordered", "tree.nodes_dtype_mismatch", edit_nodes(reorder)),
        ("tree.nodes_dtype_float", "tree.nodes_dtype_mismatch",
         edit_nodes(lambda n: n.astype([(x, "<f8") for x in n.dtype.names]))),
        ("tree.nodes_2d", "tree.nodes_shape_mismatch", edit_nodes(lambda n: n.reshape(1, -1))),
        ("tree.node_count", "tree.node_count_mismatch",
         schema_int("node_count", lambda m: nodes_in_depth(m) - 1)),
        ("tree.max_depth", "tree.max_depth_too_small", schema_int("max_depth", lambda m: 2)),
        ("tree.max_depth_exact", None, schema_int("max_depth", true_depth)),
        ("tree.max_depth_one_short", "tree.max_depth_too_small",
         schema_int("max_depth", lambda m: true_depth(m) - 1)),
        ("tree.values_shape", "tree.values_shape_mismatch", values_rows),
        ("estimator.n_features", "estimator.n_features_mismatch", n_features_in),
        ("schema.id_alias", "schema.id_alias", alias),
    ]


def predictor_of(model, iteration=0):
    listed = model.schema["content"]["content"]["_predictors"]["content"][iteration]["content"][0]
    return listed["content"]["content"]


def hgb_mutations():
    def edit_nodes(change):
        def edit(model):
            state = predictor_of(model)
            nodes = model.array(state["nodes"])
            model.put(state["nodes"], change(nodes))
        return edit

    def first(nodes, predicate):
        return int(np.nonzero(predicate(nodes))[0][0])

    internal = lambda n: first(n, lambda x: x["is_leaf"] == 0)
    leaf = lambda n: first(n, lambda x: x["is_leaf"] == 1)
    categorical = lambda n: first(n, lambda x: (x["is_leaf"] == 0) & (x["is_categorical"] == 1))
    numeric = lambda n: first(n, lambda x: (x["is_leaf"] == 0) & (x["is_categorical"] == 0))

    def bitset_eq_rows(model):
        state = predictor_of(model)
        rows = len(model.array(state["raw_left_cat_bitsets"]))
        nodes = model.array(state["nodes"])
        nodes["bitset_idx"][categorical(nodes)] = rows
        model.put(state["nodes"], nodes)

    def swap(nodes):
        names = list(nodes.dtype.names)
        i, j = names.index("left"), names.index("right")
        names[i], names[j] = names[j], names[i]
        return nodes[names].astype(np.dtype([(n, nodes.dtype[n]) for n in names]))

    return [
        ("hgb.valid", None, lambda model: None),
        ("hgb.leaf_marked_internal", "hgb.leaf_flag_inconsistent",
         edit_nodes(setf("is_leaf", leaf, 0))),
        ("hgb.internal_marked_leaf", "hgb.leaf_flag_inconsistent",
         edit_nodes(setf("is_leaf", internal, 1))),
        ("hgb.child_out_of_range", "hgb.child_out_of_range",
         edit_nodes(setf("left", internal, lambda n, i: len(n)))),
        ("hgb.cycle", "hgb.cycle", edit_nodes(setf("right", internal, lambda n, i: i))),
        ("hgb.child_not_after_parent", "hgb.child_not_after_parent",
         edit_nodes(setf("right", internal, lambda n, i: i))),
        ("hgb.feature_out_of_range", "hgb.feature_out_of_range",
         edit_nodes(setf("feature_idx", internal, 4))),
        ("hgb.bitset_out_of_range", "hgb.bitset_out_of_range", bitset_eq_rows),
        ("hgb.categorical_mismatch", "hgb.categorical_mismatch",
         edit_nodes(setf("is_categorical", numeric, 1))),
        ("hgb.nodes_dtype_mismatch", "hgb.nodes_dtype_mismatch", edit_nodes(swap)),
    ]


def sparse_mutations():
    """Each CSR/CSC rule broken once on a copy of the fixture's matrices."""

    def rewrite(key, change, compressed=False):
        def edit(model):
            member = model.schema["content"][key]["file"]
            with np.load(io.BytesIO(model.members[member])) as npz:
                arrays = {name: npz[name] for name in npz.files}
            change(arrays)
            buffer = io.BytesIO()
            (np.savez_compressed if compressed else np.savez)(buffer, **arrays)
            model.members[member] = buffer.getvalue()
        return edit

    def setat(name, index, value):
        def change(arrays):
            arrays[name][index] = value(arrays) if callable(value) else value
        return change

    def decreasing(arrays):
        indptr = arrays["indptr"]
        indptr[1], indptr[2] = indptr[2], indptr[1]
        assert indptr[1] > indptr[2]

    def astype(dtype):
        def change(arrays):
            arrays["indices"] = arrays["indices"].astype(dtype)
            arrays["indptr"] = arrays["indptr"].astype(dtype)
        return change

    def tall(row):
        def change(arrays):
            arrays["shape"] = np.array([4, 3], arrays["shape"].dtype)
            arrays["indices"][0] = row
        return change

    def not_a_zip(model):
        model.members[model.schema["content"]["csc"]["file"]] = b"\x93NUMPY not a zip"

    return [
        ("sparse.valid", None, lambda model: None),
        ("sparse.int64", None, rewrite("csr", astype("<i8"))),
        ("sparse.big_endian", None, rewrite("csc", astype(">i4"))),
        ("sparse.compressed", None, rewrite("csr", lambda arrays: None, compressed=True)),
        ("sparse.indptr_start", ("sparse.indptr_start", "csr.npz"),
         rewrite("csr", setat("indptr", 0, 1))),
        ("sparse.indptr_decreasing", ("sparse.indptr_decreasing", "csr.npz"),
         rewrite("csr", decreasing)),
        ("sparse.indptr_end", ("sparse.indptr_end", "csc.npz"),
         rewrite("csc", setat("indptr", -1, lambda a: a["indptr"][-1] - 1))),
        ("sparse.indptr_length", ("sparse.indptr_length", "csr.npz"),
         rewrite("csr", lambda a: a.update(indptr=a["indptr"][:-1]))),
        ("sparse.index_too_large", ("sparse.index_out_of_range", "csr.npz"),
         rewrite("csr", setat("indices", 0, lambda a: a["shape"][1]))),
        ("sparse.index_negative", ("sparse.index_out_of_range", "csc.npz"),
         rewrite("csc", setat("indices", -1, -1))),
        # 4 x 3: indptr follows the 3 columns, indices the 4 rows
        ("sparse.csc_tall", None, rewrite("csc", tall(3))),
        ("sparse.csc_index_is_row", ("sparse.index_out_of_range", "csc.npz"),
         rewrite("csc", tall(4))),
        ("sparse.bad_npz", ("sparse.bad_npz", "csc.npz"), not_a_zip),
    ]


def check_mutation(args, base, name, want, edit):
    model = Model(base)
    edit(model)
    with tempfile.NamedTemporaryFile(suffix=".skops") as f:
        model.write(f.name)
        r, _, found = audit(args.skopsfs, f.name)
    codes = {parse(x)[1] for x in found}
    if r.returncode == 2:
        return [f"audit failed: {r.stderr!r}"]
    if want is None:
        return [f"flagged: {found}"] if found else []
    if r.returncode != 1:
        return [f"exit {r.returncode}"]
    if isinstance(want, tuple):  # (code, path)
        return [] if want[::-1] in {parse(x) for x in found} else [f"{want} not reported: {found}"]
    return [] if want in codes else [f"{want} not reported: {found}"]


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--skopsfs", required=True)
    parser.add_argument("--mount-bin")
    parser.add_argument("--fixtures", required=True, help="tests/fixtures")
    args = parser.parse_args()
    content = os.path.join(args.fixtures, "content")
    results = []
    for manifest in sorted(glob.glob(os.path.join(content, "*.json"))):
        with open(manifest) as f:
            m = json.load(f)
        archive = os.path.join(content, m["file"])
        results.append((f"audit {m['file']}", check_fixture(args, archive, m)))
        if args.mount_bin:
            results.append((f"mount {m['file']}", check_fixture_mount(args, archive, m)))
    results.append(("no alarms on tests/fixtures and old/",
                    check_no_alarms(args, [args.fixtures, os.path.join(args.fixtures, "old")])))
    for base, mutations in [("valid_dt_clf_b.skops", tree_mutations()),
                            ("valid_hgb_cat_b.skops", hgb_mutations()),
                            (os.path.join("..", "sparse_matrices.skops"), sparse_mutations())]:
        for name, want, edit in mutations:
            results.append((f"mutation {name}",
                            check_mutation(args, os.path.join(content, base), name, want, edit)))
    return report_problems(results)


if __name__ == "__main__":
    sys.exit(main())
