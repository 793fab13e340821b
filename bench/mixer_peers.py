"""Each recurrent mixer beside its reference implementation at the same shapes: training speed.

One case = one mixer block (no LM around it) of width --width on [--batch, T, width] float32 input,
forward and backward of the sum of its output, median ms over timed repeats after warmup; ours
jitted (the training form that model.scan='auto' picks on this platform), the peer as its package
runs it here:
  rglru   recurrentgemma's JAX RecurrentBlock (jitted)
  mamba   transformers' MambaMixer (PyTorch; on CPU its sequential slow path, on a GPU mamba_ssm's
          kernels when installed)
  mamba2  transformers' Mamba2Mixer (PyTorch; its torch path on CPU)
  mlstm   xlstm's mLSTMLayer (PyTorch, its parallel backend)
A peer that is not installed prints a JSON line saying so. ratio = ours / peer (below 1: faster).

  python bench/mixer_peers.py --quick            # CPU: width 64, batch 4, T 128 and 512
  python bench/mixer_peers.py --T=1024,4096 --width=256 --batch=8
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax
import jax.numpy as jnp
import numpy as np

from bench.mixers import median_ms
from seqmodels.layers.mixers import MIXERS, MixerConfig
from seqmodels.train import workdir


def ours(mixer: str, x_BxTxD, args) -> float:
  cfg = MixerConfig(D=x_BxTxD.shape[-1], H=args.heads, d_state=16, expand=2, conv=4)
  module = MIXERS[mixer].module(cfg)
  params = module.init(jax.random.PRNGKey(0), x_BxTxD)['params']
  grad = jax.jit(jax.grad(lambda p, x: jnp.sum(module.apply({'params': p}, x)), argnums=(0, 1)))
  return median_ms(lambda: grad(params, x_BxTxD), args.warmup, args.repeats)


def _torch_ms(layer, x_np, args) -> float:
  import torch
  x = torch.tensor(x_np, requires_grad=True)

  def step():
    layer.zero_grad(set_to_none=True)
    x.grad = None
    out = layer(x)
    (out[0] if isinstance(out, tuple) else out).sum().backward()
  return median_ms(step, args.warmup, args.repeats)


def peer(mixer: str, x_np: np.ndarray, args) -> tuple[str, float]:
  """(the peer's name and version, its median ms)."""
  B, T, D = x_np.shape
  if mixer == 'rglru':
    from recurrentgemma.jax import modules as rg
    block = rg.RecurrentBlock(width=D, num_heads=args.heads, lru_width=D, conv1d_temporal_width=4)
    x, pos = jnp.asarray(x_np), jnp.broadcast_to(jnp.arange(T), (B, T))
    params = block.init(jax.random.PRNGKey(0), x, pos)['params']
    grad = jax.jit(jax.grad(lambda p, x: jnp.sum(block.apply({'params': p}, x, pos)[0]),
                            argnums=(0, 1)))
    ms = median_ms(lambda: grad(params, x), args.warmup, args.repeats)
    return f'recurrentgemma {importlib.metadata.version("recurrentgemma")} (JAX)', ms
  if mixer in ('mamba', 'mamba2'):
    import transformers
    if mixer == 'mamba':
      from transformers.models.mamba.modeling_mamba import MambaMixer
      cfg = transformers.MambaConfig(hidden_size=D, state_size=16, expand=2, conv_kernel=4)
      layer = MambaMixer(cfg, layer_idx=0)
    else:
      from transformers.models.mamba2.modeling_mamba2 import Mamba2Mixer
      cfg = transformers.Mamba2Config(hidden_size=D, expand=2, num_heads=args.heads,
                                      head_dim=2 * D // args.heads, state_size=16, n_groups=1,
                                      conv_kernel=4, chunk_size=64)
      layer = Mamba2Mixer(cfg, layer_idx=0)
    return f'transformers {transformers.__version__} (PyTorch)', _torch_ms(layer, x_np, args)
  if mixer == 'mlstm':
    from xlstm.blocks.mlstm.layer import mLSTMLayer, mLSTMLayerConfig
    layer = mLSTMLayer(mLSTMLayerConfig(embedding_dim=D, num_heads=args.heads, context_length=T,
                                        proj_factor=2.0, conv1d_kernel_size=4))
    return f'xlstm {importlib.metadata.version("xlstm")} (PyTorch)', _torch_ms(layer, x_np, args)
  raise ValueError(f'no peer for {mixer}')


def main(argv=None) -> None:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument('--mixers', default='rglru,mamba,mamba2,mlstm')
  p.add_argument('--width', type=int, default=128)
  p.add_argument('--heads', type=int, default=4)
  p.add_argument('--batch', type=int, default=8)
  p.add_argument('--T', default='')
  p.add_argument('--warmup', type=int, default=2)
  p.add_argument('--repeats', type=int, default=5)
  p.add_argument('--quick', action='store_true', help='CPU-sized: width 64, batch 4, T 128,512')
  args = p.parse_args(argv)
  if args.quick:  # the sizes, where not given
    args.width, args.batch = 64, 4
  args.T = args.T or ('128,512' if args.quick else '256,1024')
  common = {'command': ' '.join([os.path.basename(sys.executable)] + sys.argv),
            'commit': workdir.code_version(), 'device': jax.devices()[0].device_kind,
            'jax': jax.__version__, 'width': args.width, 'batch': args.batch,
            'date': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}
  for mixer in args.mixers.split(','):
    for T in (int(t) for t in args.T.split(',')):
      x_np = np.random.default_rng(0).normal(size=(args.batch, T, args.width)).astype(np.float32)
      record = {'mixer': mixer, 'T': T, 'ours_ms': round(ours(mixer, jnp.asarray(x_np), args), 3)}
      try:
        name, ms = peer(mixer, x_np, args)
        record.update(peer=name, peer_ms=round(ms, 3), ratio=round(record['ours_ms'] / ms, 3))
      except ImportError as e:
        record.update(peer_error=f'not installed: {e.name or e}')
      print(json.dumps({**record, **common}), flush=True)


if __name__ == '__main__':
  main()
