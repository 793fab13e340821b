"""What does pre-training buy? BERT fine-tuned, its frozen features (feature extraction), the same
frozen features of a random encoder, the same encoder from scratch, and an LSTM; each at its own
learning rate, 3 seeds.

  python launch.py --config=experiments/configs/bert_pretrain.py:small --workdir=runs/bert_pt
  python launch.py --config=experiments/configs/bert_finetune.py:small --workdir=runs/bert_ft \
      --sweep=experiments/sweeps/bert.py:small,runs/bert_pt
The argument: 'small' for the CPU learning rates, and the pre-training workdir (default
runs/bert_pt). The small rates are the best of a grid on the validation split of the 'scrambled'
task (300 steps, seed 0): fine-tuning {2e-4, 5e-4, 1.5e-3, 4e-3}, feature extraction {1e-2, 3e-2,
1e-1}, from scratch {5e-4, 1.5e-3, 4e-3, 1e-2}, LSTM {1.5e-3, 4e-3, 1e-2, 3e-2} (all at chance; the
middle one kept). The full-size rates have not been tuned.
"""

from seqmodels import sweep

# (model, initialised from the pre-training run, frozen encoder, learning rate small, learning rate
# full)
ARMS = (
    ('bert', True, False, 5e-4, 1e-4),           # full fine-tuning
    ('bert', True, True, 3e-2, 1e-3),            # feature extraction: only the new head learns
    ('bert', False, True, 3e-2, 1e-3),           # the same, on a random encoder: what the features
                                                 # are worth
    ('bert', False, False, 4e-3, 1e-4),          # the same encoder from scratch
    ('lstm_classifier', False, False, 4e-3, 1e-3),
)


def get_sweep(arg: str = ''):
  parts = [p for p in arg.split(',') if p]
  workdirs = [p for p in parts if p != 'small']
  if len(workdirs) > 1:
    raise ValueError(f'bert.py:{arg}: give at most one pre-training workdir (and optionally small)')
  pretrained = workdirs[0] if workdirs else 'runs/bert_pt'
  small = 'small' in parts
  arms = [{'model.name': name, 'train.init_from': pretrained if init else '',
           'optim.freeze': 'bert' if frozen else '', 'optim.lr': lr_small if small else lr_full}
          for name, init, frozen, lr_small, lr_full in ARMS]
  return sweep.product(arms, sweep.seeds(3))
