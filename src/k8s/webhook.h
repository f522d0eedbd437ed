// `sidecar webhook`'s request handling, apart from its transport: an
// admission.k8s.io/v1 AdmissionReview in, the AdmissionReview answer out,
// with a JSONPatch that makes the object exactly what `sidecar inject` makes
// of it (same code, inject.h).
//
// Every review is allowed: a workload that cannot be injected (it opted out,
// or is malformed) is admitted unchanged, with a warning saying why, so the
// webhook never blocks a deployment (failurePolicy: Ignore covers the webhook
// being down). Thread safety: pure functions.
#pragma once

#include <string>
#include <string_view>

#include "k8s/inject.h"

namespace sidecar::k8s {

struct HttpAnswer {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
};

// POST /inject's body -> the answer. 400 with a JSON error when the body is not
// an AdmissionReview v1 with a request.uid.
HttpAnswer handle_admission_review(std::string_view body, const Options& options);

// The whole HTTP routing of the webhook: POST /inject, GET /ready and
// /healthz (200 "ok"), 404 else, 405 for a wrong method. `target` is the
// request-target (a query is ignored).
HttpAnswer handle_webhook_request(std::string_view method, std::string_view target,
                                  std::string_view body, const Options& options);

}  // namespace sidecar::k8s
