"""The end-to-end CTD pipeline (``python -m ctdkit.pipeline``)."""

from ctdkit.pipeline.run import PipelineConfig, run_pipeline

__all__ = ["PipelineConfig", "run_pipeline"]
