"""Cost vs length: training step time and memory for T = 128 ... 8192, per architecture
(seqmodels/analysis/cost.py).

RNN/LSTM/GRU scan over T sequentially, minGRU/minLSTM by a parallel (associative) scan, GPT attends
over all T (quadratic FLOPs; with the cuDNN kernel on GPU in bfloat16, linear memory). Every model
gets the same width, layers and batch of random tokens; only T changes. The model list and the
lengths are config fields:
  python -m seqmodels.analysis.cost --config=experiments/configs/cost_vs_length.py:small \
      --config.cost.models=lstm,gpt --config.cost.seq_lens=128,1024 --out=runs/cost
get_config('small') is the CPU size (T <= 2048, width 128); get_config() the GPU size (one 80 GB
H100).
"""

import ml_collections

from experiments.configs.base import get_base_config
from seqmodels.sweep import variant


def get_config(arg: str = ''):
  size = variant(arg, ['small', 'full'], 'full', 'cost_vs_length.py')
  c = get_base_config()
  c.model.name = 'lstm'            # replaced by each of cost.models in turn
  c.model.layers, c.model.dropout = 2, 0.0
  c.model.min_scan = 'parallel'    # minGRU/minLSTM by the associative scan everywhere: the cost
                                   # this experiment is about
  c.optim.warmup_steps = 0         # the schedule does not change the cost of a step

  c.cost = ml_collections.ConfigDict()
  # comma-separated registry names of language models
  c.cost.models = 'rnn,lstm,gru,mingru,minlstm,gpt'
  c.cost.seq_lens = '128,256,512,1024,2048,4096,8192'  # comma-separated T, measured in this order
                                                       # per model
  c.cost.vocab_size = 256          # V of the random tokens (byte-sized)
  c.cost.warmup_steps = 2          # untimed steps after compilation
  c.cost.timed_steps = 10          # steps timed one by one; step_ms is their median
  c.cost.case_budget_s = 300.0     # seconds of steps per (model, T) (compilation is timed apart);
                                   # over it: null
  c.cost.isolate = True            # each case in its own process: a clean device peak, a hard time
                                   # limit, and an out-of-memory crash costs that case only
  # 30 cases, mostly compilation: 16.5 min (7.5 min of CPU) on 2 cores shared with other jobs
  if size == 'small':
    c.cost.seq_lens = '128,256,512,1024,2048'
    c.cost.warmup_steps, c.cost.timed_steps, c.cost.case_budget_s, c.cost.isolate = (
        1, 3, 60.0, False)
    c.model.width, c.model.heads = 128, 4
    c.train.batch_size, c.train.dtype = 8, 'float32'
  else:  # GPT: 16 x 8192 tokens, bfloat16 through cuDNN attention, about 10 GB of activations
    c.model.width, c.model.heads = 1024, 16  # head size 64 (cuDNN needs a multiple of 8, <= 256)
    c.model.unroll = 8               # sequential scans: 8 steps per loop iteration (DESIGN.md, H100
                                     # facts)
    c.train.batch_size, c.train.dtype = 16, 'bfloat16'
  return c
