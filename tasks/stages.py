"""Prefect tasks wrapping ``nas.stages``: one call each, with retries where failure can be transient.

Caching is off: each stage's inputs are files and DVC decides what to rerun.
"""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from nas import stages

_opts = dict(cache_policy=NO_CACHE, persist_result=False)


def transient(task, task_run, state) -> bool:
    """Retry only failures that a second attempt can cure: a lost connection to the Dask
    scheduler or a timed-out network call. A bad config, a missing file, a full disk or a
    read-only file system fails at once (retrying cannot help and would hide the cause)."""
    import errno

    from nas.evaluators.dask import ClusterError

    exc = state.data if isinstance(state.data, BaseException) else None
    if exc is None:
        try:
            state.result(raise_on_failure=True)
        except BaseException as e:  # noqa: BLE001 - only inspected
            exc = e
    if isinstance(exc, (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)):
        return False
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EFBIG):
        return False
    return isinstance(exc, (ClusterError, ConnectionError, TimeoutError, OSError))


prepare_data = task(name="load-and-split", **_opts)(stages.prepare_data)
write_prepared = task(name="write-prepared", retries=2, retry_delay_seconds=1, **_opts)(stages.write_prepared)
pretrain_supernet = task(name="train-supernet", **_opts)(stages.pretrain_supernet)
sample_subnets = task(name="score-sampled-subnets", retries=1, retry_delay_seconds=2, **_opts)(stages.sample_subnets)
fit_surrogate = task(name="fit-surrogate", **_opts)(stages.fit_surrogate)
discard_checkpoint = task(name="discard-checkpoint", **_opts)(stages.discard_checkpoint)
# a retry resumes from the search's checkpoint: completed evaluations are not repeated
run_search = task(name="run-search", retries=2, retry_delay_seconds=5, retry_condition_fn=transient,
                  **_opts)(stages.run_search)
pareto_front = task(name="pareto-front", **_opts)(stages.pareto_front)
clear_models = task(name="clear-previous-models", **_opts)(stages.clear_models)
choose = task(name="apply-selection-rules", **_opts)(stages.choose)
finetune_and_export = task(name="finetune-and-export", task_run_name="finetune-{row[candidate_id]}", retries=1,
                           **_opts)(stages.finetune_and_export)
select_own = task(name="select-tune-export", retries=1, **_opts)(stages.select_own)
write_selection = task(name="write-front-and-reports", retries=2, retry_delay_seconds=1,
                       **_opts)(stages.write_selection)
