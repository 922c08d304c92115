"""One ``orbitai seg predict`` in this process, its wait split by stage (for `benchmarks.bench_predict_command`).

``python benchmarks/predict_command_split.py SPLIT_JSON -- seg predict IMAGE --out OUT`` runs the command as
``python -m orbitai`` does (`orbitai.cli.main`), with the predictor's steps wrapped in timers: the imports of the
command line and the predictor (torch included), the scan read, the judge (the value checks and `orbitai.scan`'s
scan facts), the model load (bundle checksum, ``torch.load``, weight checks), the prediction (`segment`), the
result (volumes, checks) and the writing. Each stage's wall seconds and CPU seconds (``time.process_time``: every
thread of this process) go to ``SPLIT_JSON``, with ``elapsed`` (from this module's first line to the end of the
command): the parent's wall time of the process less ``elapsed`` is the interpreter's start and exit.
"""
from __future__ import annotations

import time

T0, C0 = time.perf_counter(), time.process_time()

import functools  # noqa: E402 - after the clock starts
import importlib  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from typing import Any, Callable  # noqa: E402

#: (module, attribute path, stage): the functions whose calls make each stage; a name a checkout lacks is skipped.
WRAPPED = (("orbitai.predictor", "read_scan", "read"),
           ("orbitai.orbit.predictor", "OrbitPredictor.check_scan", "judge"),
           ("orbitai.predictor", "scan_facts", "judge"),
           ("orbitai.orbit.predict", "load_seg_model", "model"),
           ("orbitai.orbit.predictor", "segment", "prediction"),
           ("orbitai.orbit.predictor", "OrbitPredictor.result", "result"),
           ("orbitai.orbit.result", "SegmentationResult.write", "write"))
STAGES: dict[str, list[float]] = {}


def timed(stage: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` adding its wall and CPU seconds to ``STAGES[stage]`` (outermost calls only: no stage counts twice)."""
    active: list[int] = []

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if active:
            return fn(*args, **kwargs)
        active.append(1)
        t, c = time.perf_counter(), time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            active.pop()
            got = STAGES.setdefault(stage, [0.0, 0.0])
            got[0] += time.perf_counter() - t
            got[1] += time.process_time() - c
    return wrapper


def wrap_stages() -> None:
    for module, path, stage in WRAPPED:
        owner: Any = importlib.import_module(module)
        *parents, name = path.split(".")
        for part in parents:
            owner = getattr(owner, part, None)
        if owner is not None and hasattr(owner, name):
            setattr(owner, name, timed(stage, getattr(owner, name)))


def main() -> None:
    out, argv = sys.argv[1], sys.argv[sys.argv.index("--") + 1:]
    t, c = time.perf_counter(), time.process_time()
    import orbitai.cli
    import orbitai.orbit.cli  # the command's module, imported by the parser
    import orbitai.orbit.predictor  # what the command imports when it runs (torch with it)

    STAGES["imports"] = [time.perf_counter() - t, time.process_time() - c]
    wrap_stages()
    command = orbitai.cli.main

    def timed_main(words: Any = None) -> int:
        t, c = time.perf_counter(), time.process_time()
        code = command(words)
        total = [time.perf_counter() - t, time.process_time() - c]
        inside = [sum(v[i] for k, v in STAGES.items() if k != "imports") for i in (0, 1)]
        STAGES["other"] = [total[0] - inside[0], total[1] - inside[1]]
        with open(out, "w", encoding="utf-8") as f:
            json.dump({"code": code, "stages": STAGES,
                       "elapsed": [time.perf_counter() - T0, time.process_time() - C0]}, f)
        return code

    orbitai.cli.main = timed_main         # the process ends as the command's does (`orbitai.cli.entry`)
    sys.argv = ["orbitai", *argv]
    orbitai.cli.entry()


if __name__ == "__main__":
    main()
