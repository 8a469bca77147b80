"""Build of the one compiled module, the decoder's fast path (spanlake/ingest/_otlp_native.c).

Optional: where no C compiler is present the build goes on without it, and spanlake decodes
with the pure-Python decoder (slower, same results).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "spanlake.ingest._otlp_native",
            ["spanlake/ingest/_otlp_native.c"],
            extra_compile_args=["-O2", "-std=c11", "-Wall", "-Wextra", "-Wno-unused-parameter"],
            optional=True,
        )
    ]
)
