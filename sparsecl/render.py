"""The one Jinja2 environment that renders every kernel and every generated file.

The trainer and the code generator both render kernels through here, so the math a bundle runs is the
math that was trained.
"""

import re
from functools import lru_cache
from importlib import resources

import jinja2
import numpy as np


def c_float(value) -> str:
    """A C float literal that round-trips a float32 bit-exactly.

    >>> c_float(1.0), c_float(0.1), c_float(-2.5e-07)
    ('1.0f', '0.100000001f', '-2.49999999e-07f')
    """
    v = np.float32(value)
    if not np.isfinite(v):
        raise ValueError(f"non-finite float {value!r} cannot become a C literal")
    text = f"{float(v):.9g}"
    if not any(ch in text for ch in ".en"):
        text += ".0"
    return text + "f"


def c_ident(name: str, prefix: str = "n") -> str:
    """A safe C identifier made from any string: [A-Za-z0-9_] only, never starting with a digit.

    >>> c_ident('fc1'), c_ident('my "net"\\n*/'), c_ident('3x'), c_ident('')
    ('fc1', 'my__net____', 'n_3x', 'n_')
    """
    ident = re.sub(r"[^A-Za-z0-9_]", "_", name)[:48]
    if not ident or not (ident[0].isalpha() or ident[0] == "_"):
        ident = f"{prefix}_{ident}"
    return ident


def c_string(text: str) -> str:
    """A C string literal holding only printable ASCII; anything else is escaped or replaced.

    >>> c_string('a"b\\\\c\\n*/é')
    '"a\\\\"b\\\\\\\\c?*/?"'
    """
    out = []
    for ch in text[:200]:
        if ch in '"\\':
            out.append("\\" + ch)
        elif " " <= ch <= "~":
            out.append(ch)
        else:
            out.append("?")
    # "??" followed by some characters is a trigraph in older C standards; break any pair.
    return '"' + "".join(out).replace("??", "?\\?") + '"'


def c_array(values, per_line: int = 8, kind: str = "int") -> str:
    """The body of a C array initialiser (kind "int" or "float"), `per_line` values a line, indented.

    >>> c_array([1, 2, 3], per_line=2)
    '    1, 2,\\n    3'
    >>> c_array([0.5], kind="float")
    '    0.5f'
    """
    fmt = c_float if kind == "float" else (lambda v: str(int(v)))
    items = [fmt(v) for v in values]
    lines = [", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]
    return ",\n".join("    " + line for line in lines)


def hsum(vector: str, width: int) -> str:
    """OpenCL C summing the lanes of a vector, in lane order.

    >>> hsum("v", 4)
    '(v.s0 + v.s1 + v.s2 + v.s3)'
    """
    return "(" + " + ".join(f"{vector}.s{lane:x}" for lane in range(width)) + ")"


@lru_cache(maxsize=None)
def environment() -> jinja2.Environment:
    root = resources.files("sparsecl.templates")
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(root)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters.update(cfloat=c_float, cident=c_ident, cstring=c_string, carray=c_array)
    env.globals.update(hsum=hsum)
    return env


def render(template: str, **context) -> str:
    """Render templates/<template> with the given context."""
    return environment().get_template(template).render(**context)
