#include "acme/messages.h"

#include <charconv>
#include <ctime>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

namespace sidecar::acme {
namespace {

namespace json = boost::json;

constexpr std::string_view kErrorPrefix = "urn:ietf:params:acme:error:";

bool parse_object(std::string_view text, json::value& out, std::string& why) {
  boost::system::error_code ec;
  out = json::parse(json::string_view(text.data(), text.size()), ec);
  if (ec) {
    why = "not JSON: " + ec.message();
    return false;
  }
  if (!out.is_object()) {
    why = "not a JSON object";
    return false;
  }
  return true;
}

// The string member `key`, or "" when absent or not a string.
std::string str(const json::object& o, std::string_view key) {
  auto it = o.find(json::string_view(key.data(), key.size()));
  if (it == o.end() || !it->value().is_string()) return {};
  const json::string& s = it->value().get_string();
  return std::string(s.data(), s.size());
}

std::vector<std::string> strings(const json::object& o, std::string_view key) {
  std::vector<std::string> out;
  auto it = o.find(json::string_view(key.data(), key.size()));
  if (it == o.end() || !it->value().is_array()) return out;
  for (const json::value& v : it->value().get_array()) {
    if (v.is_string()) out.emplace_back(v.get_string().data(), v.get_string().size());
  }
  return out;
}

const json::object* member_object(const json::object& o, std::string_view key) {
  auto it = o.find(json::string_view(key.data(), key.size()));
  return it != o.end() && it->value().is_object() ? &it->value().get_object() : nullptr;
}

void read_problem(const json::object& o, Problem& p) {
  p.type = str(o, "type");
  p.detail = str(o, "detail");
  if (auto it = o.find("status"); it != o.end() && it->value().is_int64()) {
    p.status = static_cast<int>(it->value().get_int64());
  }
  if (auto it = o.find("subproblems"); it != o.end() && it->value().is_array()) {
    for (const json::value& v : it->value().get_array()) {
      if (!v.is_object() || p.subproblems.size() >= 20) continue;
      const json::object& s = v.get_object();
      std::string who;
      if (const json::object* id = member_object(s, "identifier")) who = str(*id, "value") + ": ";
      Problem sub;
      sub.type = str(s, "type");
      sub.detail = str(s, "detail");
      p.subproblems.push_back(who + sub.describe());
    }
  }
}

bool read_problem_member(const json::object& o, std::string_view key, Problem& p) {
  const json::object* e = member_object(o, key);
  if (e == nullptr) return false;
  read_problem(*e, p);
  return true;
}

}  // namespace

std::string_view Problem::short_type() const {
  std::string_view t = type;
  if (t.starts_with(kErrorPrefix)) t.remove_prefix(kErrorPrefix.size());
  return t;
}

std::string Problem::describe() const {
  std::string s(short_type());
  if (s.empty()) s = "error";
  if (!detail.empty()) {
    s += ": ";
    s += detail;
  }
  for (const std::string& sub : subproblems) {
    s += "; ";
    s += sub;
  }
  return s;
}

bool parse_problem(std::string_view text, Problem& out) {
  json::value v;
  std::string why;
  if (!parse_object(text, v, why)) return false;
  read_problem(v.get_object(), out);
  return !out.type.empty();
}

bool parse_directory(std::string_view text, Directory& out, std::string& why) {
  json::value v;
  if (!parse_object(text, v, why)) return false;
  const json::object& o = v.get_object();
  out.new_nonce = str(o, "newNonce");
  out.new_account = str(o, "newAccount");
  out.new_order = str(o, "newOrder");
  out.revoke_cert = str(o, "revokeCert");
  out.key_change = str(o, "keyChange");
  if (const json::object* meta = member_object(o, "meta")) {
    out.terms_of_service = str(*meta, "termsOfService");
    if (auto it = meta->find("externalAccountRequired");
        it != meta->end() && it->value().is_bool()) {
      out.external_account_required = it->value().get_bool();
    }
  }
  if (out.new_nonce.empty() || out.new_account.empty() || out.new_order.empty()) {
    why = "the directory lacks newNonce, newAccount or newOrder";
    return false;
  }
  return true;
}

bool parse_authorization(std::string_view text, Authorization& out, std::string& why) {
  json::value v;
  if (!parse_object(text, v, why)) return false;
  const json::object& o = v.get_object();
  out.status = str(o, "status");
  if (const json::object* id = member_object(o, "identifier")) out.identifier = str(*id, "value");
  if (auto it = o.find("wildcard"); it != o.end() && it->value().is_bool()) {
    out.wildcard = it->value().get_bool();
  }
  if (auto it = o.find("challenges"); it != o.end() && it->value().is_array()) {
    for (const json::value& c : it->value().get_array()) {
      if (!c.is_object() || out.challenges.size() >= 16) continue;
      const json::object& co = c.get_object();
      Challenge ch;
      ch.type = str(co, "type");
      ch.url = str(co, "url");
      ch.status = str(co, "status");
      ch.token = str(co, "token");
      read_problem_member(co, "error", ch.error);
      out.challenges.push_back(std::move(ch));
    }
  }
  if (out.status.empty()) {
    why = "the authorization has no status";
    return false;
  }
  return true;
}

bool parse_order(std::string_view text, Order& out, std::string& why) {
  json::value v;
  if (!parse_object(text, v, why)) return false;
  const json::object& o = v.get_object();
  out.status = str(o, "status");
  out.authorizations = strings(o, "authorizations");
  out.finalize = str(o, "finalize");
  out.certificate = str(o, "certificate");
  if (auto it = o.find("identifiers"); it != o.end() && it->value().is_array()) {
    for (const json::value& id : it->value().get_array()) {
      if (id.is_object()) out.identifiers.push_back(str(id.get_object(), "value"));
    }
  }
  read_problem_member(o, "error", out.error);
  if (out.status.empty() || out.finalize.empty()) {
    why = "the order has no status or finalize URL";
    return false;
  }
  return true;
}

bool parse_account(std::string_view text, Account& out, std::string& why) {
  json::value v;
  if (!parse_object(text, v, why)) return false;
  const json::object& o = v.get_object();
  out.status = str(o, "status");
  out.contact = strings(o, "contact");
  if (out.status.empty()) {
    why = "the account has no status";
    return false;
  }
  return true;
}

std::optional<std::chrono::seconds> parse_retry_after(std::string_view value,
                                                      std::chrono::system_clock::time_point now) {
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  if (value.empty()) return std::nullopt;
  if (value.front() >= '0' && value.front() <= '9') {
    uint64_t n = 0;
    auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
    if (ec != std::errc() || p != value.data() + value.size()) return std::nullopt;
    // A year is longer than any wait an ACME server means.
    return std::chrono::seconds(std::min<uint64_t>(n, 366ull * 86400));
  }
  // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" [RFC 9110 5.6.7].
  if (value.size() != 29 || value[3] != ',' || !value.ends_with(" GMT")) return std::nullopt;
  static constexpr std::string_view kMonths = "JanFebMarAprMayJunJulAugSepOctNovDec";
  auto number = [&](size_t at, size_t len, int& out) {
    auto [p, ec] = std::from_chars(value.data() + at, value.data() + at + len, out);
    return ec == std::errc() && p == value.data() + at + len;
  };
  struct tm tm {};
  int day = 0, year = 0, hour = 0, minute = 0, second = 0;
  const size_t month = kMonths.find(value.substr(8, 3));
  if (month == std::string_view::npos || month % 3 != 0 || !number(5, 2, day) ||
      !number(12, 4, year) || !number(17, 2, hour) || !number(20, 2, minute) ||
      !number(23, 2, second) || value[16] != ' ' || value[19] != ':' || value[22] != ':' ||
      day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60 || year < 1970) {
    return std::nullopt;
  }
  tm.tm_year = year - 1900;
  tm.tm_mon = static_cast<int>(month / 3);
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  // In seconds of time_t: a far-future date does not fit in the clock's
  // nanoseconds (found by the fuzzer).
  const int64_t at = static_cast<int64_t>(timegm(&tm));
  const int64_t from = static_cast<int64_t>(std::chrono::system_clock::to_time_t(now));
  if (at <= from) return std::chrono::seconds(0);
  return std::chrono::seconds(std::min<int64_t>(at - from, 366 * 86400));
}

size_t count_pem_certificates(std::string_view chain) {
  constexpr std::string_view kBegin = "-----BEGIN CERTIFICATE-----";
  constexpr std::string_view kEnd = "-----END CERTIFICATE-----";
  size_t count = 0;
  while (true) {
    const size_t first = chain.find_first_not_of(" \t\r\n");
    if (first == std::string_view::npos) return count;
    chain.remove_prefix(first);
    if (!chain.starts_with(kBegin)) return 0;
    const size_t end = chain.find(kEnd);
    if (end == std::string_view::npos) return 0;
    const std::string_view body = chain.substr(kBegin.size(), end - kBegin.size());
    if (body.find("-----") != std::string_view::npos) return 0;
    chain.remove_prefix(end + kEnd.size());
    ++count;
  }
}

}  // namespace sidecar::acme
