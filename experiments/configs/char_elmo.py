"""ELMo (Peters et al. 2018): a byte-level biLM pre-trained on a local text file, then its frozen
features classify.

get_config('SIZE,STAGE'), both optional: SIZE 'small' is CPU-sized (minutes on 2 cores); STAGE
'classify' is the downstream task: is a line of data.path real, or are the inner letters of its
words scrambled (data.source= 'scrambled', as bert_finetune.py)? The harder word-order task,
data.source='shuffled', left every arm at chance in 300 steps (docs/results/elmo_small/README.md).
  python launch.py --config=experiments/configs/char_elmo.py:small --workdir=runs/elmo \
      --config.data.path=../shared/data/tinyshakespeare.txt              # pre-train the biLM
  python launch.py --config=experiments/configs/char_elmo.py:small,classify \
      --workdir=runs/elmo_cls \
      --config.data.path=../shared/data/tinyshakespeare.txt --config.train.init_from=runs/elmo
The classifier learns only the scalar mix and its head (optim.freeze=elmo); `--config.optim.freeze=`
fine-tunes the biLM too, and leaving out init_from gives the frozen-random-biLM baseline. The biLM
fields (width, layers, cell) must match the pre-training run's. Tokens are UTF-8 bytes
(data.byte_level), the ids of the classification data.
"""

from experiments.configs.base import get_base_config

STAGES = ('pretrain', 'classify')


def get_config(arg: str = ''):
  parts = [p for p in arg.split(',') if p]
  unknown = [p for p in parts if p not in ('small', *STAGES)]
  if unknown:
    raise ValueError(f'char_elmo.py:{arg}: unknown {unknown}; use small and/or one of {STAGES}')
  small = 'small' in parts
  c = get_base_config()
  c.data.name, c.data.path, c.data.byte_level = 'text', '', True
  c.data.seq_len = 64 if small else 128
  c.model.name, c.model.cell = 'elmo', 'lstm'
  c.model.width, c.model.layers, c.model.dropout = (128, 2, 0.0) if small else (512, 2, 0.1)
  c.optim.lr, c.optim.warmup_steps, c.optim.weight_decay = ((1e-2, 50, 0.1) if small
                                                            else (2e-3, 200, 0.1))
  c.train.num_steps, c.train.batch_size = (600, 32) if small else (5_000, 64)
  c.train.eval_every = c.train.checkpoint_every = 300 if small else 1_000
  c.train.eval_batches = 20 if small else 50
  if 'classify' in parts:
    c.model.name = 'elmo_classifier'
    c.data.name, c.data.source, c.data.byte_level = 'classify', 'scrambled', False
    c.optim.freeze = 'elmo'  # feature extraction: only the scalar mix and the head learn
    c.train.init_from = ''   # the pre-training workdir, e.g. runs/elmo
    c.optim.lr, c.optim.warmup_steps, c.optim.weight_decay = 2e-3, 20, 0.01
    c.train.num_steps = 300 if small else 2_000
    c.train.eval_every = c.train.checkpoint_every = 150 if small else 500
    c.train.eval_batches = 0
  return c
