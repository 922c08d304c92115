"""Running ``orbitai`` commands in other processes, for the front ends (Slicer, the browser, the annotation
tools' model prior): a one-shot child (`orbitai.jobs.child`: the command's process group, its progress lines,
its result folder, cancel) and the warm worker's parent side (`orbitai.jobs.warm`: the same interface on a
long-lived ``python -m orbitai.worker``). The progress protocol and cancel signals are `orbitai.progress`."""
