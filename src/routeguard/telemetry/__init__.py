"""Telemetry at the edge: Prometheus metrics (`metrics`), JSON event logs (`logs`), OpenTelemetry spans
(`tracing`). Import the submodule you need; `import routeguard` loads none of them."""
