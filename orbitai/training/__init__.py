"""Training across processes and runs: starting the ranks of one command (`orbitai.training.launch`, ``--nproc``
and torchrun), the data-parallel pieces every training shares (`orbitai.training.distributed`: process group,
global batch, wrapped layers) and the checksummed checkpoints and caches an interrupted run resumes from
(`orbitai.training.checkpoint`)."""
