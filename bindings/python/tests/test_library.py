# SPDX-License-Identifier: MIT
"""Loading the library, versions, errors."""

from __future__ import annotations

import errno
import os
import pathlib
import pickle
import subprocess
import sys

import pytest

import libvmapple as vm
from conftest import run_python


def test_loads_the_library_meson_points_at():
    want = os.environ.get("LIBVMAPPLE_PATH")
    if not want:
        pytest.skip("LIBVMAPPLE_PATH is not set (not run through meson test)")
    assert vm.LIBRARY_PATH == want


def test_version():
    major, minor, patch = vm.version()
    assert vm.version_string() == f"{major}.{minor}.{patch}"
    assert major == 1


def test_strerror_and_log_level_names():
    assert vm.strerror(0) == "success"
    assert vm.strerror(-errno.EFAULT) == vm.strerror(errno.EFAULT) == "bad guest address"
    assert vm.strerror(-99999).startswith("unknown error")
    assert vm.log_level_name(vm.LogLevel.GUEST_ERROR) == "guest-error"
    assert [vm.log_level_name(lv) for lv in vm.LogLevel] == \
        ["error", "warning", "guest-error", "info", "debug"]


def test_error_carries_errno_and_message():
    with pytest.raises(vm.VmappleError) as ei:
        vm.PciHostBridge(class_code=1 << 24)
    e = ei.value
    assert isinstance(e, OSError)
    assert e.errno == errno.EINVAL and e.errno_name == "EINVAL"
    assert e.strerror == "invalid argument"
    assert "class_code" in e.detail and "24 bits" in e.detail
    assert e.function == "vmapple_pci_host_bridge_create"
    assert "class_code" in str(e) and "EINVAL" in str(e)
    # The thread's last error says the same.
    assert "class_code" in vm.last_error()
    again = pickle.loads(pickle.dumps(e))
    assert (again.errno, again.detail, again.function) == (e.errno, e.detail, e.function)


def test_missing_library_is_a_clear_import_error(tmp_path):
    env_code = f"""
        import os
        os.environ["LIBVMAPPLE_PATH"] = {str(tmp_path / "nothing.so")!r}
        try:
            import libvmapple
        except ImportError as e:
            print("IMPORT-ERROR", e)
        """
    p = run_python(env_code)
    assert p.returncode == 0, p.stderr
    assert "IMPORT-ERROR" in p.stdout and "LIBVMAPPLE_PATH" in p.stdout
    assert "nothing.so" in p.stdout


def test_library_path_may_name_a_directory():
    lib = os.environ.get("LIBVMAPPLE_PATH")
    if not lib:
        pytest.skip("LIBVMAPPLE_PATH is not set")
    p = run_python(f"""
        import os
        os.environ["LIBVMAPPLE_PATH"] = {os.path.dirname(lib)!r}
        import libvmapple
        print(libvmapple.LIBRARY_PATH)
        """)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == os.path.join(os.path.dirname(lib), "libvmapple.so.1")


def test_installed_package_finds_the_soname(tmp_path):
    """Outside a source tree and without LIBVMAPPLE_PATH the package loads
    libvmapple.so.1 through the dynamic linker."""
    lib = os.environ.get("LIBVMAPPLE_PATH")
    if not lib:
        pytest.skip("LIBVMAPPLE_PATH is not set")
    import shutil

    pkg = pathlib.Path(vm.__file__).parent
    shutil.copytree(pkg, tmp_path / "site" / "libvmapple")
    env = {k: v for k, v in os.environ.items() if k not in ("LIBVMAPPLE_PATH", "PYTHONPATH")}
    env["PYTHONPATH"] = str(tmp_path / "site")
    env["LD_LIBRARY_PATH"] = os.path.dirname(lib)
    p = subprocess.run([sys.executable, "-c",
                        "import libvmapple; print(libvmapple.LIBRARY_PATH, libvmapple.version())"],
                       env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split()[0] == "libvmapple.so.1"


def test_every_module_is_installed():
    """meson installs the package from an explicit list: a module missing
    from it is missing from every installed copy."""
    package = pathlib.Path(vm.__file__).parent
    listed = (package.parent / "meson.build").read_text()
    for module in sorted(package.iterdir()):
        if module.suffix in (".py", ".typed"):
            assert f"'libvmapple/{module.name}'" in listed, module.name
