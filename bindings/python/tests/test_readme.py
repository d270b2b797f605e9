# SPDX-License-Identifier: MIT
"""The README's example runs as written."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def example() -> str:
    text = README.read_text()
    section = text.split("## Example", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_example_runs_as_written(tmp_path):
    code = example()
    assert len(code.splitlines()) <= 20
    script = tmp_path / "example.py"
    script.write_text(code)
    # As the README says: from the source tree, with PYTHONPATH only (the
    # library comes from $LIBVMAPPLE_PATH under meson test).
    env = os.environ.copy()
    env["PYTHONPATH"] = str(README.parent)
    p = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "ciphertext 69c4e0d86a7b0430d8cdb78070b4c55a after 4 DMA calls\n"
    assert p.stderr == ""
