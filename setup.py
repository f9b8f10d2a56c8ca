from setuptools import setup

setup(
    cffi_modules=["csrc/build_cffi.py:ffibuilder"],
    options={"bdist_wheel": {"py_limited_api": "cp310"}},
)
