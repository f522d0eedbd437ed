#include "filters/headers/filter.h"

#include <iterator>

#include <fmt/format.h>

#include "http/http1_parser.h"
#include "net/transport.h"

namespace sidecar::filters::headers {
namespace {

using Kind = config::LogToken::Kind;

std::string_view find(const std::vector<http::HeaderField>& fields, std::string_view name) {
  for (const http::HeaderField& f : fields) {
    if (http::iequals(f.name, name)) return f.value;
  }
  return {};
}

bool present(const std::vector<http::HeaderField>& fields, std::string_view name) {
  for (const http::HeaderField& f : fields) {
    if (http::iequals(f.name, name)) return true;
  }
  return false;
}

bool listed(const std::vector<std::string>& names, std::string_view name) {
  for (const std::string& n : names) {
    if (http::iequals(n, name)) return true;
  }
  return false;
}

// Renders a value; `response` is null on the request path.
std::string render(const std::vector<config::LogToken>& tokens, http::FilterCallbacks& cb,
                   const http::ResponseHead* response) {
  std::string out;
  auto text = [&](std::string_view v, size_t max = 0) {
    if (max != 0 && v.size() > max) v = v.substr(0, max);
    // A variable's value never ends the field: control characters dropped
    // (received fields are already checked; TLS subjects are not).
    for (char c : v) {
      const auto u = static_cast<unsigned char>(c);
      if (u == '\t' || (u >= 0x20 && u != 0x7f)) out += c;
    }
  };
  const net::TlsInfo* tls = cb.tls();
  for (const config::LogToken& t : tokens) {
    switch (t.kind) {
      case Kind::kLiteral:
        out += t.text;
        break;
      case Kind::kStartTime:
        config::append_start_time(out, std::chrono::duration_cast<std::chrono::microseconds>(
                                           cb.start_time().time_since_epoch())
                                           .count());
        break;
      case Kind::kMethod:
        text(cb.request().method_name);
        break;
      case Kind::kPath:
        text(cb.request().target);
        break;
      case Kind::kAuthority:
        text(cb.authority());
        break;
      case Kind::kScheme:
        out += tls != nullptr ? "https" : "http";
        break;
      case Kind::kRequestHeader: {
        std::string_view v = find(cb.request().headers, t.text);
        if (v.empty() && !t.fallback.empty()) v = find(cb.request().headers, t.fallback);
        text(v, t.max_length);
        break;
      }
      case Kind::kResponseHeader:
        if (response != nullptr) {
          std::string_view v = find(response->headers, t.text);
          if (v.empty() && !t.fallback.empty()) v = find(response->headers, t.fallback);
          text(v, t.max_length);
        }
        break;
      case Kind::kProtocol:
        out += cb.request().version_minor == 0 ? "HTTP/1.0" : "HTTP/1.1";
        break;
      case Kind::kResponseCode:
        if (response != nullptr) fmt::format_to(std::back_inserter(out), "{}", response->status);
        break;
      case Kind::kUpstreamHost:
        text(cb.upstream_host());
        break;
      case Kind::kUpstreamCluster:
        text(cb.route_cluster());
        break;
      case Kind::kRouteName:
        text(cb.route_name());
        break;
      case Kind::kListenerName:
        text(cb.listener_name());
        break;
      case Kind::kDownstreamRemoteAddress:
        text(cb.peer_address());
        break;
      case Kind::kDownstreamRemoteAddressWithoutPort:
        text(cb.peer_ip());
        break;
      case Kind::kDownstreamTlsVersion:
        if (tls != nullptr) text(tls->version);
        break;
      case Kind::kDownstreamPeerSubject:
        if (tls != nullptr) text(tls->peer_subject);
        break;
      case Kind::kDownstreamPeerUriSan:
        if (tls != nullptr) {
          for (size_t i = 0; i < tls->peer_uri_sans.size(); ++i) {
            if (i > 0) out += ',';
            text(tls->peer_uri_sans[i]);
          }
        }
        break;
      case Kind::kRequestedServerName:
        if (tls != nullptr) text(tls->server_name);
        break;
      case Kind::kHostname:
        text(config::host_name());
        break;
      default:
        break;  // rejected at config load
    }
  }
  return out;
}

// Envoy's HeaderParser::evaluateHeaders: removals first; then each value is
// rendered, an empty one skipped (unless keep_empty_value), and the action
// decided on the fields as received minus the removed ones.
template <typename Add, typename Remove>
void apply(const std::vector<HeaderToAdd>& adds, const std::vector<std::string>& removes,
           const std::vector<http::HeaderField>& received, http::FilterCallbacks& cb,
           const http::ResponseHead* response, Add add, Remove remove) {
  for (const auto& name : removes) remove(name);
  for (const HeaderToAdd& h : adds) {
    const std::string value = render(h.value, cb, response);
    if (value.empty() && !h.keep_empty_value) continue;
    const bool exists = present(received, h.name) && !listed(removes, h.name);
    switch (h.action) {
      case AppendAction::kAppendIfExistsOrAdd:
        break;
      case AppendAction::kAddIfAbsent:
        if (exists) continue;
        break;
      case AppendAction::kOverwriteIfExists:
        if (!exists) continue;
        [[fallthrough]];
      case AppendAction::kOverwriteIfExistsOrAdd:
        if (exists) remove(h.name);
        break;
    }
    add(h.name, value);
  }
}

}  // namespace

http::FilterStatus Filter::on_request_headers(http::FilterCallbacks& cb) {
  apply(
      config_->request_add, config_->request_remove, cb.request().headers, cb, nullptr,
      [&](std::string_view n, std::string_view v) { cb.add_request_header(n, v); },
      [&](std::string_view n) { cb.remove_request_header(n); });
  return http::FilterStatus::kContinue;
}

void Filter::on_response_headers(const http::ResponseHead& response, http::FilterCallbacks& cb) {
  apply(
      config_->response_add, config_->response_remove, response.headers, cb, &response,
      [&](std::string_view n, std::string_view v) { cb.add_response_header(n, v); },
      [&](std::string_view n) { cb.remove_response_header(n); });
}

}  // namespace sidecar::filters::headers
