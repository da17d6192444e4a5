"""Past one process: torchrun / ``torch.distributed`` (gloo on CPU, NCCL on GPU).

- ``context``: who this process is (rank, world size, device) once torchrun has launched it;
- ``jobs``: independent jobs (the gain experiment's draws, sharded output) spread over the ranks, results
  gathered in job order, a failure on one rank raised on every rank;
- ``output``: one output folder written by every rank (shared staging, shares of the images, agreed failure);
- ``data_parallel``: one training batch split over the ranks (DistributedDataParallel).

Without torchrun every function here is the single-process identity, so library callers need not care.
"""
