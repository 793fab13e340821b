"""seqmodels' Mamba-2 mixer against transformers' Mamba2Mixer (its PyTorch path) on shared weights.

Builds a tiny Mamba2Mixer (D 16, expand 2, 4 heads of 8, state 8, one group, conv 4, chunk 8),
moves its per-head parameters off their inits (so that D = 1 or a zero conv bias hides no term),
copies every weight into seqmodels.layers.mixers.mamba2.Mamba2 and runs both in float32 on the
same random input:
  * the whole sequence (T = 19, not a multiple of the chunk), seqmodels in each of its forms;
  * decoding: a prefill of the 19 tokens, then 3 tokens one at a time from each side's cache,
    comparing the outputs and the final SSM state h [B, H, P, N] (the reference's layout and ours).
Prints one JSON line: the max abs difference of each comparison, the largest output and state, and
pass when each difference is within 1e-4 of the largest reference value it compares with. Needs
torch and transformers (not in setup.cfg):
  pip install torch==2.13.0 transformers
  python bench/references/mamba2.py
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault('HF_HUB_OFFLINE', '1')  # no kernel downloads: the reference's PyTorch code
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import flax
import jax
import jax.numpy as jnp
import numpy as np
import torch
import transformers
from transformers import DynamicCache, Mamba2Config
from transformers.models.mamba2.modeling_mamba2 import Mamba2Mixer

from seqmodels.hf import mamba2 as hf_mamba2
from seqmodels.hf.backbone import StateDict
from seqmodels.layers.mixers import mamba2
from seqmodels.layers.mixers.base import MixerConfig

D, EXPAND, H, N, CONV, CHUNK, B, T, STEPS = 16, 2, 4, 8, 4, 8, 2, 19, 3
PIECES = [(0, T)] + [(t, t + 1) for t in range(T, T + STEPS)]  # a prefill, then steps
TOLERANCE = 1e-4


def reference() -> tuple[Mamba2Mixer, Mamba2Config]:
  torch.manual_seed(0)
  cfg = Mamba2Config(hidden_size=D, expand=EXPAND, num_heads=H, head_dim=EXPAND * D // H,
                     state_size=N, n_groups=1, conv_kernel=CONV, chunk_size=CHUNK, use_bias=False,
                     use_conv_bias=True, layer_norm_epsilon=mamba2.NORM_EPS, num_hidden_layers=1,
                     vocab_size=8)
  ref = Mamba2Mixer(cfg, layer_idx=0).eval()
  with torch.no_grad():
    ref.A_log.copy_(torch.log(torch.empty(H).uniform_(1.0, 16.0)))  # state-spaces/mamba's A init
    ref.D.copy_(1.0 + 0.5 * torch.randn(H))
    ref.norm.weight.copy_(1.0 + 0.3 * torch.randn(EXPAND * D))
    ref.conv1d.bias.copy_(0.2 * torch.randn(ref.conv_dim))
  return ref, cfg


def shared_params(ref: Mamba2Mixer, cfg: MixerConfig) -> dict:
  """The reference's weights as our parameter tree, by the mapping the Hugging Face import uses
  (seqmodels/hf/mamba2.py)."""
  sd = StateDict({k: v.detach().numpy() for k, v in ref.state_dict().items()}, 'Mamba2Mixer')
  params = hf_mamba2.mixer_from_hf(sd, '', cfg)
  sd.done()
  return jax.tree.map(jnp.asarray, params)


def main() -> None:
  ref, cfg = reference()
  params = shared_params(ref, MixerConfig(D=D, H=H, d_state=N, expand=EXPAND, conv=CONV))
  x = np.random.default_rng(0).normal(size=(B, T + STEPS, D)).astype(np.float32)
  diffs = {}
  with torch.no_grad():
    want = ref(torch.from_numpy(x[:, :T])).numpy()
    cache = DynamicCache(config=cfg)
    want_decode = [ref(torch.from_numpy(x[:, first:last]), cache=cache).numpy()
                   for first, last in PIECES]
    want_h = cache.get_recurrent_state(0).numpy()
  for form in mamba2.FORMS:
    mixer = mamba2.Mamba2(MixerConfig(D=D, H=H, d_state=N, expand=EXPAND, conv=CONV, chunk=CHUNK,
                                      scan=form))
    diffs[f'train_{form}'] = float(np.abs(mixer.apply({'params': params}, x[:, :T]) - want).max())
  ours = mixer.init(jax.random.PRNGKey(0), x[:, :T], decode_position=0)['cache']  # zeros
  decoded = []
  for first, last in PIECES:
    y, mutated = mixer.apply({'params': params, 'cache': ours}, x[:, first:last],
                             decode_position=first, mutable=['cache'])
    ours = mutated['cache']
    decoded.append(np.asarray(y))
  diffs['decode'] = max(float(np.abs(a - b).max()) for a, b in zip(decoded, want_decode))
  diffs['decode_state_h'] = float(np.abs(np.asarray(ours['ssm_state']) - want_h).max())
  scale = float(max(np.abs(want).max(), *(np.abs(w).max() for w in want_decode)))
  state_scale = float(np.abs(want_h).max())
  passed = all(d <= TOLERANCE * (state_scale if k == 'decode_state_h' else scale)
               for k, d in diffs.items())
  print(json.dumps({
      'reference': f'transformers {transformers.__version__} Mamba2Mixer (PyTorch path), '
                   f'torch {torch.__version__}',
      'ours': f'seqmodels.layers.mixers.mamba2 (jax {jax.__version__}, flax {flax.__version__})',
      'shape': {'B': B, 'T': T, 'D': D, 'H': H, 'P': EXPAND * D // H, 'N': N, 'chunk': CHUNK},
      'dtype': 'float32', 'max_abs_diff': diffs, 'max_abs_output': scale,
      'max_abs_state': state_scale, 'tolerance': f'{TOLERANCE} relative', 'pass': passed}))


if __name__ == '__main__':
  main()
