// Span batches on the wire.
//
// OTLP/HTTP binary protobuf: an ExportTraceServiceRequest
// (opentelemetry-proto v1, vendored in third_party/opentelemetry-proto), one
// ResourceSpans with `service.name`, one ScopeSpans ("sidecar"); POSTed as
// application/x-protobuf (OTLP specification, "OTLP/HTTP").
//
// Zipkin v2 JSON: an array of spans as POST /api/v2/spans takes them
// (zipkin-api v2 "Span"): hex ids, timestamp and duration in microseconds,
// kind SERVER/CLIENT, localEndpoint.serviceName, remoteEndpoint, string tags;
// an error span has the tag "error".
//
// Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "tracing/span.h"

namespace sidecar::tracing {

std::string encode_otlp(const std::vector<SpanRecord>& spans, std::string_view service_name);
std::string encode_zipkin(const std::vector<SpanRecord>& spans, std::string_view service_name);

// RFC 1952 gzip of `data` (zlib, default level). Empty on failure.
std::string gzip(std::string_view data);

}  // namespace sidecar::tracing
