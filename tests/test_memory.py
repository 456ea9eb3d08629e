"""lab.memory.keep_freed_memory: glibc's malloc keeps freed memory (no page faults per token)."""

import os
import platform
import subprocess
import sys

import pytest

glibc = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
CHECK = "from lab.memory import keep_freed_memory as k; print(k(), k())"


def run(env_extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    env.update(env_extra)
    return subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, env=env,
                          cwd=os.path.dirname(os.path.dirname(__file__)), check=True).stdout.split()


@pytest.mark.skipif(not glibc, reason="glibc's mallopt")
def test_tunes_malloc_once_and_leaves_a_users_own_settings_alone():
    assert run({}) == ["True", "True"]  # the second call says what the first did
    assert run({"MALLOC_TRIM_THRESHOLD_": "1000000"}) == ["False", "False"]


@pytest.mark.skipif(not glibc, reason="glibc's page faults")
def test_a_vocabulary_sized_array_per_token_stops_faulting_in_fresh_pages():
    """Minor page faults over 200 'tokens' of float64 work on a 49k vocabulary, before and after."""
    code = """
import resource, numpy as np, sys
from lab.memory import keep_freed_memory
x = np.random.default_rng(0).standard_normal(49152).astype(np.float32)
def tokens():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(200):
        y = np.divide(x, 0.8, dtype=np.float64); z = np.exp(y - y.max()); w = np.cumsum(z); del y, z, w
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
tokens()
plain = tokens()
keep_freed_memory(); tokens()
print(plain, tokens())
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True,
                         cwd=os.path.dirname(os.path.dirname(__file__))).stdout.split()
    plain, kept = int(out[0]), int(out[1])
    assert kept * 10 < plain, (plain, kept)
