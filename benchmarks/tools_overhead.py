"""What the training tools cost a run that does not use them, as a fraction of one iteration.

    python benchmarks/tools_overhead.py [--iterations 300]

Builds a ring8 run (MLPs 3 x 128, batch 64: the platform's cheapest iteration, where a fixed cost
shows most) through `gan_platform.run`'s builders and times, in the same process, (a) one
`Trainer.iteration()` with the tools off and (b) the work the tools add to it when off: deciding
whether this iteration measures health (`measure_health`), the task's two `if measure_health`
tests and the trainer's `if self.ema is not None`. Prints (b) / (a). With EMA or health
measurement on, the added work is the EMA's two foreach kernels per generator step and, on one
iteration per log window, the gradient norms and accuracies; these print too.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--iterations", type=int, default=300)
    args = p.parse_args()
    import torch
    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf

    from gan_platform.run import build_dataset, build_evaluator, build_task, make_accelerator
    from gan_platform.runs.rundir import RunDir
    from gan_platform.tracking import Tracker
    from gan_platform.training.trainer import Trainer

    torch.set_num_threads(1)
    with initialize_config_module(config_module="gan_platform.conf", version_base="1.3"):
        cfg = compose("config", overrides=["dataset=ring8", "model=mlp", "tracker=none", "report=false",
                                           "trainer.progress=false", "trainer.steps=100000"])

    def trainer(ema: float, log_every: int = 50) -> Trainer:
        c = cfg.copy()
        c.trainer.ema.decay, c.trainer.log_every = ema, log_every
        acc = make_accelerator(c)
        dataset = build_dataset(c, acc)
        task = build_task(c, dataset, acc)
        return Trainer(accelerator=acc, task=task, dataset=dataset, run_dir=RunDir(Path(tempfile.mkdtemp())),
                       cfg=c.trainer, eval_cfg=c.eval, evaluator=build_evaluator(c, dataset, task, acc),
                       tracker=Tracker(), seed=0, config=OmegaConf.to_container(c))

    def per_iteration(t: Trainer) -> float:
        for _ in range(20):
            t.iteration()
        start = time.perf_counter()
        for _ in range(args.iterations):
            t.iteration()
        return (time.perf_counter() - start) / args.iterations

    off = trainer(0.0)
    iteration = min(per_iteration(off) for _ in range(3))
    task = off.task
    added = min(timeit.repeat(lambda: (setattr(task, "measure_health", off._logs_after(off.step + 1)),
                                       task.measure_health, task.measure_health, off.ema is not None),
                              number=10_000, repeat=5)) / 10_000
    print(f"ring8 iteration, tools off: {iteration * 1e6:.0f} us; the tools' checks: {added * 1e6:.2f} us "
          f"= {added / iteration:.5f} of an iteration")
    ema_on = trainer(0.999)
    with_ema = min(per_iteration(ema_on) for _ in range(3))
    print(f"with trainer.ema.decay=0.999: {with_ema * 1e6:.0f} us an iteration, ratio to off {with_ema / iteration:.3f}")
    health = min(per_iteration(trainer(0.0, log_every=1)) for _ in range(3))  # step stays 0: every iteration measures
    print(f"health signals on every iteration (the loop measures them on one in log_every): {health * 1e6:.0f} us, "
          f"ratio to off {health / iteration:.3f}")


if __name__ == "__main__":
    main()
