#!/usr/bin/env python3
"""Asserts two HDF5 files hold the same checkpoint, as h5py sees them.

usage: check_hdf5_roundtrip.py A.h5 B.h5

Checks, for every object of A and B:
  * the same groups and datasets (same paths);
  * datasets: same shape, same HDF5 type (class, size, byte order, string/opaque/enum details),
    and bit-identical data (raw bytes, so NaN payloads and -0.0 count);
  * attributes on every group and dataset: same names, same values, same dataspace, and the same
    type including the string encoding kind (fixed vs variable length, ASCII vs UTF-8, padding);
  * the Keras weight order: layer_names / weight_names (also split as layer_names0, …) are equal,
    which the attribute check already implies; it is reported separately for clarity.
Exits 0 when identical, 1 with one line per difference otherwise.
"""
import sys

import h5py
import numpy as np


def type_signature(tid):
    cls = tid.get_class()
    sig = [cls, tid.get_size()]
    if cls == h5py.h5t.STRING:
        sig += [tid.is_variable_str(), tid.get_cset(), tid.get_strpad()]
    elif cls in (h5py.h5t.INTEGER, h5py.h5t.FLOAT):
        sig += [tid.get_order()]
        if cls == h5py.h5t.INTEGER:
            sig += [tid.get_sign()]
        else:
            sig += [tid.get_fields(), tid.get_ebias()]
    elif cls == h5py.h5t.OPAQUE:
        sig += [tid.get_tag()]
    elif cls == h5py.h5t.ENUM:
        sig += [[(tid.get_member_name(i), tid.get_member_value(i)) for i in range(tid.get_nmembers())]]
    elif cls == h5py.h5t.COMPOUND:
        sig += [[(tid.get_member_name(i), type_signature(tid.get_member_type(i))) for i in range(tid.get_nmembers())]]
    return sig


def attr_record(obj, name):
    aid = h5py.h5a.open(obj.id, name.encode())
    space = aid.get_space()
    value = obj.attrs[name]
    if isinstance(value, h5py.Empty):
        value = ("empty", str(value.dtype))
    elif isinstance(value, np.ndarray):
        value = (value.dtype.str, value.shape, value.tobytes() if value.dtype.kind != "O" else value.tolist())
    elif isinstance(value, (np.generic,)):
        value = (value.dtype.str, value.tobytes())
    return (type_signature(aid.get_type()), space.get_simple_extent_type(), space.shape, value)


def collect(path):
    objects = {}
    with h5py.File(path, "r") as f:
        def record(name, obj):
            attrs = {a: attr_record(obj, a) for a in obj.attrs.keys()}
            if isinstance(obj, h5py.Dataset):
                raw = obj.id
                data = np.empty(obj.shape, dtype=obj.dtype) if obj.shape is not None else None
                if data is not None and data.size:
                    obj.read_direct(data)
                objects["/" + name] = ("dataset", obj.shape, type_signature(raw.get_type()),
                                       None if data is None else data.tobytes(), attrs)
            else:
                objects["/" + name if name else "/"] = ("group", None, None, None, attrs)
        record("", f)
        f.visititems(record)
    return objects


def keras_order(objects):
    order = {}
    for path, (_, _, _, _, attrs) in objects.items():
        for key, rec in attrs.items():
            base = key.rstrip("0123456789")
            if base in ("layer_names", "weight_names"):
                order[(path, key)] = rec[3]
    return order


def main():
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    a, b = collect(sys.argv[1]), collect(sys.argv[2])
    problems = []
    for path in sorted(set(a) | set(b)):
        if path not in a or path not in b:
            problems.append(f"{path}: only in {'A' if path in a else 'B'}")
            continue
        ka, shape_a, type_a, data_a, attrs_a = a[path]
        kb, shape_b, type_b, data_b, attrs_b = b[path]
        if ka != kb:
            problems.append(f"{path}: {ka} in A, {kb} in B")
            continue
        if shape_a != shape_b:
            problems.append(f"{path}: shape {shape_a} vs {shape_b}")
        if type_a != type_b:
            problems.append(f"{path}: type {type_a} vs {type_b}")
        if data_a != data_b:
            problems.append(f"{path}: data differs")
        for name in sorted(set(attrs_a) | set(attrs_b)):
            if attrs_a.get(name) != attrs_b.get(name):
                problems.append(f"{path}@{name}: attribute differs: {attrs_a.get(name)!r:.120} vs {attrs_b.get(name)!r:.120}")
    if keras_order(a) != keras_order(b):
        problems.append("Keras layer/weight order differs")
    for line in problems:
        print(line)
    if not problems:
        print(f"identical: {len(a)} objects")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
