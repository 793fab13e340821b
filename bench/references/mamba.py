"""seqmodels' Mamba mixer beside the reference, on shared weights, in float32.

The reference is transformers' MambaMixer on its pure-PyTorch path (its sequential loop; mamba-ssm's
CUDA kernels do not build on a CPU), whose weights are copied into seqmodels' mixer. Both run the
same random input, and every scan form of ours is compared: the outputs, and the scan's final state
(ours from its decoding cache after a prefill of the whole input). With --mamba_ssm=DIR (a local
copy of state-spaces/mamba; third_party/ is ignored by git), the same block runs again with
mamba_ssm's own `selective_scan_ref` as its scan, loaded from
DIR/mamba_ssm/ops/selective_scan_interface.py with its CUDA imports stubbed out.

A_log and D are perturbed from their initial values (the same on every channel) and dt's bias is
raised by 2 (dt from [0.001, 0.1] to about [0.007, 0.6]) before they are shared, so that a channel
mixed up anywhere, or a wrong decay, shows: rolling A_log by one channel moves the output by 5e-3 of
its largest magnitude, 50 times the tolerance (checked by hand). Prints one JSON line: the max abs
difference per (reference, form, output or final state), and pass when each is within 1e-4 of the
reference's largest magnitude.
  python bench/references/mamba.py                                 # transformers' MambaMixer
  python bench/references/mamba.py --mamba_ssm=third_party/mamba  # and selective_scan_ref
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import sys
import types

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import jax
import jax.numpy as jnp
import numpy as np
import torch
import transformers
from transformers.models.mamba import modeling_mamba

from seqmodels.hf import mamba as hf_mamba
from seqmodels.hf.backbone import StateDict
from seqmodels.layers.mixers import MixerConfig, mamba

TOLERANCE = 1e-4


def reference_mixer(D: int, N: int, expand: int, conv: int, seed: int) -> modeling_mamba.MambaMixer:
  torch.manual_seed(seed)
  cfg = modeling_mamba.MambaConfig(
      vocab_size=16, hidden_size=D, state_size=N, expand=expand, conv_kernel=conv, use_bias=False,
      use_conv_bias=True, time_step_rank=mamba.dt_rank(D), num_hidden_layers=1, use_mambapy=False,
      use_associative_scan=False)  # its sequential loop, as selective_scan_ref
  mixer = modeling_mamba.MambaMixer(cfg, layer_idx=0).eval()
  with torch.no_grad():
    mixer.A_log.add_(0.5 * torch.randn_like(mixer.A_log))
    mixer.dt_proj.bias.add_(2.0)
    mixer.D.add_(0.1 * torch.randn_like(mixer.D))
  return mixer


def shared_params(ref: modeling_mamba.MambaMixer, cfg: MixerConfig) -> dict:
  """The reference's weights as seqmodels' mixer's parameters, by the mapping the Hugging Face
  import uses (seqmodels/hf/mamba.py)."""
  tensors = {k: v.detach().numpy() for k, v in ref.state_dict().items()}
  sd = StateDict(tensors, 'MambaMixer')
  params = hf_mamba.mixer_from_hf(sd, '', cfg)
  sd.done()
  return jax.tree.map(jnp.asarray, params)


def load_selective_scan_ref(root: str):
  """mamba_ssm's selective_scan_ref from its source file, its CUDA extensions' imports stubbed."""
  stubs = {'mamba_ssm': {}, 'mamba_ssm.utils': {}, 'mamba_ssm.ops': {}, 'mamba_ssm.ops.triton': {},
           'mamba_ssm.utils.torch': {'custom_fwd': lambda f: f, 'custom_bwd': lambda f: f},
           'mamba_ssm.ops.triton.layer_norm': {'_layer_norm_fwd': None}}  # the fused paths' only
  for name, attributes in stubs.items():
    module = sys.modules.setdefault(name, types.ModuleType(name))
    for key, value in attributes.items():
      setattr(module, key, value)
  path = os.path.join(root, 'mamba_ssm', 'ops', 'selective_scan_interface.py')
  spec = importlib.util.spec_from_file_location('selective_scan_interface', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.selective_scan_ref


def source_id(root: str) -> str:
  """Which selective_scan_ref ran: DIR/COMMIT's commit when there is one, and the file's sha256."""
  path = os.path.join(root, 'mamba_ssm', 'ops', 'selective_scan_interface.py')
  commit = os.path.join(root, 'COMMIT')
  digest = hashlib.sha256(open(path, 'rb').read()).hexdigest()[:16]
  return (open(commit).read().strip() + ' ' if os.path.exists(commit) else '') + f'sha256:{digest}'


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  p.add_argument('--D', type=int, default=32)
  p.add_argument('--d_state', type=int, default=8)
  p.add_argument('--expand', type=int, default=2)
  p.add_argument('--conv', type=int, default=4)
  p.add_argument('--B', type=int, default=2)
  p.add_argument('--T', type=int, default=33)
  p.add_argument('--seed', type=int, default=0)
  p.add_argument('--mamba_ssm', default='', help='a local copy of state-spaces/mamba (optional)')
  a = p.parse_args()
  torch.set_num_threads(1)
  ref = reference_mixer(a.D, a.d_state, a.expand, a.conv, a.seed)
  u = torch.randn(a.B, a.T, a.D, generator=torch.Generator().manual_seed(a.seed + 1))
  references = {'transformers.MambaMixer': modeling_mamba.mamba_selective_scan}
  if a.mamba_ssm:
    scan_ref = load_selective_scan_ref(a.mamba_ssm)
    # transformers' block around mamba_ssm's scan (the keywords dropped choose transformers' paths).
    references['transformers.MambaMixer+mamba_ssm.selective_scan_ref'] = (
        lambda *args, use_mambapy=False, use_associative_scan=False, **kw: scan_ref(*args, **kw))
  params = shared_params(ref, MixerConfig(D=a.D, d_state=a.d_state, expand=a.expand, conv=a.conv))
  u_BxTxD = jnp.asarray(u.numpy())
  ours = {}
  for form in mamba.FORMS:
    cfg = MixerConfig(D=a.D, d_state=a.d_state, expand=a.expand, conv=a.conv, scan=form)
    model = mamba.Mamba(cfg)
    cache = model.init(jax.random.PRNGKey(0), u_BxTxD, decode_position=0)['cache']
    out, mutated = model.apply({'params': params, 'cache': jax.tree.map(jnp.zeros_like, cache)},
                               u_BxTxD, decode_position=0, mutable=['cache'])
    # A prefill from the zeroed cache is the training form.
    np.testing.assert_array_equal(out, model.apply({'params': params}, u_BxTxD))
    ours[form] = {'output': np.asarray(out),
                  'final state': np.asarray(mutated['cache']['ssm_state'])}
  checks, original = [], modeling_mamba.mamba_selective_scan
  try:
    for name, scan in references.items():
      states = []

      def recording(*args, scan=scan, **kw):  # the block's output; the scan's last state kept
        out, last_state = scan(*args, **{**kw, 'return_last_state': True})
        states.append(last_state)
        return out

      modeling_mamba.mamba_selective_scan = recording
      with torch.no_grad():
        want = {'output': ref(u).numpy(), 'final state': states[-1].numpy()}
      for form, got in ours.items():
        for what in want:
          diff = float(np.abs(got[what] - want[what]).max())
          scale = float(np.abs(want[what]).max())
          checks.append({'reference': name, 'form': form, 'compared': what,
                         'max_abs_diff': diff, 'max_abs_ref': scale, 'relative': diff / scale,
                         'pass': diff <= TOLERANCE * scale})
  finally:
    modeling_mamba.mamba_selective_scan = original
  print(json.dumps({
      'bench': 'references/mamba', 'command': ' '.join(sys.argv),
      'shape': {'B': a.B, 'T': a.T, 'D': a.D, 'd_state': a.d_state, 'expand': a.expand,
                'conv': a.conv, 'dt_rank': mamba.dt_rank(a.D)},
      'versions': {'jax': jax.__version__, 'torch': torch.__version__,
                   'transformers': transformers.__version__,
                   'mamba_ssm': source_id(a.mamba_ssm) if a.mamba_ssm else None},
      'checks': checks,
      'max_abs_diff_output': max(c['max_abs_diff'] for c in checks if c['compared'] == 'output'),
      'tolerance': f'{TOLERANCE} x max|ref|', 'pass': all(c['pass'] for c in checks)}))


if __name__ == '__main__':
  main()
