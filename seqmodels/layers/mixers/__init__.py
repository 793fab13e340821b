"""Sequence mixers for the LM backbone (seqmodels/models/lm.py): each maps x_BxTxD -> y_BxTxD
causally.

A mixer is a flax module built from a `MixerConfig` (base.py) and called as
  mixer(x_BxTxD, *, train=False, decode_position=None) -> y_BxTxD.
Without `decode_position` it runs its training form over the whole sequence. With
`decode_position=p`, x holds the tokens at positions p..p+T-1 (T = 1: a step; T > 1: a prefill) and
the mixer continues from the state it keeps in the 'cache' collection: attention its KV cache, the
recurrent mixers their state (and their convolution's last inputs). The cache is created, zeroed,
when the module is initialised with decode_position=0 on a full-length x
(`seqmodels.models.lm.init_cache`). Decoding token by token computes the training form's function
(tests/layers/mixers_test.py). Adding a mixer is one module here and one line below.
"""

import functools

from seqmodels.layers.mixers import attention, cells, gla, mamba, mamba2, mlstm, rglru
from seqmodels.layers.mixers.base import Mixer, MixerConfig

MIXERS: dict[str, Mixer] = {
    'attention': Mixer(attention.Attention, recurrent=False, state_bytes=attention.state_bytes,
                       flops=attention.flops),
    **{cell: Mixer(functools.partial(cells.Cell, cell=cell), recurrent=True,
                   state_bytes=cells.state_bytes_of(cell))
       for cell in ('rnn', 'lstm', 'gru', 'mingru', 'minlstm')},
    'mamba': Mixer(mamba.Mamba, recurrent=True, state_bytes=mamba.state_bytes, flops=mamba.flops),
    'mamba2': Mixer(mamba2.Mamba2, recurrent=True, state_bytes=mamba2.state_bytes,
                    flops=mamba2.flops),
    'rglru': Mixer(rglru.RGLRU, recurrent=True, state_bytes=rglru.state_bytes, flops=rglru.flops),
    'gla': Mixer(gla.GLA, recurrent=True, state_bytes=gla.state_bytes, flops=gla.flops_of(False)),
    'retnet': Mixer(functools.partial(gla.GLA, retnet=True), recurrent=True,
                    state_bytes=gla.state_bytes, flops=gla.flops_of(True)),
    'mlstm': Mixer(mlstm.MLSTM, recurrent=True, state_bytes=mlstm.state_bytes, flops=mlstm.flops),
}

__all__ = ['MIXERS', 'Mixer', 'MixerConfig']
