#!/usr/bin/python3
"""Writes sidecar.json, the Grafana dashboard (schema 38, Grafana 10) for
sidecar's Prometheus metrics. Edit here, run, commit both:
    python3 deploy/grafana/generate.py
Panel queries use Grafana's $job, $instance and $__rate_interval; the test
(test/integration/test_grafana.py) substitutes them and evaluates every one
against a real Prometheus."""
import json
import os

R = "$__rate_interval"


def sel(extra=""):
    inner = 'job=~"$job", instance=~"$instance"' + (", " + extra if extra else "")
    return "{" + inner + "}"


FIVE = sel('code_class="5xx"')
DS = {"type": "prometheus", "uid": "${datasource}"}
panels = []


def row(title, y):
    panels.append({"type": "row", "title": title, "id": len(panels) + 1, "collapsed": False,
                   "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": []})


def panel(title, exprs, x, y, w=12, h=8, unit="short", kind="timeseries"):
    targets = []
    for i, (expr, legend) in enumerate(exprs):
        t = {"datasource": DS, "expr": expr, "legendFormat": legend, "refId": chr(65 + i)}
        if kind == "heatmap":
            t["format"] = "heatmap"
        targets.append(t)
    p = {"type": kind, "title": title, "id": len(panels) + 1, "datasource": DS,
         "gridPos": {"h": h, "w": w, "x": x, "y": y}, "targets": targets,
         "fieldConfig": {"defaults": {"unit": unit}, "overrides": []}, "options": {}}
    if kind == "heatmap":
        p["options"] = {"calculate": False, "yAxis": {"unit": "s"}, "cellGap": 1,
                        "color": {"scheme": "Oranges", "mode": "scheme"}}
    panels.append(p)


y = 0
row("Traffic", y); y += 1
panel("Requests per second by listener",
      [(f"sum by (listener) (rate(sidecar_http_requests_total{sel()}[{R}]))", "{{listener}}")],
      0, y, unit="reqps")
panel("Requests per second by status class",
      [(f"sum by (code_class) (rate(sidecar_http_requests_total{sel()}[{R}]))", "{{code_class}}")],
      12, y, unit="reqps"); y += 8
panel("Active requests and connections",
      [(f"sum by (listener) (sidecar_http_requests_active{sel()})", "requests {{listener}}"),
       (f"sum by (listener) (sidecar_downstream_connections_active{sel()})",
        "connections {{listener}}")], 0, y)
panel("Body bytes per second",
      [(f"sum by (route) (rate(sidecar_http_response_body_bytes_total{sel()}[{R}]))", "sent {{route}}"),
       (f"sum by (route) (rate(sidecar_http_request_body_bytes_total{sel()}[{R}]))",
        "received {{route}}")], 12, y, unit="Bps"); y += 8
row("Errors", y); y += 1
panel("5xx ratio by route",
      [(f"sum by (route) (rate(sidecar_http_requests_total{FIVE}[{R}])) / "
        f"sum by (route) (rate(sidecar_http_requests_total{sel()}[{R}]))", "{{route}}")],
      0, y, unit="percentunit")
panel("Rejected and reset requests",
      [(f"sum by (reason) (rate(sidecar_http_rejected_requests_total{sel()}[{R}]))", "rejected {{reason}}"),
       (f"sum by (route) (rate(sidecar_http_requests_reset_total{sel()}[{R}]))", "reset {{route}}")],
      12, y, unit="reqps"); y += 8
row("Latency", y); y += 1
panel("Request duration (heatmap)",
      [(f"sum by (le) (rate(sidecar_http_request_duration_seconds_bucket{sel()}[{R}]))", "{{le}}")],
      0, y, kind="heatmap")
panel("p50 / p90 / p99 by route",
      [(f"histogram_quantile({q}, sum by (route, le) "
        f"(rate(sidecar_http_request_duration_seconds_bucket{sel()}[{R}])))",
        f"p{round(q * 100)} {{{{route}}}}") for q in (0.5, 0.9, 0.99)], 12, y, unit="s"); y += 8
row("Upstream", y); y += 1
panel("Upstream requests per second by cluster",
      [(f"sum by (cluster) (rate(sidecar_upstream_requests_total{sel()}[{R}]))", "{{cluster}}")],
      0, y, w=8, unit="reqps")
panel("Connect failures, timeouts and resets",
      [(f"sum by (cluster) (rate(sidecar_upstream_connect_failures_total{sel()}[{R}]))",
        "connect failures {{cluster}}"),
       (f"sum by (cluster) (rate(sidecar_upstream_request_timeouts_total{sel()}[{R}]))",
        "timeouts {{cluster}}"),
       (f"sum by (cluster) (rate(sidecar_upstream_resets_total{sel()}[{R}]))", "resets {{cluster}}")],
      8, y, w=8)
