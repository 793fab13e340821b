"""Test setup: 8 simulated CPU devices (so sharding is exercised), a shared compilation cache, repo
on sys.path."""

import os
import sys
import tempfile

import pytest

# Tests compile many small programs and run each for a few steps, so LLVM's optimisation passes cost
# more time than they save (12-17% of the slowest tests' time, measured); every test's comparisons
# hold at either level.
os.environ['XLA_FLAGS'] = (
    os.environ.get('XLA_FLAGS', '') +
    ' --xla_force_host_platform_device_count=8 --xla_backend_optimization_level=0')
os.environ.setdefault('JAX_PLATFORMS', 'cpu')
# Many tests compile the same small programs (the loop runs again to resume, subprocesses start
# fresh): a persistent cache, inherited by subprocesses and pytest-xdist's workers through the
# environment, compiles each of them once.
os.environ.setdefault('JAX_COMPILATION_CACHE_DIR', tempfile.mkdtemp(prefix='seqmodels-jax-cache-'))
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0')
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES', '0')
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from seqmodels.train import host_memory  # noqa: E402  (the repo is on sys.path from here)

# as launch.py does, before the first computation (keep_freed_memory's is one)
host_memory.run_cpu_steps_inline()
# as the training loop does on CPU (subprocesses set it in their own loop)
host_memory.keep_freed_memory()


# pytest-xdist's hook (the test extra); `-n 0` runs without workers
@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config):
  """`-n auto` (setup.cfg): one worker per core, at most 4 (each simulates 8 devices and compiles on
  its own)."""
  del config
  return max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity')
                       else os.cpu_count() or 1))
