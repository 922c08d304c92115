"""Running ``orbitai`` commands in other processes, for the front ends (Slicer, the browser, the annotation
tools' model prior): a one-shot child (`orbitai.jobs.child`: the command's process group, its progress lines,
its result folder, cancel) and the warm worker's parent side (`orbitai.jobs.warm`: the same interface on a
long-lived ``python -m orbitai.worker``), both started and ended by `orbitai.jobs.process` (interpreter,
environment, process group, kill, how a child ended); a job's input files are written by `orbitai.jobs.inputs`
(a slab per GUI timer tick). The progress protocol and cancel signals are `orbitai.progress`."""
