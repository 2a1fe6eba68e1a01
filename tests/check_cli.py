"""Checks the skopsfs command line beyond what check_fixtures compares with
skops: options each command takes (and refuses), --help/--version, `tree`
inside refused nodes, --depth and PATH, numpy scalar values, --json for
tree and ls, `show` on every fixture, `diff` on real and hand-made pairs
of models, and progress that appears on a terminal only.

usage: check_cli.py --skopsfs BIN FIXTURES_DIR"""
import argparse
import io
import json
import os
import pty
import subprocess
import sys
import tempfile
import zipfile

import numpy

from checklib import run_checks

SKOPSFS = None
FIXTURES = None


def run(*args, env=None):
    r = subprocess.run([SKOPSFS, *args], capture_output=True, env=env)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def fixture(name):
    return os.path.join(FIXTURES, name)


def expect(condition, message):
    if not condition:
        raise AssertionError(message)


def expect_lines(out, lines):
    have = out.splitlines()
    for line in lines:
        expect(line in have, f"missing line {line!r} in:\n{out}")


# -- options -----------------------------------------------------------------

def check_unknown_options():
    cases = [
        (["cat", "--depth", "1", "m", "x"], "skopsfs cat: unknown option --depth\n"),
        (["ls", "--bogus", "m"], "skopsfs ls: unknown option --bogus\n"),
        (["ls", "-x", "m"], "skopsfs ls: unknown option -x\n"),
        (["audit", "--zero", "m"], "skopsfs audit: unknown option --zero\n"),
        (["show", "--json", "m"], "skopsfs show: unknown option --json\n"),
        (["cat", "-l", "m", "x"], "skopsfs cat: unknown option -l\n"),
        (["tree", "--depth"], "skopsfs tree: missing value for --depth\n"),
        (["tree", "--depth", "0", "m"], "skopsfs: --depth needs a positive number, not '0'\n"),
    ]
    for args, message in cases:
        rc, out, err = run(*args)
        expect((rc, out, err) == (2, "", message), f"{args}: {rc} {out!r} {err!r}")
    return f"{len(cases)} refused with one line"


def check_help_and_version():
    rc, out, _ = run("--version")
    expect(rc == 0 and out.startswith("skopsfs 0.") and out.count("\n") == 1, out)
    rc, out, _ = run("--help")
    for command in ["audit", "tree", "ls", "cat", "show", "diff"]:
        expect(f"  {command} " in out, f"--help does not list {command}")
        rc1, by_help, _ = run("help", command)
        rc2, by_option, _ = run(command, "--help")
        expect(rc1 == rc2 == 0 and by_help == by_option, f"help {command} differs")
        expect(by_help.startswith(f"usage: skopsfs {command} "), by_help)
    rc, _, err = run("help", "nope")
    expect(rc == 2 and err == "skopsfs: unknown command 'nope'\n", err)
    rc, _, err = run("ls")
    expect(rc == 2 and err.startswith("skopsfs ls: missing operand\n"), err)
    return None


# -- tree --------------------------------------------------------------------

def check_tree_refused_subtrees():
    rc, out, _ = run("tree", fixture("defaultdicts_untrusted.skops"))
    expect(rc == 0, rc)
    expect_lines(out, [
        "  d2/  skopsfs_corpus_objs.MyDefaultDict  (DefaultDictNode)"
        "  [needs skopsfs_corpus_objs.MyDefaultDict]",
        "    s/  builtins.set  (SetNode)",
        "      0  (JsonNode) = 1",
        "    .default_factory  builtins.set  (TypeNode) = builtins.set",
        "    .default_factory  builtins.dict  (TypeNode) = builtins.dict  [needs builtins.dict]",
    ])
    rc, out, _ = run("tree", fixture("defaultdicts_untrusted.skops"), "d2")
    expect(rc == 0 and out.splitlines()[1].startswith("d2/  skopsfs_corpus_objs.MyDefaultDict"),
           out)
    expect(out.splitlines()[2] == "  s/  builtins.set  (SetNode)", out)
    rc, _, err = run("tree", fixture("defaultdicts_untrusted.skops"), "nope")
    expect(rc == 1 and err == "skopsfs: tree: cannot access 'nope': No such file or directory\n",
           err)
    return None


