"""A CSV logger that appends when a run is resumed.

Lightning's CSVLogger deletes an existing metrics.csv when it opens its folder, so a resumed run would lose
the epochs before the interruption. This one keeps the file and its header, and appends.
"""

import csv

from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch.loggers import csv_logs


class AppendingExperimentWriter(csv_logs.ExperimentWriter):
    def _check_log_dir_exists(self) -> None:
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as file:
                self.metrics_keys = list(csv.DictReader(file).fieldnames or [])


class CSVLogger(csv_logs.CSVLogger):
    @property
    @rank_zero_experiment
    def experiment(self) -> AppendingExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = AppendingExperimentWriter(log_dir=self.log_dir)
        return self._experiment
