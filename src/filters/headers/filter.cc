#include "filters/headers/filter.h"

namespace sidecar::filters::headers {

http::FilterStatus Filter::on_request_headers(http::FilterCallbacks& cb) {
  for (const auto& name : config_->request_remove) cb.remove_request_header(name);
  for (const auto& [name, value] : config_->request_add) cb.add_request_header(name, value);
  return http::FilterStatus::kContinue;
}

void Filter::on_response_headers(const http::ResponseHead&, http::FilterCallbacks& cb) {
  for (const auto& name : config_->response_remove) cb.remove_response_header(name);
  for (const auto& [name, value] : config_->response_add) cb.add_response_header(name, value);
}

}  // namespace sidecar::filters::headers
