"""What every seqmodels command line shares: a one-line error on stderr, exit code 2.

A leaf module (it imports nothing from seqmodels), so any CLI can use it without loading JAX.
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn


def fail(message: str) -> NoReturn:
  """A command line's one-line error, exit code 2."""
  print(f'error: {message}', file=sys.stderr)
  sys.exit(2)


class ArgumentParser(argparse.ArgumentParser):
  """argparse with its errors (an unknown flag, a value that does not parse) as one line, like every
  other."""

  def error(self, message: str) -> NoReturn:
    fail(f'{message} (see --help)')