def check_tree_scalars():
    rc, out, _ = run("tree", fixture("numpy_scalars.skops"))
    expect_lines(out, [
        "  f64.npy  numpy.float64  dtype <f8, shape () = 1.5",
        "  f32.npy  numpy.float32  dtype <f4, shape () = -2.25",
        "  f16.npy  numpy.float16  dtype <f2, shape () = 0.5",
        "  i8.npy  numpy.int8  dtype |i1, shape () = -7",
        "  u64.npy  numpy.uint64  dtype <u8, shape () = 9223372036854775808",
        "  b.npy  numpy.bool_  dtype |b1, shape () = True",
        "  c128.npy  numpy.complex128  dtype <c16, shape () = (1+2j)",
        "  str.npy  numpy.str_  dtype <U4, shape () = 'text'",
    ])
    return None


def check_tree_depth():
    model = fixture("est_BaggingClassifier.skops")
    _, full, _ = run("tree", model)
    rc, out, _ = run("tree", "--depth", "1", model)
    lines = out.splitlines()[1:]
    expect(rc == 0 and lines and all(not l.startswith("    ") for l in lines), out)
    expect(len(full.splitlines()) > len(out.splitlines()), "--depth 1 cut nothing")
    rc, out, _ = run("tree", "--depth", "2", model, "estimators_")
    expect(rc == 0 and out.splitlines()[2] == "  0/  sklearn.tree._classes.DecisionTreeClassifier",
           out)
    expect(all(not l.startswith("      ") for l in out.splitlines()), out)
    return None


# -- json --------------------------------------------------------------------

def walk(node):
    yield node
    for child in node.get("children", []):
        yield from walk(child)


def check_tree_json():
    model = fixture("defaultdicts_untrusted.skops")
    rc, out, _ = run("tree", "--json", model)
    doc = json.loads(out)
    expect(rc == 0 and doc["root_type"] == "builtins.dict", doc.keys())
    expect(doc["untrusted"] == ["builtins.dict", "skopsfs_corpus_objs.MyDefaultDict",
                                "skopsfs_corpus_objs.custom_func"], doc["untrusted"])
    nodes = {n["path"]: n for n in walk(doc["tree"])}
    _, text, _ = run("tree", model)
    shown = text.split("\n\n")[0].splitlines()[1:]  # up to the untrusted list
    expect(len(nodes) - 1 == len(shown), f"{len(nodes) - 1} JSON entries, {len(shown)} lines")
    d2 = nodes["d2"]
    expect(d2["refused"] is True and d2["needs"] == ["skopsfs_corpus_objs.MyDefaultDict"]
           and d2["loader"] == "DefaultDictNode" and d2["kind"] == "dir", d2)
    expect(nodes["d2/s/0"]["json"] == 1 and nodes["d2/s/0"]["value"] == "1", nodes["d2/s/0"])
    rc, out, _ = run("tree", "--json", fixture("numpy_scalars.skops"))
    nodes = {n["path"]: n for n in walk(json.loads(out)["tree"])}
    f64 = nodes["f64.npy"]
    expect(f64["dtype"] == "<f8" and f64["shape"] == [] and f64["value"] == "1.5"
           and f64["type"] == "numpy.float64", f64)
    rc, out, _ = run("tree", "--json", "--depth", "1", fixture("est_BaggingClassifier.skops"))
    nodes = list(walk(json.loads(out)["tree"]))
    expect(all(n["path"].count("/") == 0 for n in nodes), "--depth 1 in JSON")
    expect(any(n.get("truncated") for n in nodes), "no truncated mark")
    return None


