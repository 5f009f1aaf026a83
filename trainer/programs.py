"""Build OpenCL programs from the kernel templates, once per distinct source."""

import pyopencl as cl

from sparsecl.render import render


class ProgramCache:
    """Renders templates/kernels/<name> and builds it; identical sources are built once per context."""

    def __init__(self, context):
        self.context = context
        self._built = {}

    def build(self, template: str, **params) -> "cl.Program":
        source = render(f"kernels/{template}", **params)
        program = self._built.get(source)
        if program is None:
            program = cl.Program(self.context, source).build(options=["-cl-std=CL1.2"])
            self._built[source] = program
        return program

    def kernels(self, template: str, names, **params):
        """A dict name -> cl.Kernel, created once so callers can reuse them (creation is slow)."""
        program = self.build(template, **params)
        return {name: cl.Kernel(program, name) for name in names}
