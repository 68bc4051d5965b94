"""From a composed config to a run folder: building data, task and trainer; fitting and testing; results.json;
resume and requeue; checkpoints, callbacks, loggers and the console; sweep jobs and the GPUs they hold."""