def check_ls_json():
    model = fixture("est_BaggingClassifier.skops")
    for args in [[], ["-a"], ["estimators_/0"]]:
        _, names, _ = run("ls", *[a for a in args if a.startswith("-")], model,
                          *[a for a in args if not a.startswith("-")])
        rc, out, _ = run("ls", "--json", *[a for a in args if a.startswith("-")], model,
                         *[a for a in args if not a.startswith("-")])
        entries = json.loads(out)
        expect(rc == 0 and [e["name"] for e in entries] == names.splitlines(), args)
    rc, out, _ = run("ls", "--json", "-d", model, "classes_.npy")
    (entry,) = json.loads(out)
    expect(entry["dtype"] == "<i8" and entry["shape"] == [3] and entry["kind"] == "file"
           and entry["loader"] == "NdArrayNode" and entry["refused"] is False, entry)
    rc, out, _ = run("ls", "--json", "-R", model)
    tree = {"children": json.loads(out)}
    _, text, _ = run("ls", "-R", model)
    listed = sum(1 for l in text.splitlines() if l and not l.endswith(":"))
    expect(len(list(walk(tree))) - 1 == listed, "ls -R --json counts differ")
    rc, out, err = run("ls", "--json", fixture("defaultdicts_untrusted.skops"), "d2")
    expect(rc == 1 and out == "" and "Permission denied" in err, (rc, out, err))
    return None


# -- show --------------------------------------------------------------------

def all_fixtures():
    for directory in [FIXTURES, os.path.join(FIXTURES, "old")]:
        for name in sorted(os.listdir(directory)):
            if name.endswith(".skops"):
                yield os.path.join(directory, name)


def check_show_every_fixture():
    shown = unreadable = 0
    for path in all_fixtures():
        audit_rc, _, _ = run("audit", path)
        rc, out, err = run("show", path)
        if audit_rc == 2:  # files skops itself cannot read: the same one line
            expect(rc == 2 and out == "" and err.count("\n") == 1, f"{path}: {rc} {err}")
            unreadable += 1
            continue
        with zipfile.ZipFile(path) as z:
            root = json.loads(z.read("schema.json"))
        root_type = f"{root['__module__']}.{root['__class__']}"
        expect(rc == 0 and out.splitlines()[0] == f"{path}: {root_type}", f"{path}: {rc} {err}")
        expect(err == "", f"{path}: {err}")
        shown += 1
    return f"{shown} shown, {unreadable} unreadable as with audit"


def check_show_estimator():
    rc, out, _ = run("show", fixture("old/v0.14-pipeline.skops"))
    expect(rc == 0, rc)
    expect_lines(out, [
        "sklearn.pipeline.Pipeline",
        "  parameters:",
        "    steps = list of 2",
        "    memory = null",
        "  steps/0/1: sklearn.preprocessing._data.StandardScaler",
        "    parameters:",
        "      with_mean = true",
        "    fitted:",
        "      n_samples_seen_.npy = int64(150)",
        "      coef_.npy = array <f8 (3,4)",
        "    (1 private attribute)",
    ])
    lines = out.splitlines()
    expect(lines.index("      n_features_in_ = 4") > lines.index("    fitted:")
           > lines.index("      with_mean = true"), "fitted attributes among parameters")
    expect(out.splitlines()[1].startswith("size: 23565 bytes archive, 8 arrays of 1276 bytes, "
                                          "36 nodes"), out.splitlines()[1])
    rc, out, _ = run("show", fixture("est_BaggingClassifier.skops"))
    expect_lines(out, ["    estimators_ = list of 5",
                       "  ... and 2 more objects in estimators_/"])
    return None


# -- diff --------------------------------------------------------------------

def rewrite(source, target, schema=None, members=None):
    """Copies SOURCE to TARGET with schema.json passed through SCHEMA (a
    function of the parsed schema) and members replaced from MEMBERS."""
    members = members or {}
    with zipfile.ZipFile(source) as z, zipfile.ZipFile(target, "w") as out:
        for info in z.infolist():
            data = z.read(info)
            if info.filename == "schema.json" and schema is not None:
                tree = json.loads(data)
                schema(tree)
                data = json.dumps(tree).encode()
            data = members.get(info.filename, data)
            out.writestr(info.filename, data, compress_type=info.compress_type)


def npy_bytes(array):
    buffer = io.BytesIO()
    numpy.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def member_array(path, name):
    with zipfile.ZipFile(path) as z:
        return numpy.load(io.BytesIO(z.read(name)), allow_pickle=False)


