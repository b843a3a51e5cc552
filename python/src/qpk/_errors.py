"""The error vocabulary: one :class:`QPKError` per broken rule of spec/qpk-format.md §8."""
from __future__ import annotations

from typing import Optional

__all__ = ["QPKError", "RULES"]

#: The rule names of spec §8, in the spec's order. ``qpk validate`` reports the same names.
RULES = (
    "file_too_small", "bad_magic", "unsupported_version", "reserved_not_zero", "preamble_checksum",
    "header_misplaced", "truncated", "trailing_bytes", "header_checksum", "invalid_header", "duplicate_key",
    "duplicate_tensor", "unknown_dtype", "invalid_shape", "unknown_encoding", "invalid_quantization",
    "blob_set", "blob_misaligned", "blob_out_of_bounds", "blob_overlap", "blob_length",
    "invalid_outlier_record", "blob_checksum", "outlier_indices", "symmetric_zero_point",
    "nonzero_padding", "v2_feature_in_v1", "invalid_zero_points", "invalid_transform", "group_index",
    "codebook_not_finite", "invalid_scale_codes", "row_scale_not_finite",
)


class QPKError(ValueError):
    """A QPK file breaks a rule of spec/qpk-format.md §8.

    Attributes:
        rule: the spec's rule name (one of :data:`RULES`), e.g. ``"blob_checksum"``.
        path: the file.
        tensor: the tensor concerned, or ``None`` for file-level rules.
        detail: what exactly is wrong.

    ``str(error)`` is one line: ``PATH: tensor 'NAME': [rule] detail``, the same shape as
    ``qpk validate`` prints.
    """

    def __init__(self, rule: str, path: str, detail: str, tensor: Optional[str] = None) -> None:
        if rule not in RULES:
            raise AssertionError(f"unknown rule {rule!r}")
        self.rule = rule
        self.path = str(path)
        self.tensor = tensor
        self.detail = detail
        where = f"tensor '{tensor}': " if tensor is not None else ""
        super().__init__(f"{self.path}: {where}[{rule}] {detail}")
