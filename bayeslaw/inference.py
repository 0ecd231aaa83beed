"""Former name of :mod:`bayeslaw.serving` (inference-aware allocation: training plus serving cost), kept for one
release so ``from bayeslaw.inference import inference_optimal`` still works; import from ``bayeslaw.serving``.
It does not warn on import: parts of the test suite turn warnings into errors."""

from bayeslaw.serving import LOG_HUGE, inference_optimal

__all__ = ["LOG_HUGE", "inference_optimal"]