def diff_case(tmp, source, expected_lines, schema=None, members=None, expected_rc=1):
    target = os.path.join(tmp, "variant.skops")
    rewrite(source, target, schema, members)
    rc, out, err = run("diff", source, target)
    expect((rc, err) == (expected_rc, ""), f"rc {rc}, {err}")
    expect(out.splitlines() == expected_lines, f"expected {expected_lines}, got:\n{out}")
    rc, out, _ = run("diff", "--json", source, target)
    changes = json.loads(out)
    expect(rc == expected_rc and len(changes) == len(expected_lines), out)
    return changes


def check_diff_self_and_versions():
    for path in all_fixtures():
        if run("audit", path)[0] == 2:
            continue
        rc, out, err = run("diff", path, path)
        expect((rc, out, err) == (0, "", ""), f"{path}: {rc} {out} {err}")
    old = os.path.join(FIXTURES, "old")
    rc, out, _ = run("diff", os.path.join(old, "v0.11.0-pipeline.skops"),
                     os.path.join(old, "v0.14-pipeline.skops"))
    expect((rc, out) == (1, "~ .skops/skops_version: 0.11.0 -> 0.14.0\n"), out)
    rc, out, _ = run("diff", os.path.join(old, "v0.3.0-logreg.skops"),
                     os.path.join(old, "v0.12.0-logreg.skops"))
    expect((rc, out) == (1, "~ .skops/protocol: 0 -> 2\n~ .skops/skops_version: 0.3.0 -> 0.12.0\n"),
           out)
    rc, out, err = run("diff", fixture("nope.skops"), fixture("numpy_scalars.skops"))
    expect(rc == 2 and out == "" and err.count("\n") == 1, err)
    return None


LOGREG = "old/v0.12.0-logreg.skops"


def logreg_member(key):
    with zipfile.ZipFile(fixture(LOGREG)) as z:
        return json.loads(z.read("schema.json"))["content"]["content"][key]["file"]


def check_diff_hyperparameter():
    def set_c(tree):
        tree["content"]["content"]["C"]["content"] = "2.5"

    with tempfile.TemporaryDirectory() as tmp:
        (change,) = diff_case(tmp, fixture(LOGREG), ["~ C: 1.0 -> 2.5"], schema=set_c)
    expect(change == {"path": "C", "change": "value", "old": "1.0", "new": "2.5"}, change)
    return None


def check_diff_array_values():
    name = logreg_member("coef_")
    coef = member_array(fixture(LOGREG), name)
    changed = coef.copy()
    changed[0, 1] += 0.5
    changed[2, 3] -= 0.25
    with tempfile.TemporaryDirectory() as tmp:
        (change,) = diff_case(tmp, fixture(LOGREG), [
            "~ coef_.npy: 2 of 12 elements differ, largest difference 0.5"],
            members={name: npy_bytes(changed)})
        expect(change["differing"] == 2 and change["elements"] == 12
               and change["largest_difference"] == 0.5, change)
        # The same numbers big-endian: only the dtype changed.
        diff_case(tmp, fixture(LOGREG), ["~ coef_.npy: dtype <f8 -> >f8"],
                  members={name: npy_bytes(coef.astype(">f8"))})
        diff_case(tmp, fixture(LOGREG), ["~ coef_.npy: dtype <f8 -> >f8",
                                         "~ coef_.npy: 2 of 12 elements differ, "
                                         "largest difference 0.5"],
                  members={name: npy_bytes(changed.astype(">f8"))})
    return None


def check_diff_array_shape():
    name = logreg_member("intercept_")
    with tempfile.TemporaryDirectory() as tmp:
        diff_case(tmp, fixture(LOGREG), ["~ intercept_.npy: shape (3,) -> (4,)"],
                  members={name: npy_bytes(numpy.zeros(4))})
    return None


