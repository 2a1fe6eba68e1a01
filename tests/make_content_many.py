#!/usr/bin/env python3
"""Writes tests/fixtures/content-many/rf_many_broken.skops: valid_rf_clf_b
with problems on several objects, interleaved in walk order with problems
of the walk itself (schema.id_alias), so that a report merged out of order
shows. Usage: make_content_many.py VALID.skops OUT.skops"""
import io
import json
import sys
import zipfile

import numpy as np


def main(valid, out):
    with zipfile.ZipFile(valid) as z:
        members = {n: z.read(n) for n in z.namelist()}
    schema = json.loads(members["schema.json"])
    estimators = schema["content"]["content"]["estimators_"]["content"]

    def state(i):
        return estimators[i]["content"]["content"]

    def edit_nodes(i, change):
        tree = state(i)["tree_"]["content"]["content"]
        name = tree["nodes"]["file"]
        nodes = np.load(io.BytesIO(members[name]))
        change(nodes)
        buffer = io.BytesIO()
        np.save(buffer, nodes, allow_pickle=False)
        members[name] = buffer.getvalue()

    def internal(nodes):
        return np.nonzero(nodes["left_child"] != -1)[0]

    def tree1(nodes):  # three rules at three records
        k = internal(nodes)
        nodes["left_child"][k[1]] = 10**6
        nodes["feature"][k[2]] = -5
        nodes["right_child"][k[3]] = -1

    def tree4(nodes):  # a cycle and a shared child
        k = internal(nodes)
        nodes["right_child"][k[-1]] = k[0]
        nodes["left_child"][k[2]] = nodes["left_child"][k[1]]

    def tree7(nodes):
        nodes["feature"][internal(nodes)[0]] = 10**4

    def tree9(nodes):  # the last job: a pool that drops one shows
        nodes["feature"][internal(nodes)[-1]] = -2

    for i, change in ((1, tree1), (4, tree4), (7, tree7), (9, tree9)):
        edit_nodes(i, change)
    # The same __id__ as estimator 0's literal, another literal: skops
    # memoizes by __id__, so this content is ignored (schema.id_alias).
    first = state(0)["min_samples_split"]
    for i in (2, 5, 7, 8):
        state(i)["min_samples_split"] = dict(first, content="3")
    members["schema.json"] = json.dumps(schema).encode()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)


if __name__ == "__main__":
    main(*sys.argv[1:])
