"""Data-quality gates that run on their own or before training. Imports no torch."""

from data_checks.config import ChecksConfig, TemplateGateConfig
from data_checks.errors import DataError
from data_checks.formats import FORMATS, detect_format, record_problems
from data_checks.gates import run_gates, run_gates_streamed
from data_checks.records import LoadedData, iter_records, read_records
from data_checks.report import summary_table, write_json_atomic

__all__ = ["FORMATS", "ChecksConfig", "DataError", "LoadedData", "TemplateGateConfig", "detect_format",
           "iter_records", "read_records", "record_problems", "run_gates", "run_gates_streamed", "summary_table",
           "write_json_atomic"]
