# SPDX-License-Identifier: MIT
"""Shared fixtures of the binding tests.

Run through `meson test` (suite python), which points LIBVMAPPLE_PATH at the
build's library; by hand: bindings/python/run-tests.sh --library
build/lib/libvmapple.so.1 --tests bindings/python/tests.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap

import pytest

import libvmapple as vm

RAM_SIZE = 1 << 20


@pytest.fixture
def mem() -> vm.GuestMemory:
    return vm.GuestMemory(RAM_SIZE)


@pytest.fixture(params=[False, True], ids=["copy", "mapped"])
def host(request, mem) -> vm.Host:
    """A host over `mem`, once without and once with mem_map (zero-copy)."""
    return vm.Host(mem, mem_map=request.param)


@pytest.fixture(autouse=True)
def collect_garbage():
    """Run the garbage collector after each test, so a finalizer that would
    crash does so inside the test that made the object."""
    yield
    gc.collect()


def run_python(code: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run @code in a fresh interpreter with the same environment (library
    path, ASan preload) and return the finished process."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=os.environ.copy(),
                          capture_output=True, text=True, timeout=timeout)
