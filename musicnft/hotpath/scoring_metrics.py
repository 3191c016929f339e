"""The model scorer's counters as CloudWatch metrics, through the Embedded Metric Format (EMF).

A Lambda's stdout goes to CloudWatch Logs, and CloudWatch turns any log line in EMF into metrics
without an API call, an extra permission or added latency. So the consumer prints one EMF line per
invocation in which the scorer's counters moved: `SentimentFallbackRows` (posts left with VADER
only because the SageMaker endpoint failed; the batch path re-scores them) is then a real metric an
alarm can watch, not a number in one container's memory.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

NAMESPACE = "musicnft"
# Counter name in ScoringStats -> metric name.
METRICS = {
    "endpoint_calls": "SentimentEndpointCalls",
    "endpoint_failures": "SentimentEndpointFailures",
    "fallback_rows": "SentimentFallbackRows",
}


def counter_delta(now: Mapping[str, int], before: Mapping[str, int]) -> dict[str, int]:
    """How much each exported counter moved since `before` (zero-moves left out)."""
    out = {}
    for name in METRICS:
        moved = int(now.get(name, 0)) - int(before.get(name, 0))
        if moved > 0:
            out[name] = moved
    return out


def emf_line(delta: Mapping[str, int], function_name: str, timestamp_ms: int) -> str | None:
    """One EMF JSON line for `delta`, or None when nothing moved (no line, no metric cost)."""
    if not delta:
        return None
    doc: dict[str, Any] = {
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [
                {
                    "Namespace": NAMESPACE,
                    "Dimensions": [["FunctionName"]],
                    "Metrics": [{"Name": METRICS[name], "Unit": "Count"} for name in delta],
                }
            ],
        },
        "FunctionName": function_name,
    }
    for name, value in delta.items():
        doc[METRICS[name]] = value
    return json.dumps(doc, separators=(",", ":"))
