"""Builds the lexical engine's optional C kernels (everything else is in pyproject.toml).

The extension is optional: where no C compiler is available the install still succeeds and the
engine runs its pure-Python reference kernels (same results, much slower; `dedup-audit scan`
says so once).
"""

import sys

from setuptools import Extension, setup

ARGS = [] if sys.platform == "win32" else ["-O3"]

setup(
    ext_modules=[
        Extension(
            "dedup_audit.engine._native",
            ["dedup_audit/engine/_native.c"],
            extra_compile_args=ARGS,
            optional=True,
        )
    ]
)
