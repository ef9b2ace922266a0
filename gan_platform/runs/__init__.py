"""A run on disk: its run dir (rundir.py: metrics.jsonl, summary.json, the lock), its checkpoints
(checkpoint.py: written atomically, verified, resumed), its metric names and their directions
(metrics.py), and loading a trained model from a checkpoint alone (loading.py). Below training,
evaluation and tracking: it imports none of them."""