panel("Upstream p99 by cluster",
      [(f"histogram_quantile(0.99, sum by (cluster, le) "
        f"(rate(sidecar_upstream_request_duration_seconds_bucket{sel()}[{R}])))", "{{cluster}}")],
      16, y, w=8, unit="s"); y += 8
panel("Upstream connections",
      [(f"sum by (cluster) (sidecar_upstream_connections_active{sel()})", "active {{cluster}}"),
       (f"sum by (cluster) (sidecar_upstream_connections_idle{sel()})", "idle {{cluster}}"),
       (f"sum by (cluster) (sidecar_upstream_pending_requests{sel()})", "pending {{cluster}}")],
      0, y, w=24); y += 8
row("App and sidecar", y); y += 1
panel("App CPU (cores)", [(f"sum(rate(sidecar_app_cpu_seconds_total{sel()}[{R}]))", "app")],
      0, y, w=8)
panel("App memory", [(f"sum(sidecar_app_resident_memory_bytes{sel()})", "resident")],
      8, y, w=8, unit="bytes")
panel("App up and restarts",
      [(f"max(sidecar_app_up{sel()})", "up"),
       (f"sum(increase(sidecar_app_restarts_total{sel()}[1h]))", "restarts (1h)")],
      16, y, w=8); y += 8
panel("Certificates: days until expiry",
      [(f"min by (scope, name) (sidecar_tls_certificate_expiry_timestamp_seconds{sel()} - time()) / 86400",
        "{{scope}} {{name}}")], 0, y, w=12, unit="d")
panel("Tracing: spans per second",
      [(f"sum(rate(sidecar_tracing_spans_exported_total{sel()}[{R}]))", "exported"),
       (f"sum(rate(sidecar_tracing_spans_dropped_total{sel()}[{R}]))", "dropped"),
       (f"sum(rate(sidecar_tracing_spans_failed_total{sel()}[{R}]))", "failed")],
      12, y, w=12); y += 8
row("Sync and log shipping", y); y += 1
panel("Sync: consecutive failures",
      [(f"max by (name) (sidecar_sync_consecutive_failures{sel()})", "{{name}}")], 0, y, w=8)
panel("Sync: seconds since the last success",
      [(f"time() - max by (name) (sidecar_sync_last_success_timestamp_seconds{sel()})", "{{name}}")],
      8, y, w=8, unit="s")
panel("Sync runs per minute",
      [(f"sum by (name, result) (rate(sidecar_sync_total{sel()}[{R}])) * 60", "{{name}} {{result}}")],
      16, y, w=8); y += 8
panel("Log shipping: lag", [(f"max by (input) (sidecar_logs_lag_bytes{sel()})", "{{input}}")],
      0, y, w=8, unit="bytes")
panel("Log shipping: records per second",
      [(f"sum by (input) (rate(sidecar_logs_input_records_total{sel()}[{R}]))", "in {{input}}"),
       (f"sum by (output) (rate(sidecar_logs_output_records_total{sel()}[{R}]))", "out {{output}}")],
      8, y, w=8)
panel("Log shipping: buffered and errors",
      [(f"sum by (output) (sidecar_logs_buffer_bytes{sel()})", "buffered {{output}}"),
       (f"sum by (output) (rate(sidecar_logs_output_errors_total{sel()}[{R}]))", "errors/s {{output}}")],
      16, y, w=8)


def variable(name, query):
    return {"name": name, "type": "query", "datasource": DS, "definition": query,
            "query": {"query": query, "refId": name}, "includeAll": True, "multi": True,
            "allValue": ".*", "current": {}, "refresh": 2}


dashboard = {
    "annotations": {"list": []}, "editable": True, "graphTooltip": 1,
    "title": "sidecar", "uid": "sidecar-overview", "tags": ["sidecar"], "timezone": "",
    "schemaVersion": 38, "version": 1, "refresh": "30s",
    "time": {"from": "now-1h", "to": "now"},
    "templating": {"list": [
        {"name": "datasource", "type": "datasource", "query": "prometheus",
         "label": "Data source", "current": {}},
        variable("job", "label_values(sidecar_build_info, job)"),
        variable("instance", 'label_values(sidecar_build_info{job=~"$job"}, instance)')]},
    "panels": panels,
}

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "sidecar.json"), "w") as f:
    f.write(json.dumps(dashboard, indent=2) + "\n")
