"""Tests for seqmodels/train/host_memory.py: XLA:CPU's freed buffers are reused instead of faulted in again."""

import os
import subprocess
import sys

import pytest

from seqmodels.train import host_memory

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# A jitted function with a 40 MB result, run 5 times with each result freed: counts the minor page faults (fresh
# pages the kernel had to hand over) under glibc's default policy, then under keep_freed_memory.
_FAULTS = """
import resource, sys
import jax, jax.numpy as jnp
from seqmodels.train import host_memory
double = jax.jit(lambda x: x * 2)
x = jnp.ones((10 << 20,), jnp.float32)
def faults(calls):
  before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
  for _ in range(calls):
    double(x).block_until_ready()
  return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
faults(1)
default = faults(5)
print('set:', host_memory.keep_freed_memory())
faults(2)  # the heap's pages are faulted in once, here
print('faults:', default, faults(5))
"""


def _run(code, env=None):
  env = {k: v for k, v in (env or os.environ).items() if k not in host_memory.USER_SETTINGS + (host_memory.OPT_OUT,)}
  out = subprocess.run([sys.executable, '-c', code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
  assert out.returncode == 0, out.stderr[-2000:]
  return out.stdout


def test_xla_cpu_buffers_are_reused_instead_of_faulted_in_again_each_call():
  out = _run(_FAULTS)
  assert 'set: True' in out
  default, kept = (int(n) for n in out.split('faults:')[1].split())
  pages = 5 * (40 << 20) // 4096  # 51,200: every page of every result, fresh each call
  assert default > 0.9 * pages, out
  assert kept < 0.01 * pages, out


@pytest.mark.parametrize('env', [{host_memory.OPT_OUT: '0'}, {'MALLOC_ARENA_MAX': '2'}])
def test_the_opt_out_and_a_users_own_malloc_tuning_leave_glibc_as_it_is(monkeypatch, env):
  monkeypatch.setattr(host_memory, '_applied', False)
  for k, v in env.items():
    monkeypatch.setenv(k, v)
  assert host_memory.keep_freed_memory() is False
