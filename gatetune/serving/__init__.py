"""Serving an export: vLLM's OpenAI server with the right flags (`plan`, `server`), a bounded load test
(`loadtest`) and served parity against transformers (`parity`); `gatetune serve` and `gatetune loadtest`
(`cli`)."""
