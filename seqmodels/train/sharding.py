"""Device mesh and shardings: batch split on the `data` axis; parameters replicated, or
FSDP-sharded."""

from __future__ import annotations

import itertools
import logging
import time

import jax
import numpy as np
import orbax.checkpoint as ocp
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
from seqmodels.errors import PeerFailedError

_BARRIERS = itertools.count()  # every process passes the same barriers in the same order
_ARRIVED, _FAILED = 'seqmodels/arrived', 'seqmodels/failed'


def initialize_distributed(dist_cfg) -> None:
  """Joins a multi-process run (one process per host, or several on one host) via
  jax.distributed."""
  if not (dist_cfg.coordinator_address or dist_cfg.auto):
    return
  # CPU processes need a collectives backend to talk to each other; GPUs and TPUs ignore this
  # setting.
  jax.config.update('jax_cpu_collectives_implementation', 'gloo')
  if dist_cfg.coordinator_address:
    jax.distributed.initialize(dist_cfg.coordinator_address, dist_cfg.num_processes,
                               dist_cfg.process_id)
  else:  # cluster auto-detection (SLURM, Open MPI, TPU pods, ...)
    jax.distributed.initialize()
  logging.info('process %d of %d joined', jax.process_index(), jax.process_count())


def wait_for_all_processes(what: str, timeout_s: int = 3600) -> None:
  """Blocks until every process of a multi-process run gets here, or one of them fails on its way.

  Called before the first collective: processes that prepare data at different speeds (a host that
  builds a dataset another host finds built) would otherwise first meet inside a collective, whose
  CPU (gloo) set-up gives up after 30 s with an opaque timeout. A process that fails before it gets
  here says so (`announce_failure`), and the others stop with its reason at once rather than wait
  for it until the timeout.

  The barrier is the coordination service's key-value store, polled: its own `wait_at_barrier`
  cannot be woken by another process's failure.
  """
  if jax.process_count() == 1:
    return
  client = ocp.multihost.get_jax_distributed_client()
  n, me, index = jax.process_count(), jax.process_index(), next(_BARRIERS)
  deadline, pause = time.monotonic() + timeout_s, 0.01
  try:
    client.key_value_set(f'{_ARRIVED}/{index}/{me}', what)
    while True:
      failed = client.key_value_dir_get(f'{_FAILED}/{index}')
      if failed:
        raise PeerFailedError('; '.join(f'process {key.rsplit("/", 1)[-1]} of {n} failed: {reason}'
                                        for key, reason in sorted(failed)))
      arrived = {int(key.rsplit('/', 1)[-1])
                 for key, _ in client.key_value_dir_get(f'{_ARRIVED}/{index}')}
      if len(arrived) == n:
        return
      if time.monotonic() > deadline:
        missing = ', '.join(str(i) for i in range(n) if i not in arrived)
        raise PeerFailedError(f'process {me} of {n} waited {timeout_s} s for process {missing} to '
                              f'finish {what}, and it did not: see its log')
      time.sleep(pause)
      pause = min(2 * pause, 1.0)
  except PeerFailedError:
    raise
  except Exception as e:
    # the coordination service is gone: a peer (or the coordinator, process 0) crashed
    raise PeerFailedError(f'process {me} of {n} lost the other processes while waiting for them to '
                          f'finish {what} ({str(e).splitlines()[0]}): see their logs') from e


def announce_failure(reason: str) -> None:
  """Tells the other processes that this one is failing, with its one-line reason.

  They raise it at the barrier this process will now never reach (the next one in the order all
  processes pass them). This process takes that barrier's place in the order, so a sweep's next
  trial still pairs up.
  """
  if not jax.distributed.is_initialized() or jax.process_count() == 1:
    return
  index = next(_BARRIERS)
  try:
    ocp.multihost.get_jax_distributed_client().key_value_set(
        f'{_FAILED}/{index}/{jax.process_index()}', reason)
  except Exception as e:  # the service is gone too; the others will hear of that from it
    logging.warning('could not tell the other processes of this failure: %s',
                    str(e).splitlines()[0])


def make_mesh() -> Mesh:
  """A 1-D mesh over every device of every process, axis `data`."""
  return Mesh(np.asarray(jax.devices()), ('data',))


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Leading (batch) axis split across `data`."""
  return NamedSharding(mesh, P('data'))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def _fsdp_spec(shape: tuple[int, ...], n: int, min_size: int) -> P:
  """Shards the largest axis divisible by the mesh size, for arrays of at least `min_size`
  elements."""
  if n == 1 or int(np.prod(shape, dtype=np.int64)) < min_size:
    return P()
  for axis in sorted(range(len(shape)), key=lambda a: -shape[a]):
    if shape[axis] % n == 0:
      return P(*[('data' if a == axis else None) for a in range(len(shape))])
  return P()


def state_shardings(abstract_state, mesh: Mesh, fsdp: bool, fsdp_min_size: int):
  """NamedShardings for a state pytree: replicated, or FSDP (ZeRO-3 style) for arrays >=
  fsdp_min_size.

  With FSDP, parameters and the optimizer moments that mirror them are split across `data`; XLA
  inserts the all-gathers before use and reduce-scatters the gradients.
  """
  n = mesh.shape['data']
  def spec(x):
    return NamedSharding(mesh, _fsdp_spec(x.shape, n, fsdp_min_size) if fsdp else P())
  return jax.tree.map(spec, abstract_state)


def global_batch(local_batch: dict[str, np.ndarray],
                 sharding: NamedSharding) -> dict[str, jax.Array]:
  """Assembles each process's rows into one global array sharded on `data`."""
  if jax.process_count() == 1:  # the same result, with less host work per step
    return jax.device_put(local_batch, sharding)
  return {k: jax.make_array_from_process_local_data(sharding, v) for k, v in local_batch.items()}
