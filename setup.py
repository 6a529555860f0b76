"""The one native part of testbed: the loops of the fast capture path (see
testbed/analysis/native.py).

Everything else is declared in pyproject.toml. `optional=True`: without a C compiler or the
Python headers the install still succeeds, and the walk runs in Python (slower, same results).
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("testbed.analysis._native",
                             [f"testbed/analysis/{name}.c"
                              for name in ("_native", "_native_frames", "_native_groups")],
                             depends=["testbed/analysis/_native.h"],
                             extra_compile_args=["-O2"], optional=True)])
