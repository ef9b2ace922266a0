"""Sweeps over GAN variants: W&B sweep YAMLs run by `wandb agent` or, with no server, locally.

    wandb sweep sweeps/losses.yaml && wandb agent ENTITY/PROJECT/ID   # W&B's server proposes trials
    python -m gan_platform.sweep sweeps/losses.yaml --count 8         # W&B's engine, run here

`spec` reads and checks a sweep YAML and builds a trial's command line as the agent does;
`runner` is the local agent; `state` the sweep dir's record; `leaderboard` ranks the trials;
`agent` is what a trial started by `wandb agent` adds to its own config.
A package rather than one `sweep.py`: checking a YAML, running trials, recording them and ranking
them are separate ideas, each small. Importing this package is cheap: the `sweeps` engine and wandb load only when a sweep runs.
"""
