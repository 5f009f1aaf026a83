import doctest
import subprocess

import numpy as np
import pytest

from sparsecl import render
from sparsecl.render import c_float, c_ident, c_string

from conftest import needs_gcc


def test_doctests():
    assert doctest.testmod(render).failed == 0


def _samples():
    rng = np.random.default_rng(0)
    special = np.array([0.0, -0.0, 1.0, -1.0, 0.1, 1 / 3, 3.4028235e38, 1.1754944e-38, 1e-45, 16777217.0],
                       dtype=np.float32)
    random_bits = rng.integers(0, 2**32, 2000, dtype=np.uint64).astype(np.uint32).view(np.float32)
    return np.concatenate([special, random_bits[np.isfinite(random_bits)]])


def test_c_float_round_trips_bit_exactly_in_python():
    values = _samples()
    parsed = np.array([np.float32(c_float(v)[:-1]) for v in values], dtype=np.float32)
    assert np.array_equal(parsed.view(np.uint32), values.view(np.uint32))


@needs_gcc
def test_c_float_round_trips_bit_exactly_through_gcc(tmp_path):
    values = _samples()[:500]
    src = tmp_path / "floats.c"
    src.write_text("#include <stdio.h>\n#include <string.h>\n#include <stdint.h>\n"
                   "static const float v[] = {" + ", ".join(c_float(x) for x in values) + "};\n"
                   "int main(void) { for (unsigned i = 0; i < sizeof v / sizeof *v; ++i) {"
                   " uint32_t b; memcpy(&b, &v[i], 4); printf(\"%u\\n\", b); } return 0; }\n")
    subprocess.run(["gcc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-o", str(tmp_path / "f"), str(src)],
                   check=True)
    out = subprocess.run([str(tmp_path / "f")], capture_output=True, text=True, check=True).stdout
    assert [int(x) for x in out.split()] == values.view(np.uint32).tolist()


def test_non_finite_floats_are_refused():
    with pytest.raises(ValueError):
        c_float(float("nan"))
    with pytest.raises(ValueError):
        c_float(float("inf"))


@pytest.mark.parametrize("name", ['a"b', "x\ny", "*/ evil", "#include <x>", "back\\slash", "ünï", "", "9lives"])
def test_identifiers_and_strings_are_safe(name):
    ident = c_ident(name)
    assert ident and (ident[0].isalpha() or ident[0] == "_")
    assert all(ch.isalnum() and ch.isascii() or ch == "_" for ch in ident)
    literal = c_string(name)
    body = literal[1:-1]
    assert literal.startswith('"') and literal.endswith('"')
    assert "\n" not in literal and all(" " <= ch <= "~" for ch in literal)
    # every quote and backslash inside is escaped
    i = 0
    while i < len(body):
        if body[i] == "\\":
            i += 2
            continue
        assert body[i] != '"'
        i += 1


@needs_gcc
def test_opencl_declarations_match_the_khronos_headers(tmp_path):
    """runtime_c/sc_cl.h declares OpenCL's ABI itself (bundles need no headers): compiled after <CL/cl.h>, a
    typedef or constant that differs is an error, and every entry point's type is compared."""
    import os
    import re
    from importlib import resources
    if not os.path.exists("/usr/include/CL/cl.h"):
        pytest.skip("no OpenCL headers (make test installs opencl-c-headers)")
    header = resources.files("sparsecl.runtime_c").joinpath("sc_cl.h").read_text()
    (tmp_path / "sc_cl.h").write_text(header)
    names = re.findall(r"X\(\w+, (cl\w+),", header)
    assert len(names) >= 20
    checks = "".join(f"_Static_assert(__builtin_types_compatible_p(__typeof__(&{n}), "
                     f"__typeof__(((sc_cl_api *)0)->{n})), \"{n}\");\n" for n in names)
    consts = "".join(f'_Static_assert(({v}) == ({k}), "{k}");\n'
                     for k, v in re.findall(r"^#define (CL_\w+) (.+)$", header, re.M))
    (tmp_path / "t.c").write_text("#define CL_TARGET_OPENCL_VERSION 120\n#include <CL/cl.h>\n#include \"sc_cl.h\"\n"
                                  + checks + consts + "int main(void) { return 0; }\n")
    result = subprocess.run(["gcc", "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-c", "-o", str(tmp_path / "t.o"),
                             str(tmp_path / "t.c")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
