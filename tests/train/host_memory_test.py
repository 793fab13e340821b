"""Tests for seqmodels/train/host_memory.py: XLA:CPU's freed buffers are reused instead of faulted
in again."""

import json
import os
import statistics
import subprocess
import sys

import pytest

from seqmodels.train import host_memory

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# A jitted function with a 40 MB result (or MB megabytes), each result freed: the minor page faults
# (fresh pages the kernel had to hand over) of each of 9 calls under glibc's default policy, then of
# each of 9 calls under keep_freed_memory.
_FAULTS = """
import json, os, resource
from seqmodels.train import host_memory
if os.environ.get('INLINE'):
  host_memory.run_cpu_steps_inline()
import jax, jax.numpy as jnp
double = jax.jit(lambda x: x * 2)
x = jnp.ones((int(os.environ.get('MB', 40)) << 18,), jnp.float32)
def faults(calls):
  counts = []
  for _ in range(calls):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    double(x).block_until_ready()
    counts.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
  return counts
faults(1)
default = faults(9)
applied = host_memory.keep_freed_memory()
faults(20)  # each heap's pages are faulted in once, here (each allocating thread has its own heap)
print(json.dumps([applied, default, faults(9)]))
"""
PAGES = (40 << 20) // 4096  # 10,240: every page of one result


def _median_faults(**env: str):
  """(keep_freed_memory's answer, median faults of a call before it, after it) in a fresh process.
  Medians: on a loaded machine a call now and then runs on a thread whose heap has not had the
  buffer yet."""
  env = {**{k: v for k, v in os.environ.items()
            if k not in host_memory.USER_SETTINGS + (host_memory.OPT_OUT, 'GLIBC_TUNABLES')}, **env}
  out = subprocess.run([sys.executable, '-c', _FAULTS], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=120)
  assert out.returncode == 0, out.stderr[-2000:]
  applied, before, after = json.loads(out.stdout.strip().splitlines()[-1])
  return applied, statistics.median(before), statistics.median(after)


def test_xla_cpu_buffers_are_reused_instead_of_faulted_in_again_each_call():
  applied, before, after = _median_faults()
  assert applied is True
  assert before > 0.9 * PAGES, (before, after)  # a fresh mapping each call
  assert after < 0.01 * PAGES, (before, after)  # the freed pages again


def test_buffers_over_64_mb_are_reused_when_cpu_steps_run_inline():
  """Over 64 MB a buffer fits no worker thread's own heap (host_memory's docstring); run inline, it
  is the main thread's, whose heap has no such limit. (Dispatched to XLA's threads, it was mapped
  afresh each call on an idle machine but reused in one run beside another test worker, 2026-12-02:
  which thread allocates, and so which heap, varies with the load, so that side is not asserted.)"""
  applied, before, after = _median_faults(MB='100', INLINE='1')
  pages = (100 << 20) // 4096
  assert applied and before > 0.9 * pages, (before, after)
  assert after < 0.01 * pages, (before, after)


_DISPATCH = """
import json, os, time
from seqmodels.train import host_memory
import jax, jax.numpy as jnp
if os.environ.get('LATE'):
  jnp.ones(1).block_until_ready()  # JAX's backends exist from here
set_ = host_memory.run_cpu_steps_inline()
f = jax.jit(lambda x: jnp.tanh(x @ x).sum())
x = jnp.ones((1500, 1500))
f(x).block_until_ready()
t = time.perf_counter(); r = f(x); dispatched = time.perf_counter() - t; r.block_until_ready()
print(json.dumps([set_, host_memory.cpu_steps_inline(), dispatched / (time.perf_counter() - t)]))
"""


@pytest.mark.parametrize('env,expect_set', [({}, True), ({'LATE': '1'}, False),
                                            ({host_memory.INLINE_OPT_OUT: '0'}, False)])
def test_cpu_steps_run_inline_only_when_set_before_jax_computes_and_not_when_opted_out(
    env, expect_set):
  env = {**{k: v for k, v in os.environ.items() if k != host_memory.INLINE_OPT_OUT},
         'XLA_FLAGS': '', **env}
  out = subprocess.run([sys.executable, '-c', _DISPATCH], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=120)
  assert out.returncode == 0, out.stderr[-2000:]
  set_, reported, share = json.loads(out.stdout.strip().splitlines()[-1])
  assert set_ is expect_set and reported is expect_set
  # The share of the call's time spent before the call returned: all of it inline, almost none
  # dispatched.
  assert share > 0.9 if expect_set else share < 0.2, share


def test_the_opt_out_leaves_glibc_mapping_each_buffer_afresh():
  applied, before, after = _median_faults(**{host_memory.OPT_OUT: '0'})
  assert not applied
  assert before > 0.9 * PAGES and after > 0.9 * PAGES, (before, after)


@pytest.mark.parametrize('env', [{'MALLOC_ARENA_MAX': '2'},
                                 {'GLIBC_TUNABLES': 'glibc.malloc.mmap_threshold=1048576'}])
def test_a_users_own_malloc_tuning_is_left_as_it_is(monkeypatch, env):
  monkeypatch.setattr(host_memory, '_applied', False)
  for k, v in env.items():
    monkeypatch.setenv(k, v)
  assert host_memory.keep_freed_memory() is False
  assert not host_memory.applied()
