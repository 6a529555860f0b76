"""The one native part of testbed: the capture record walk (see testbed/analysis/recwalk.py).

Everything else is declared in pyproject.toml. `optional=True`: without a C compiler or the
Python headers the install still succeeds, and the walk runs in Python (slower, same results).
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("testbed.analysis._recwalk", ["testbed/analysis/_recwalk.c"],
                             extra_compile_args=["-O2"], optional=True)])
