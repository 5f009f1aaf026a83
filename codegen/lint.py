"""Checks on generated OpenCL C that PoCL would let through but a Mali driver (OpenCL 1.2, embedded
profile, often without fp64) would not: doubles, float literals without `f`, OpenCL 2.x features."""

import re

from sparsecl import SparseclError

_RULES = [
    (re.compile(r"\bdouble\d*\b"), "uses double (Mali GPUs usually lack fp64)"),
    (re.compile(r"cl_khr_fp64"), "enables fp64"),
    # a decimal literal with a point or an exponent and no f suffix is a double
    (re.compile(r"(?<![\w.])(\d+\.\d*|\.\d+|\d+[eE][+-]?\d+|\d+\.\d*[eE][+-]?\d+)(?![\w.])"),
     "has a float literal without the f suffix (a double)"),
    (re.compile(r"\b(__generic|generic|pipe|enqueue_kernel|work_group_\w+|sub_group_\w+|to_global|to_local|"
                r"to_private|atomic_\w+_explicit|memory_scope_\w+|ndrange_\dD)\b"), "uses an OpenCL 2.x feature"),
    (re.compile(r"\bprintf\b"), "calls printf (not in the embedded profile's guarantees)"),
]


def _code(line: str) -> str:
    """The line without comments and string literals (a rough cut: our kernels have no strings)."""
    return re.sub(r"/\*.*?\*/|//.*$", "", line)


def lint(source: str) -> str:
    """source unchanged, or a SparseclError naming the first offending line."""
    in_comment = False
    for number, line in enumerate(source.splitlines(), 1):
        code = line
        if in_comment:
            if "*/" not in code:
                continue
            code, in_comment = code.split("*/", 1)[1], False
        code = _code(code)
        if "/*" in code:
            code, in_comment = code.split("/*", 1)[0], True
        for pattern, problem in _RULES:
            if pattern.search(code):
                raise SparseclError(f"generated kernel line {number} {problem}: {line.strip()[:80]}")
    return source
