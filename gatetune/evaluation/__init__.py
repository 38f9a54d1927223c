"""Generation-based evaluation of an export, the base-vs-tuned comparison, the cross-run regression gate and
the deployment decision. `evaluate_run` is the step `gatetune/run.py` calls after the export;
`gatetune-eval` (cli.py) runs the same on a finished run directory or any model."""
