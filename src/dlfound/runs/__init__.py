"""From a composed config to a run folder and back: building data, task and trainer; fitting and testing;
results.json; resume and requeue; checkpoints, callbacks, loggers and the console; sweep jobs and the GPUs they
hold; run records (reading, grouping by seed, curves, the best checkpoint), figures, and what the commands that
read runs measure (compare, guided, ensemble, ntk-scaling)."""
