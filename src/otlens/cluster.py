"""Where parallel work runs: a Dask client on a local cluster, an existing scheduler, or SLURM.

Sweeps (:mod:`otlens.sweep`), the book's chapters (:func:`otlens.runner.build_book`) and the HOT
grid (``hot_align(..., client=...)``) submit their tasks to a :class:`distributed.Client`.
:func:`dask_client` gives one:

- with an address (``tcp://HOST:8786``, or ``DASK_SCHEDULER_ADDRESS`` when none is given), a
  client of that existing cluster; an unreachable address fails within ``connect_timeout``
  seconds with :class:`ClusterError`;
- otherwise a :class:`distributed.LocalCluster` with one single-threaded worker process per core,
  bound to 127.0.0.1 (nothing listens on other interfaces), closed on exit.

Workers started by a Dask nanny (the local cluster's, and ``dask worker``'s by default) set
``OMP_NUM_THREADS=1`` (``distributed.nanny.pre-spawn-environ``), which the notebooks' kernels
inherit: each task computes on one core, and parallelism comes from the workers.

:func:`slurm_cluster` builds a ``dask_jobqueue.SLURMCluster`` (the optional extra
``otlens[cluster]``) with the same layout: one single-threaded worker process per core of a job.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
from typing import Any, Iterator

__all__ = ["ClusterError", "DEFAULT_CONNECT_TIMEOUT", "dask_client", "dashboard_link", "scheduler_address",
           "slurm_cluster"]

DEFAULT_CONNECT_TIMEOUT = 10.0  #: seconds to reach an existing scheduler before giving up
SCHEDULER_ENV = "DASK_SCHEDULER_ADDRESS"  #: the environment variable naming an existing scheduler
_PROTOCOLS = ("tcp", "tls", "ucx", "ws", "wss", "inproc")


class ClusterError(RuntimeError):
    """The Dask scheduler could not be reached, or its address is malformed."""


def scheduler_address(address: str | None = None) -> str | None:
    """The scheduler to use: ``address``, else ``$DASK_SCHEDULER_ADDRESS``, else ``None`` (a local cluster).

    A bare ``HOST:PORT`` gets the ``tcp://`` protocol.

    Parameters
    ----------
    address : str, optional
        ``[PROTOCOL://]HOST:PORT`` of a Dask scheduler.

    Returns
    -------
    str or None
        The address with its protocol, or ``None`` for a local cluster.

    Raises
    ------
    ClusterError
        If the address is not ``[PROTOCOL://]HOST:PORT`` with a known protocol.
    """
    address = (address or os.environ.get(SCHEDULER_ENV) or "").strip() or None
    if address is None:
        return None
    if "://" not in address:
        address = "tcp://" + address
    protocol, _, location = address.partition("://")
    host, _, port = location.rpartition(":")
    if protocol not in _PROTOCOLS or (protocol != "inproc" and (not host or not port.isdigit())):
        raise ClusterError(f"Dask scheduler address {address!r} is not PROTOCOL://HOST:PORT "
                           f"(e.g. tcp://10.0.0.5:8786; protocols: {', '.join(_PROTOCOLS)}).")
    return address


@contextlib.contextmanager
def dask_client(address: str | None = None, *, n_workers: int | None = None,
                connect_timeout: float = DEFAULT_CONNECT_TIMEOUT, dashboard: bool = True,
                allowed_failures: int | None = None) -> Iterator[Any]:
    """A :class:`distributed.Client` of an existing scheduler, or of a local cluster started here.

    Parameters
    ----------
    address : str, optional
        Scheduler address (``tcp://HOST:8786``); default ``$DASK_SCHEDULER_ADDRESS``, and without
        either a :class:`~distributed.LocalCluster` is started.
    n_workers : int, optional
        Local cluster only: worker processes (default: one per core), each single-threaded.
    connect_timeout : float
        Seconds to reach an existing scheduler.
    dashboard : bool
        Local cluster only: serve the Dask dashboard on a free port of 127.0.0.1 (needs
        ``bokeh``; without it there is no dashboard and no error). Without, the scheduler's
        HTTP server (health checks) takes a free port.
    allowed_failures : int, optional
        Local cluster only: how many workers may die running one task before it is given up
        (``distributed.scheduler.allowed-failures``; an existing scheduler keeps its own setting).

    Yields
    ------
    distributed.Client
        Closed on exit, with the local cluster if one was started.

    Raises
    ------
    ClusterError
        If the scheduler cannot be reached within ``connect_timeout`` seconds.
    """
    import dask
    from distributed import Client, LocalCluster

    address = scheduler_address(address)
    if address is not None:
        try:
            client = Client(address, timeout=f"{float(connect_timeout)}s", set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise ClusterError(
                f"Could not reach the Dask scheduler at {address} within {connect_timeout:g} s ({exc}). "
                f"Check that `dask scheduler` runs there and the port is open, or give no --scheduler "
                f"(and unset {SCHEDULER_ENV}) to run on a local cluster."
            ) from exc
        try:
            yield client
        finally:
            client.close()
        return
    n_workers = int(n_workers or os.cpu_count() or 1)
    if n_workers < 1:
        raise ValueError(f"`n_workers` must be >= 1; got {n_workers}")
    config = {} if allowed_failures is None else {"distributed.scheduler.allowed-failures": int(allowed_failures)}
    with dask.config.set(config):
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                               scheduler_port=0, dashboard_address="127.0.0.1:0",
                               scheduler_kwargs={"dashboard": bool(dashboard)})
        try:
            client = Client(cluster, set_as_default=False)
            try:
                yield client
            finally:
                client.close()
        finally:
            cluster.close()


def _has_bokeh() -> bool:
    return importlib.util.find_spec("bokeh") is not None


def dashboard_link(client: Any) -> str | None:
    """The address of the cluster's Dask dashboard, or ``None`` when it serves none.

    The scheduler's HTTP server serves the dashboard only where ``bokeh`` is installed (without
    it, the page says to install it): that is asked of the scheduler.

    Parameters
    ----------
    client : distributed.Client
        A client of the cluster.

    Returns
    -------
    str or None
        The dashboard's URL, or ``None``.
    """
    try:
        services = client.scheduler_info().get("services", {})
        if "dashboard" not in services or not client.run_on_scheduler(_has_bokeh):
            return None
    except Exception:  # the scheduler went away, or refuses to run functions
        return None
    return client.dashboard_link


def slurm_cluster(*, cores: int = 8, memory: str = "32GB", walltime: str = "02:00:00",
                  queue: str | None = None, account: str | None = None, python: str | None = None,
                  job_extra_directives: list[str] | None = None, **kwargs: Any) -> Any:
    """A ``dask_jobqueue.SLURMCluster`` whose jobs each run ``cores`` single-threaded workers.

    Nothing is submitted until ``cluster.scale(jobs=N)`` (or ``cluster.adapt``); give its
    ``scheduler_address`` to ``otlens sweep --scheduler`` or use the cluster in Python::

        from distributed import Client
        from otlens.cluster import slurm_cluster
        from otlens.sweep import run_sweep

        cluster = slurm_cluster(cores=16, memory="64GB", queue="gpu", walltime="04:00:00")
        cluster.scale(jobs=4)                     # 4 nodes x 16 workers
        run_sweep("notebooks/01_ot_across_depth.md", {"seed": [0, 1, 2]},
                  scheduler=cluster.scheduler_address)

    The workers must see the project folder (a shared file system) and run the same environment
    (``python``, default this interpreter).

    Parameters
    ----------
    cores, memory, walltime, queue, account :
        Per job: ``cores`` worker processes of one thread each sharing ``memory``.
    python : str, optional
        The workers' interpreter (default :data:`sys.executable`).
    job_extra_directives : list of str, optional
        More ``#SBATCH`` options, e.g. ``["--gres=gpu:1"]``.
    **kwargs
        Passed to ``SLURMCluster``.

    Returns
    -------
    dask_jobqueue.SLURMCluster
        The cluster, with no job submitted yet.

    Raises
    ------
    ImportError
        If ``dask-jobqueue`` is not installed (``pip install 'otlens[cluster]'``).
    """
    import sys

    try:
        from dask_jobqueue import SLURMCluster
    except ImportError as exc:
        raise ImportError("slurm_cluster needs dask-jobqueue: pip install 'otlens[cluster]'") from exc
    if int(cores) < 1:
        raise ValueError(f"`cores` must be >= 1; got {cores}")
    return SLURMCluster(cores=int(cores), processes=int(cores), memory=memory, walltime=walltime, queue=queue,
                        account=account, python=python or sys.executable,
                        job_extra_directives=list(job_extra_directives or []), **kwargs)
