"""Model FLOPs utilisation: the training FLOP/s a run achieves (seqmodels/models/size.py's FLOPs per
token times its tokens per second) over its devices' peak.

The peak of one device is config.train.peak_flops where set, else looked up in PEAKS by the device
kind and compute dtype (datasheet figures, dense), else measured: the median of timed square
matmuls in the compute dtype, once per process. `peak_flops_source` in summary.json says which.
"""

from __future__ import annotations

import functools
import math
import time

import jax
import jax.numpy as jnp

# Dense peak FLOP/s of one device by (a part of) jax's device_kind: (bfloat16, float32). float32 on
# NVIDIA GPUs is TF32, which XLA's default matmul precision uses. The first match wins (PCIe before
# SXM). None: not a figure we know, so measured.
PEAKS: dict[str, tuple[float, float | None]] = {
    'H100 PCIe': (756e12, 378e12),
    'H100': (989e12, 494.7e12),      # SXM ('NVIDIA H100 80GB HBM3')
    'H200': (989e12, 494.7e12),
    'GH200': (989e12, 494.7e12),
    'A100': (312e12, 156e12),
    'L40S': (362e12, 183e12),
    'L4': (121e12, 60e12),
    'TPU v4': (275e12, None),
    'TPU v5 lite': (197e12, None),   # v5e
    'TPU v5p': (459e12, None),
    'TPU v6 lite': (918e12, None),   # v6e (Trillium)
}


def looked_up(kind: str, dtype: str) -> float | None:
  for name, (bf16, f32) in PEAKS.items():
    if name in kind:
      return bf16 if dtype == 'bfloat16' else f32
  return None


@functools.lru_cache(maxsize=None)
def measured(dtype: str) -> float:
  """FLOP/s of a square matmul in `dtype` on the first device: n = 8192 off CPU, 1024 on CPU (a
  few tenths of a second there), the median of 5 after one to compile."""
  n = 1024 if jax.default_backend() == 'cpu' else 8192
  a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32).astype(dtype)
  mm = jax.jit(lambda a: a @ a)
  jax.block_until_ready(mm(a))
  times = []
  for _ in range(5):
    t0 = time.perf_counter()
    jax.block_until_ready(mm(a))
    times.append(time.perf_counter() - t0)
  return 2 * n ** 3 / sorted(times)[len(times) // 2]


def peak(dtype: str, given: float = 0.0) -> tuple[float, str]:
  """(FLOP/s of one device, where the figure comes from) for computing in `dtype`."""
  if given > 0:
    return given, 'config.train.peak_flops'
  kind = jax.devices()[0].device_kind
  figure = looked_up(kind, dtype)
  if figure is not None:
    return figure, f'table: {kind}, {dtype} dense'
  n = 1024 if jax.default_backend() == 'cpu' else 8192
  return measured(dtype), f'measured: {n}^3 {dtype} matmul on {kind}'


def fields(flops_per_token: float, tokens_per_sec: float, dtype: str, devices: int,
           given: float = 0.0) -> dict:
  """summary.json's mfu (None where no steady tokens/s was measured), peak_flops (of one device)
  and peak_flops_source."""
  flops, source = peak(dtype, given)
  mfu = flops_per_token * tokens_per_sec / (flops * devices)
  return {'mfu': mfu if math.isfinite(mfu) else None, 'peak_flops': flops,
          'peak_flops_source': source}
