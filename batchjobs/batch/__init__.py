"""Batch jobs in the Spring Batch style: steps of chunked read -> process -> write, skip and
retry, flows, restart from the last checkpoint. No Celery or DRF here: the worker runs a job
through batchjobs/execution/batch_job.py.

    from batchjobs.batch import JobBuilder, batch_job, chunk_step

    @batch_job("customers.import", parameters_schema={...}, identifying=["file"])
    def customers_import() -> Job:
        load = chunk_step("load", reader=..., writer=..., chunk_size=1000)
        return JobBuilder().start(load).build()
"""

from .job import (
    END,
    FAIL,
    STOP,
    ChunkStep,
    Decider,
    Job,
    JobBuilder,
    PartitionStep,
    RepeatStatus,
    StepContext,
    TaskletStep,
    chunk_step,
    decider,
    partition_step,
    tasklet_step,
)
from .listeners import ChunkListener, ItemListener, JobListener, SkipListener, StepListener
from .policies import RetryPolicy, SkipLimitExceeded, SkipPolicy
from .protocols import ItemProcessor, ItemReader, ItemStream, ItemWriter
from .registry import batch_job, batch_job_get, batch_job_names

__all__ = [
    "END", "FAIL", "STOP", "ChunkListener", "ChunkStep", "Decider", "ItemListener",
    "ItemProcessor", "ItemReader", "ItemStream", "ItemWriter", "Job", "JobBuilder",
    "JobListener", "PartitionStep", "RepeatStatus", "RetryPolicy", "SkipLimitExceeded",
    "SkipListener", "SkipPolicy", "StepContext", "StepListener", "TaskletStep", "batch_job",
    "batch_job_get", "batch_job_names", "chunk_step", "decider", "partition_step", "tasklet_step",
]  # fmt: skip