def check_diff_scalar_dtypes():
    source = fixture("numpy_scalars.skops")
    with zipfile.ZipFile(source) as z:
        files = {k: v["file"] for k, v in json.loads(z.read("schema.json"))["content"].items()
                 if "file" in v}
    members = {
        files["f16"]: npy_bytes(numpy.float16(2.0)),
        files["i8"]: npy_bytes(numpy.int8(5)),
        files["u64"]: npy_bytes(numpy.uint64(1)),
        files["b"]: npy_bytes(numpy.bool_(False)),
        files["c128"]: npy_bytes(numpy.complex128(4 + 6j)),
        files["str"]: npy_bytes(numpy.str_("txet")),
    }
    with tempfile.TemporaryDirectory() as tmp:
        diff_case(tmp, source, [
            "~ f16.npy: 1 of 1 elements differ, largest difference 1.5",
            "~ i8.npy: 1 of 1 elements differ, largest difference 12",
            "~ u64.npy: 1 of 1 elements differ, largest difference 9.223372036854776e+18",
            "~ b.npy: 1 of 1 elements differ, largest difference 1",
            "~ c128.npy: 1 of 1 elements differ, largest difference 5",
            "~ str.npy: bytes differ",
        ], members=members)
    return None


PIPELINE = "old/v0.14-pipeline.skops"


def check_diff_untrusted_type():
    def make_untrusted(tree):
        scaler = tree["content"]["content"]["steps"]["content"][0]["content"][1]
        scaler["__module__"] = "evil_module"

    with tempfile.TemporaryDirectory() as tmp:
        changes = diff_case(tmp, fixture(PIPELINE), [
            "~ steps/0/1: type sklearn.preprocessing._data.StandardScaler -> "
            "evil_module.StandardScaler",
            "~ steps/0/1: trust trusted -> needs evil_module.StandardScaler",
            "+ untrusted evil_module.StandardScaler",
        ], schema=make_untrusted)
    expect(changes[2] == {"change": "untrusted_added", "type": "evil_module.StandardScaler"},
           changes[2])
    return None


# -- progress ----------------------------------------------------------------

def run_on_pty(args, env):
    """Runs ARGS with stderr on a terminal; returns (rc, stdout, terminal text)."""
    master, slave = pty.openpty()
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=slave, env=env)
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    out = p.stdout.read()
    p.wait()
    os.close(master)
    return p.returncode, out.decode(), seen.decode(errors="replace")


def check_progress_on_terminal_only():
    env = dict(os.environ, SKOPSFS_PROGRESS_MS="0")
    a, b = fixture("est_BaggingClassifier.skops"), fixture("est_BaggingRegressor.skops")
    rc, out, terminal = run_on_pty([SKOPSFS, "diff", a, b], env)
    expect(rc == 1 and "diff: comparing: " in terminal, repr(terminal))
    expect(terminal.endswith("\r\x1b[K"), f"not erased at the end: {terminal[-40:]!r}")
    expect("diff: comparing" not in out, "progress on stdout")
    rc, out2, err = run("diff", a, b, env=env)
    expect(rc == 1 and err == "" and out2 == out, f"stderr to a pipe: {err!r}")
    with tempfile.TemporaryFile() as f:
        r = subprocess.run([SKOPSFS, "diff", a, b], stdout=subprocess.PIPE, stderr=f, env=env)
        f.seek(0)
        expect(r.returncode == 1 and f.read() == b"", "progress in a file")
    return None


def check_verify_progress_on_terminal_only():
    env = dict(os.environ, SKOPSFS_PROGRESS_MS="0")
    model = fixture("est_BaggingClassifier.skops")
    rc, out, terminal = run_on_pty([SKOPSFS, "verify", model], env)
    expect(rc == 0 and "verify: checking: " in terminal, repr(terminal))
    expect(terminal.endswith("\r\x1b[K"), f"not erased at the end: {terminal[-40:]!r}")
    rc, out, err = run("verify", model, env=env)
    expect(rc == 0 and out == "" and err == "", f"verify to a pipe: {out!r} {err!r}")
    return None


def main():
    global SKOPSFS, FIXTURES
    parser = argparse.ArgumentParser()
    parser.add_argument("--skopsfs", required=True)
    parser.add_argument("fixtures")
    args = parser.parse_args()
    SKOPSFS, FIXTURES = os.path.abspath(args.skopsfs), args.fixtures
    return run_checks([(f.__name__[len("check_"):], f) for name, f in globals().items()
                       if name.startswith("check_") and callable(f)])


if __name__ == "__main__":
    sys.exit(main())
