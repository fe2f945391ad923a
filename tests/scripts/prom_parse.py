#!/usr/bin/env python3
"""Parses Prometheus text exposition format from stdin with the official
Python client's parser and prints every sample as JSON lines:
{"family": ..., "type": ..., "name": ..., "labels": {...}, "value": ...}.
Exits non-zero (with the parser's error) when the text does not parse."""
import json
import sys

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    sys.exit("python module prometheus_client is missing: pip install prometheus_client (.ci/run does)")

text = sys.stdin.read()
for fam in text_string_to_metric_families(text):
    if not fam.documentation:
        sys.exit(f"metric family {fam.name} has no HELP text")
    for s in fam.samples:
        print(json.dumps({"family": fam.name, "type": fam.type, "name": s.name,
                          "labels": s.labels, "value": s.value}))
