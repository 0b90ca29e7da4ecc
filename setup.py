"""The one C extension (everything else is in pyproject.toml): the forwarding path's last step.

``media/_sender.c`` (see ``media/sender.py``); optional: without gcc and the Python headers the
install still succeeds and the server sends from Python.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[Extension("media._sender", ["media/_sender.c"], extra_compile_args=["-O2"], optional=True)]
)
