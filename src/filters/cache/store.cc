#include "filters/cache/store.h"

#include "http/http1_parser.h"

namespace sidecar::filters::cache {
namespace {

std::mutex instance_mutex;
std::shared_ptr<Store> the_store;

}  // namespace

size_t Entry::bytes() const {
  size_t n = sizeof(Entry) + body.size();
  for (const auto& [k, v] : headers) n += k.size() + v.size() + 64;
  for (const auto& [k, v] : vary) n += k.size() + v.size() + 64;
  return n;
}

bool vary_matches(const Entry& entry, const http::RequestHead& request) {
  for (const auto& [name, value] : entry.vary) {
    const http::HeaderField* f = request.find(name);
    const std::string_view v = f == nullptr ? std::string_view() : http::trim_ows(f->value);
    if (v != value) return false;
  }
  return true;
}

std::shared_ptr<Store> Store::instance(uint64_t max_size) {
  std::lock_guard lock(instance_mutex);
  if (!the_store) {
    the_store = std::make_shared<Store>(max_size);
  } else {
    the_store->set_max_size(max_size);
  }
  return the_store;
}

std::shared_ptr<Store> Store::existing() {
  std::lock_guard lock(instance_mutex);
  return the_store;
}

void Store::set_max_size(uint64_t bytes) { stripe_limit_ = bytes / kStripes; }

std::shared_ptr<const Entry> Store::lookup(const std::string& key,
                                           const http::RequestHead& request) {
  Stripe& s = stripe(key);
  std::lock_guard lock(s.mutex);
  auto it = s.slots.find(key);
  if (it == s.slots.end()) return nullptr;
  for (const auto& e : it->second.variants) {
    if (vary_matches(*e, request)) {
      s.lru.splice(s.lru.begin(), s.lru, it->second.lru);
      return e;
    }
  }
  return nullptr;
}

bool Store::has_key(const std::string& key) {
  Stripe& s = stripe(key);
  std::lock_guard lock(s.mutex);
  return s.slots.contains(key);
}

void Store::erase(Stripe& s, std::unordered_map<std::string, Slot>::iterator it) {
  s.bytes -= it->second.bytes;
  s.lru.erase(it->second.lru);
  s.slots.erase(it);
}

void Store::insert(const std::string& key, std::shared_ptr<const Entry> entry) {
  Stripe& s = stripe(key);
  const size_t limit = stripe_limit_.load();
  const size_t size = entry->bytes();
  if (size > limit) return;
  std::lock_guard lock(s.mutex);
  auto [it, fresh] = s.slots.try_emplace(key);
  Slot& slot = it->second;
  if (fresh) {
    s.lru.push_front(key);
    slot.lru = s.lru.begin();
  } else {
    s.lru.splice(s.lru.begin(), s.lru, slot.lru);
  }
  bool replaced = false;
  for (auto& v : slot.variants) {
    if (v->vary == entry->vary) {
      slot.bytes -= v->bytes();
      s.bytes -= v->bytes();
      v = entry;
      replaced = true;
      break;
    }
  }
  if (!replaced) {
    if (slot.variants.size() >= kMaxVariants) {
      slot.bytes -= slot.variants.front()->bytes();
      s.bytes -= slot.variants.front()->bytes();
      slot.variants.erase(slot.variants.begin());
    }
    slot.variants.push_back(entry);
  }
  slot.bytes += size;
  s.bytes += size;
  while (s.bytes > limit && !s.lru.empty()) {
    auto victim = s.slots.find(s.lru.back());
    if (victim == s.slots.end()) break;
    erase(s, victim);
  }
}

void Store::invalidate(const std::string& key) {
  Stripe& s = stripe(key);
  std::lock_guard lock(s.mutex);
  if (auto it = s.slots.find(key); it != s.slots.end()) erase(s, it);
}

size_t Store::purge(std::string_view path_prefix) {
  size_t n = 0;
  for (Stripe& s : stripes_) {
    std::lock_guard lock(s.mutex);
    for (auto it = s.slots.begin(); it != s.slots.end();) {
      // The path is after the second NUL of the key.
      const std::string& k = it->first;
      const size_t a = k.find('\0');
      const size_t b = a == std::string::npos ? std::string::npos : k.find('\0', a + 1);
      const std::string_view path =
          b == std::string::npos ? std::string_view() : std::string_view(k).substr(b + 1);
      if (path.starts_with(path_prefix)) {
        auto next = std::next(it);
        erase(s, it);
        it = next;
        ++n;
      } else {
        ++it;
      }
    }
  }
  return n;
}

bool Store::begin_fill(const std::string& key, std::function<void()> wake) {
  Stripe& s = stripe(key);
  std::lock_guard lock(s.mutex);
  auto [it, first] = s.filling.try_emplace(key);
  if (!first) it->second.push_back(std::move(wake));
  return first;
}

bool Store::begin_background_fill(const std::string& key) {
  Stripe& s = stripe(key);
  std::lock_guard lock(s.mutex);
  return s.filling.try_emplace(key).second;
}

void Store::end_fill(const std::string& key) {
  std::vector<std::function<void()>> waiters;
  {
    Stripe& s = stripe(key);
    std::lock_guard lock(s.mutex);
    auto it = s.filling.find(key);
    if (it == s.filling.end()) return;
    waiters = std::move(it->second);
    s.filling.erase(it);
  }
  for (auto& w : waiters) w();
}

std::string purge(std::string_view query) {
  std::string prefix;
  for (std::string_view q = query; !q.empty();) {
    const size_t amp = q.find('&');
    const std::string_view pair = q.substr(0, amp);
    if (pair.starts_with("prefix=")) {
      const std::string_view v = pair.substr(7);
      prefix.clear();
      for (size_t i = 0; i < v.size(); ++i) {
        auto hex = [](char c) {
          return c >= '0' && c <= '9'                     ? c - '0'
                 : (c | 0x20) >= 'a' && (c | 0x20) <= 'f' ? (c | 0x20) - 'a' + 10
                                                          : -1;
        };
        if (v[i] == '%' && i + 2 < v.size() && hex(v[i + 1]) >= 0 && hex(v[i + 2]) >= 0) {
          prefix += static_cast<char>(hex(v[i + 1]) * 16 + hex(v[i + 2]));
          i += 2;
        } else {
          prefix += v[i] == '+' ? ' ' : v[i];
        }
      }
    }
    if (amp == std::string_view::npos) break;
    q.remove_prefix(amp + 1);
  }
  const std::shared_ptr<Store> store = Store::existing();
  const size_t purged = store ? store->purge(prefix) : 0;
  return "{\"purged\":" + std::to_string(purged) +
         ",\"entries\":" + std::to_string(store ? store->entries() : 0) +
         ",\"bytes\":" + std::to_string(store ? store->bytes() : 0) + "}\n";
}

uint64_t Store::bytes() const {
  uint64_t n = 0;
  for (const Stripe& s : stripes_) {
    std::lock_guard lock(s.mutex);
    n += s.bytes;
  }
  return n;
}

uint64_t Store::entries() const {
  uint64_t n = 0;
  for (const Stripe& s : stripes_) {
    std::lock_guard lock(s.mutex);
    n += s.slots.size();
  }
  return n;
}

}  // namespace sidecar::filters::cache
