"""Host memory: XLA:CPU's freed buffers kept for the next step, instead of handed back to the OS and
faulted in again.

An XLA:CPU executable allocates its temporaries (every intermediate of a training step) as one
buffer per run (44 MB for the GPT step below), and glibc's malloc serves a buffer over 32 MB with a
fresh mmap and returns it with munmap when the run ends. The next step then touches every page of a
new mapping again: a minor page fault per 4 KiB page, each one the kernel zeroing the page. For the
4 x 128 GPT step (12 x 64 tokens) of `python bench/gpt.py --recipe=step --iters=500`, that was 6.5
million faults in the run and a quarter of the step: 38.2 ms a step with glibc's defaults
(`SEQMODELS_KEEP_FREED_MEMORY=0`), 29.2 ms with the settings below (0.57 million faults; means of
three alternating runs, 2-core Intel Xeon, jax 0.10.2, 2026-12-01; 37.3 and 28.3 ms in three more at
commit 0ef3ee1). PyTorch's CPU step of the same model does not pay this: its tensors are allocated
one by one, each small enough for glibc's heap.

`keep_freed_memory` tells glibc to serve every allocation from its heaps (no mmap per buffer), never
to trim them, and to grow a heap with 64 MB to spare (which also keeps glibc from unmapping a
thread's extra heap once it is empty), so a step's buffers reuse the pages of the previous step's.
The cost: the process keeps its peak memory (800 MB resident instead of 590 MB for the run above),
as a caching allocator does. Limit: the arenas of threads other than the main one are made of heaps
of at most 64 MB, so a buffer over 64 MB that such a thread allocates is still mapped afresh each
time. Putting every thread on the main arena (M_ARENA_MAX=1) would lift that, but made the GPT step
slower (33.4-33.8 ms against 29.6-29.9, bench/README.md).

`run_cpu_steps_inline` lifts it another way: JAX then runs a single-device CPU computation on the
thread that calls it (`jax_cpu_enable_async_dispatch=False`), the main thread, whose arena has no
such limit. With both, the 2 x 128 char-LM steps of
`python bench/recurrent.py --quick --cases=quick` (88.7 MB of temporaries) took 15-17% less: LSTM
89.0 ms against 106.3 with `SEQMODELS_CPU_STEPS_INLINE=0`, GRU 67.7 against 79.7 (two alternating
runs each, commit f4a5d17). The GPT recipes of bench/gpt.py, whose temporaries fit a worker's heap,
do not gain: the 4 x 128 `cpu` recipe is within its run-to-run spread, and the 1-layer `cpu_tuned`
one, whose step is 10 ms, is 1.5-4% slower, since the host no longer prepares the next batch while a
step runs (bench/README.md).
Computations over several devices stay asynchronous either way.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import platform

# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_MAX = -4
# the largest trim threshold mallopt takes (an int): freed memory is never given back
_NEVER = 2**31 - 1
OPT_OUT = 'SEQMODELS_KEEP_FREED_MEMORY'  # =0: glibc's own policy
# A user's own glibc malloc tuning (mallopt(3)'s environment variables) is left as it is.
USER_SETTINGS = ('MALLOC_TRIM_THRESHOLD_', 'MALLOC_MMAP_MAX_', 'MALLOC_MMAP_THRESHOLD_',
                 'MALLOC_TOP_PAD_', 'MALLOC_ARENA_MAX')

_applied = False


def keep_freed_memory() -> bool:
  """Sets glibc's malloc to keep freed memory for reuse (see the module docstring); True when it is
  set.

  Process-wide and idempotent; later allocations follow it. Does nothing (False) on a C library
  other than glibc, when the environment sets `OPT_OUT` to 0, or when it has one of `USER_SETTINGS`
  or a glibc.malloc tunable in GLIBC_TUNABLES (the user tuned malloc already), or when JAX computes
  on an accelerator, not the CPU (this asks JAX for its default backend, which makes the backends:
  call run_cpu_steps_inline first).
  """
  global _applied
  if _applied:
    return True
  if (platform.libc_ver()[0] != 'glibc' or os.environ.get(OPT_OUT, '1') == '0' or
      any(v in os.environ for v in USER_SETTINGS) or
      'glibc.malloc.' in os.environ.get('GLIBC_TUNABLES', '')):
    return False
  import jax
  if jax.default_backend() != 'cpu':
    return False
  libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6')
  if not all(libc.mallopt(param, value) for param, value in
             ((_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, _NEVER), (_M_TOP_PAD, 64 << 20))):
    logging.warning('glibc refused the malloc settings of seqmodels.train.host_memory: XLA:CPU '
                    'steps map their temporaries afresh each step')
    return False
  _applied = True
  return True


def applied() -> bool:
  """Whether keep_freed_memory has set glibc's policy in this process (a query: it sets nothing)."""
  return _applied


INLINE_OPT_OUT = 'SEQMODELS_CPU_STEPS_INLINE'  # =0: JAX's asynchronous dispatch on CPU, as it comes


def run_cpu_steps_inline() -> bool:
  """Has JAX run single-device CPU computations on the calling thread (see the module docstring);
  True if set.

  JAX reads this when it makes its CPU client, so call it before the first computation (launch.py
  does, first thing): once JAX's backends exist, or when the environment sets INLINE_OPT_OUT to 0,
  this does nothing (False). Accelerator backends are not affected. (JAX ignores a
  JAX_CPU_ENABLE_ASYNC_DISPATCH environment variable.)
  """
  import jax
  from jax._src import xla_bridge
  if os.environ.get(INLINE_OPT_OUT, '1') == '0' or xla_bridge.backends_are_initialized():
    return False
  jax.config.update('jax_cpu_enable_async_dispatch', False)
  return True


def cpu_steps_inline() -> bool:
  """Whether JAX runs single-device CPU computations inline in this process (a query, for benchmark
  records)."""
  import jax
  return not jax.config.values.get('jax_cpu_enable_async_dispatch', True)
