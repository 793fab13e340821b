"""Hugging Face checkpoints in and out of seqmodels runs.

  python -m seqmodels.hf import SOURCE --workdir=W [--text=FILE] [--seq_len=N]
  python -m seqmodels.hf export WORKDIR OUT_DIR [--architecture=NAME]
  python -m seqmodels.hf score WORKDIR [--windows=N]

SOURCE is a directory save_pretrained wrote (config.json + *.safetensors), or online a hub name
(gpt2). `import` writes W as a finished run at step 0: fine-tune it with
`launch.py --config=experiments/configs/hf.py:W`, or any config with --config.train.init_from=W.
`export` writes a run's latest parameters for `AutoModel*.from_pretrained(OUT_DIR)`. `score` prints
an LM run's validation loss computed by seqmodels and by transformers.
"""

from __future__ import annotations

import json

from seqmodels import cli, errors


def main(argv: list[str] | None = None) -> None:
  parser = cli.ArgumentParser(prog='python -m seqmodels.hf', description=__doc__.splitlines()[0])
  commands = parser.add_subparsers(dest='command', required=True)
  imp = commands.add_parser('import', help='a checkpoint -> a seqmodels workdir')
  imp.add_argument('source', help='checkpoint directory (or a hub name, online)')
  imp.add_argument('--workdir', required=True, help='the run directory to write')
  imp.add_argument('--text', default='', help='local text file its config names (LMs: data.path)')
  imp.add_argument('--seq_len', type=int, default=0,
                   help='window length of its config (default: min(positions, 128))')
  exp = commands.add_parser('export', help='a seqmodels workdir -> a checkpoint')
  exp.add_argument('workdir')
  exp.add_argument('out')
  exp.add_argument('--architecture', default='', help='where several convert the model family')
  sco = commands.add_parser('score', help="an LM run's loss in seqmodels and in transformers")
  sco.add_argument('workdir')
  sco.add_argument('--windows', type=int, default=64, help='validation windows scored')
  args = parser.parse_args(argv)
  try:
    from seqmodels.hf import workdirs
  except ImportError as e:
    cli.fail(f'{e.name or e} is missing: the Hugging Face interop needs the [hf] extra: '
             "pip install -e '.[hf]'")
  try:
    if args.command == 'import':
      cli.check_writable(args.workdir, '--workdir', directory=True)
      config = workdirs.import_checkpoint(args.source, args.workdir, args.text, args.seq_len)
      print(f'imported {args.source} as a {config.model.name} run in {args.workdir}: fine-tune it '
            f'with launch.py --config=experiments/configs/hf.py:{args.workdir} '
            '--workdir=NEW_DIR')
    elif args.command == 'export':
      cli.check_writable(args.out, 'OUT_DIR', directory=True)
      hf_config = workdirs.export_run(args.workdir, args.out, args.architecture)
      print(f'exported {args.workdir} as {hf_config["architectures"][0]} to {args.out}')
    else:
      print(json.dumps(workdirs.score(args.workdir, args.windows)))
  except errors.SeqmodelsError as e:
    cli.fail(str(e))
  except ImportError as e:
    cli.fail(f'{e.name or e} is missing: pip install -e \'.[hf]\' (score also needs torch)')


if __name__ == '__main__':
  main()
