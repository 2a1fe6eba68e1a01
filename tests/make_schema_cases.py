#!/usr/bin/env python3
"""Writes tests/fixtures/schema-cases/: schema.json texts whose name says
how the one-pass reader must take them (tests/schema_diff.c): NAME.one-pass.json
read in one pass into the jansson reader's graph, NAME.declined.json declined
(and so read by the jansson reader). They pin where the one-pass reader reads
a reduced state (TreeNode, LossNode) where it stands: its loader guessed from
its class before skops writes __loader__, and __reduce__ read after content.
Run it again to regenerate."""
import json
import os

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "schema-cases")


def js(value, ident):
    return {"__class__": "int", "__module__": "builtins", "__loader__": "JsonNode",
            "content": json.dumps(value), "is_json": True, "__id__": ident}


def tup(items, ident):
    return {"__class__": "tuple", "__module__": "builtins", "__loader__": "TupleNode",
            "content": items, "__id__": ident}


def bytes_node(member, ident):
    """a member of tests/fixtures/bytes_values.skops, which schema_diff reads cases against"""
    return {"__class__": "bytes", "__module__": "builtins", "__loader__": "BytesNode",
            "file": member, "__id__": ident}


def dct(members, ident):
    str_type = {"__class__": "str", "__module__": "builtins", "__loader__": "TypeNode", "__id__": 77}
    key_types = {"__class__": "list", "__module__": "builtins", "__loader__": "ListNode",
                 "content": [str_type] * len(members), "__id__": ident + 1}
    return {"__class__": "dict", "__module__": "builtins", "__loader__": "DictNode",
            "content": members, "key_types": key_types, "__id__": ident}


# the orders of a reduced state's keys: skops's own, and others a writer may choose
ORDERS = {
    "skops": ["__class__", "__module__", "__reduce__", "content", "__loader__", "__id__"],
    "loader-first": ["__class__", "__module__", "__loader__", "content", "__reduce__", "__id__"],
    "reduce-first": ["__class__", "__module__", "__loader__", "__reduce__", "content", "__id__"],
}


def reduced(base, loader="TreeNode", order="skops", cls="Tree", module="sklearn.tree._tree",
            reduce=None, ident=None):
    fields = {
        "__class__": cls,
        "__module__": module,
        "__reduce__": {"args": tup([js(16, base + 5), js(1, base + 6)], base + 7)}
        if reduce is None else reduce,
        "content": dct({"max_depth": js(3, base + 1), "node_count": js(7, base + 2)}, base + 3),
        "__loader__": loader,
        "__id__": base if ident is None else ident,
    }
    return {k: fields[k] for k in ORDERS[order] if fields[k] is not False}


def root(members):
    return {"__class__": "Forest", "__module__": "sklearn.ensemble", "__loader__": "ObjectNode",
            "content": dct(members, 900), "__id__": 999, "protocol": 2,
            "_skops_version": "0.10.0"}


LOSS = {"cls": "HalfBinomialLoss", "module": "sklearn._loss.loss"}
CASES = {
    # guessed right: all but the first tree (and loss) read where they stand
    "tree-guess.one-pass": {"a": reduced(100), "b": reduced(200), "c": reduced(300)},
    "loss-guess.one-pass": {"a": reduced(100, "LossNode", **LOSS),
                            "b": reduced(200, "LossNode", **LOSS),
                            "t": reduced(300), "u": reduced(400)},
    # the same tree met again by its id, after a guess
    "tree-guess-alias.one-pass": {"a": reduced(100), "b": reduced(100)},
    # guessed wrong: a class last written as a TreeNode is something else here
    "tree-guess-object.declined": {"a": reduced(100), "b": reduced(200, "ObjectNode")},
    "tree-guess-loss.declined": {"a": reduced(100), "b": reduced(200, "LossNode")},
    "tree-guess-no-loader.declined": {"a": reduced(100), "b": reduced(200, False)},
    "tree-guess-unknown-loader.declined": {"a": reduced(100), "b": reduced(200, "FooNode")},
    # __reduce__ after content is read where it stands; before it, later
    "reduce-in-place.one-pass": {"a": reduced(100, order="loader-first"),
                                 "b": reduced(200, order="loader-first")},
    "reduce-before-content.one-pass": {"a": reduced(100, order="reduce-first"),
                                       "b": reduced(200, order="reduce-first")},
    # skops's order: args read ahead of the content; an id both hold is
    # met in the content, where skops meets it first
    "reduce-ahead-shared.one-pass": {
        "a": reduced(100), "b": reduced(200, reduce={"args": tup([js(7, 202), js(1, 206)], 207)})},
    "reduce-ahead-shared-differs.declined": {
        "a": reduced(100), "b": reduced(200, reduce={"args": tup([js(8, 202), js(1, 206)], 207)})},
    "reduce-ahead-shared-tuple.declined": {
        "a": reduced(100), "b": reduced(200, reduce={"args": dct({"x": js(7, 202)}, 203)})},
    # an alias deeper than its original: its indent differs, its tokens not
    "alias-indent.one-pass": {"x": js(1, 500), "t": tup([js(1, 500), tup([js(1, 500)], 502)], 501)},
    "alias-indent-differs.one-pass": {"x": js(1, 500), "t": tup([js(2, 500)], 501)},
    "alias-indent-file-differs.one-pass": {
        "x": bytes_node("80aeb214-f7cd-435f-9afa-013cd5020dc2.bin", 600),
        "t": tup([bytes_node("5676a978-9394-4c92-88e1-d408faee9394.bin", 600)], 601)},
    "reduce-in-place-no-args.declined": {"a": reduced(100, order="loader-first"),
                                         "b": reduced(200, order="loader-first",
                                                      reduce={"kwargs": js(1, 250)})},
    "reduce-in-place-not-object.declined": {"b": reduced(200, order="loader-first",
                                                         reduce=[1, 2])},
    "reduce-in-place-missing.declined": {"b": reduced(200, order="loader-first", reduce=False)},
}


def main():
    os.makedirs(OUT, exist_ok=True)
    texts = {name: json.dumps(root(members), indent=2) for name, members in CASES.items()}
    # a repeated "args": jansson keeps the last, the one-pass reader declines
    twice = root({"b": reduced(200, order="loader-first",
                               reduce={"args": tup([js(16, 205)], 207),
                                       "ARGS": tup([js(1, 206)], 208)})})
    texts["reduce-in-place-args-twice.declined"] = json.dumps(twice, indent=2).replace(
        '"ARGS"', '"args"')
    # a loader guessed, then the text cut short inside the guessed state
    whole = texts["tree-guess.one-pass"]
    texts["tree-guess-cut.declined"] = whole[: whole.rindex('"content"') + 40]
    for name, text in texts.items():
        with open(os.path.join(OUT, name + ".json"), "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
