"""Device mesh and shardings: batch split on the `data` axis; parameters replicated, or FSDP-sharded."""

from __future__ import annotations

import itertools
import logging

import jax
import numpy as np
import orbax.checkpoint as ocp
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

_BARRIERS = itertools.count()  # every process passes the same barriers in the same order


def initialize_distributed(dist_cfg) -> None:
  """Joins a multi-process run (one process per host, or several on one host) via jax.distributed."""
  if not (dist_cfg.coordinator_address or dist_cfg.auto):
    return
  # CPU processes need a collectives backend to talk to each other; GPUs and TPUs ignore this setting.
  jax.config.update('jax_cpu_collectives_implementation', 'gloo')
  if dist_cfg.coordinator_address:
    jax.distributed.initialize(dist_cfg.coordinator_address, dist_cfg.num_processes, dist_cfg.process_id)
  else:  # cluster auto-detection (SLURM, Open MPI, TPU pods, ...)
    jax.distributed.initialize()
  logging.info('process %d of %d joined', jax.process_index(), jax.process_count())


def wait_for_all_processes(what: str, timeout_s: int = 3600) -> None:
  """Blocks until every process of a multi-process run gets here (the coordination service's barrier).

  Called before the first collective: processes that prepare data at different speeds (a host that builds a
  dataset another host finds built) would otherwise first meet inside a collective, whose CPU (gloo) set-up gives
  up after 30 s with an opaque timeout.
  """
  if jax.process_count() == 1:
    return
  client = ocp.multihost.get_jax_distributed_client()
  try:
    client.wait_at_barrier(f'seqmodels/{what}/{next(_BARRIERS)}', timeout_in_ms=timeout_s * 1000)
  except Exception as e:  # the coordination service's DEADLINE_EXCEEDED or a peer's failure, as an XlaRuntimeError
    raise RuntimeError(f'process {jax.process_index()} of {jax.process_count()} waited for the others to finish '
                       f'{what}, and they did not ({str(e).splitlines()[0]}): see the other processes\' logs') from e


def make_mesh() -> Mesh:
  """A 1-D mesh over every device of every process, axis `data`."""
  return Mesh(np.asarray(jax.devices()), ('data',))


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Leading (batch) axis split across `data`."""
  return NamedSharding(mesh, P('data'))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def _fsdp_spec(shape: tuple[int, ...], n: int, min_size: int) -> P:
  """Shards the largest axis divisible by the mesh size, for arrays of at least `min_size` elements."""
  if n == 1 or int(np.prod(shape, dtype=np.int64)) < min_size:
    return P()
  for axis in sorted(range(len(shape)), key=lambda a: -shape[a]):
    if shape[axis] % n == 0:
      return P(*[('data' if a == axis else None) for a in range(len(shape))])
  return P()


def state_shardings(abstract_state, mesh: Mesh, fsdp: bool, fsdp_min_size: int):
  """NamedShardings for a state pytree: replicated, or FSDP (ZeRO-3 style) for arrays >= fsdp_min_size.

  With FSDP, parameters and the optimizer moments that mirror them are split across `data`; XLA inserts the
  all-gathers before use and reduce-scatters the gradients.
  """
  n = mesh.shape['data']
  def spec(x):
    return NamedSharding(mesh, _fsdp_spec(x.shape, n, fsdp_min_size) if fsdp else P())
  return jax.tree.map(spec, abstract_state)


def global_batch(local_batch: dict[str, np.ndarray], sharding: NamedSharding) -> dict[str, jax.Array]:
  """Assembles each process's rows into one global array sharded on `data`."""
  if jax.process_count() == 1:  # the same result, with less host work per step
    return jax.device_put(local_batch, sharding)
  return {k: jax.make_array_from_process_local_data(sharding, v) for k, v in local_batch.items()}
