"""Does pre-training help? BERT fine-tuned vs feature extraction vs the same encoder from scratch vs an LSTM.

  python launch.py --config=experiments/configs/bert_pretrain.py:small --workdir=runs/bert_pt
  python launch.py --config=experiments/configs/bert_finetune.py:small --workdir=runs/bert_ft \
      --sweep=experiments/sweeps/bert.py:runs/bert_pt
The argument is the pre-training workdir (default runs/bert_pt); every trial shares the fine-tuning data.
"""

from seqmodels import sweep


def get_sweep(pretrained: str = 'runs/bert_pt'):
  return sweep.zip_(
      sweep.sweep('model.name', ['bert', 'bert', 'bert', 'lstm_classifier']),
      sweep.sweep('train.init_from', [pretrained, pretrained, '', '']),
      sweep.sweep('optim.freeze', ['', 'bert', '', '']),
  )
