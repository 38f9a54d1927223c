"""The near-duplicate and PII gates beyond one process: the same gate code as stages of a datatrove pipeline,
run by its local executor (processes of this machine) or its SLURM executor (job arrays), with files in a work
directory between the stages, so a stage that dies is re-run alone and finished tasks are skipped.

`engine.make_plan` fixes a run (shards, task counts, settings), `engine.run_distributed` runs it, `stages` has
the pipeline steps, `merge` builds the report, `shards` cuts a JSONL file into byte ranges. docs/distributed_gates.md
says why datatrove and how this is tested. Imported only with `data-checks --engine`: datatrove is needed then.
"""
