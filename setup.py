from setuptools import setup

setup(
    cffi_modules=["src/childproc/_build.py:ffibuilder"],
    options={"bdist_wheel": {"py_limited_api": "cp310"}},
)
