"""arch_hash is a stable identity: same text in every process, whatever the key order."""

from __future__ import annotations

import os
import subprocess
import sys

from search_spaces import arch_hash

ARCH = {"depth": 2, "width_1": 32, "width_2": 16, "width_3": 16, "width_4": 16}
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXPECTED = "57e8415ddaccfda8"  # sha256('{"depth":2,"width_1":32,...}')[:16], frozen forever


def test_arch_hash_of_fixed_arch_is_the_frozen_literal() -> None:
    assert arch_hash(ARCH) == EXPECTED


def test_arch_hash_ignores_key_order() -> None:
    assert arch_hash(dict(reversed(list(ARCH.items())))) == EXPECTED


def test_arch_hash_is_equal_across_processes_with_other_hash_seeds() -> None:
    code = f"from search_spaces.dimensions import arch_hash; print(arch_hash({ARCH!r}))"
    seed = "1" if os.environ.get("PYTHONHASHSEED") != "1" else "2"
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONHASHSEED": seed},
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
    )
    assert out.stdout.strip() == EXPECTED


def test_arch_hash_differs_for_a_different_arch() -> None:
    assert arch_hash(ARCH | {"depth": 3}) != EXPECTED
