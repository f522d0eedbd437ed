#include "registry/etcd_json.h"

#include <gtest/gtest.h>

namespace sidecar::registry::etcd {
namespace {

TEST(EtcdJson, Base64RoundTripsEveryLength) {
  // RFC 4648 section 10 test vectors.
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("foob"), "Zm9vYg==");
  EXPECT_EQ(base64_encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  std::string binary;
  for (int i = 0; i < 256; ++i) binary += char(i);
  for (size_t n = 0; n <= binary.size(); n += 7) {
    std::string out;
    ASSERT_TRUE(base64_decode(base64_encode(binary.substr(0, n)), out)) << n;
    EXPECT_EQ(out, binary.substr(0, n));
  }
  EXPECT_EQ(base64_encode("\xff\xfe"), "//4=");  // standard alphabet, not base64url
}

TEST(EtcdJson, Base64RejectsWhatIsNotBase64) {
  std::string out;
  EXPECT_FALSE(base64_decode("Zm9v!", out));
  EXPECT_FALSE(base64_decode("Z", out));       // 6 bits cannot make a byte
  EXPECT_FALSE(base64_decode("Zm9v-_", out));  // base64url
  out.clear();
  EXPECT_TRUE(base64_decode("Zm8", out));  // padding optional
  EXPECT_EQ(out, "fo");
}

TEST(EtcdJson, PrefixRangeEndIncrementsTheLastByte) {
  EXPECT_EQ(prefix_range_end("/services/users/"), "/services/users0");
  EXPECT_EQ(prefix_range_end("a\xff"), "b");
  EXPECT_EQ(prefix_range_end(""), std::string(1, '\0'));
  EXPECT_EQ(prefix_range_end("\xff\xff"), std::string(1, '\0'));
}

TEST(EtcdJson, RequestBodiesUseBase64AndInt64Strings) {
  EXPECT_EQ(put_body("/k", "v", 0), R"({"key":"L2s=","value":"dg=="})");
  EXPECT_EQ(put_body("/k", "v", 7587862345678901234),
            R"({"key":"L2s=","value":"dg==","lease":"7587862345678901234"})");
  EXPECT_EQ(range_body("/k", ""), R"({"key":"L2s="})");
  EXPECT_EQ(range_body("/a/", "/a0"), R"({"key":"L2Ev","range_end":"L2Ew"})");
  EXPECT_EQ(lease_grant_body(10), R"({"TTL":"10"})");
  EXPECT_EQ(lease_id_body(-1), R"({"ID":"-1"})");
  EXPECT_EQ(watch_create_body("/a/", "/a0", 42),
            R"({"create_request":{"key":"L2Ev","range_end":"L2Ew","start_revision":"42"}})");
  EXPECT_EQ(watch_create_body("/a/", "", 0), R"({"create_request":{"key":"L2Ev"}})");
  EXPECT_EQ(authenticate_body("root", "p\"w"), R"({"name":"root","password":"p\"w"})");
}

TEST(EtcdJson, ParsesRangeAnswers) {
  // As etcd 3.4's gateway answers (int64 as strings, zero values left out).
  const std::string body =
      R"({"header":{"cluster_id":"1","member_id":"2","revision":"9","raft_term":"2"},)"
      R"("kvs":[{"key":"L2EvMQ==","create_revision":"5","mod_revision":"8","version":"2",)"
      R"("value":"eA==","lease":"694d77aa0bd1ec0b"}],"count":"1"})";
  RangeResult r;
  Error e;
  // A lease id in hex is not an int64: the whole answer is rejected.
  EXPECT_FALSE(parse_range(body, r, e));
  const std::string good =
      R"({"header":{"revision":"9"},"kvs":[{"key":"L2EvMQ==","mod_revision":"8",)"
      R"("value":"eA==","lease":"7587862345678901234"},{"key":"L2EvMg==","mod_revision":7}],)"
      R"("count":"2"})";
  ASSERT_TRUE(parse_range(good, r, e));
  EXPECT_EQ(r.revision, 9);
  ASSERT_EQ(r.kvs.size(), 2u);
  EXPECT_EQ(r.kvs[0].key, "/a/1");
  EXPECT_EQ(r.kvs[0].value, "x");
  EXPECT_EQ(r.kvs[0].mod_revision, 8);
  EXPECT_EQ(r.kvs[0].lease, 7587862345678901234);
  EXPECT_EQ(r.kvs[1].value, "");  // empty value: left out
  EXPECT_EQ(r.kvs[1].mod_revision, 7);
  ASSERT_TRUE(parse_range(R"({"header":{"revision":"3"}})", r, e));
  EXPECT_TRUE(r.kvs.empty());
}

TEST(EtcdJson, ParsesLeaseAnswersAndLostLeases) {
  LeaseResult l;
  Error e;
  ASSERT_TRUE(parse_lease(R"({"header":{},"ID":"4111120150790928135","TTL":"5"})", l, e));
  EXPECT_EQ(l.id, 4111120150790928135);
  EXPECT_EQ(l.ttl, 5);
  // keepalive of a lease etcd does not know: a result without TTL.
  ASSERT_TRUE(parse_lease(R"({"result":{"header":{"revision":"1"},"ID":"12345"}})", l, e));
  EXPECT_EQ(l.id, 12345);
  EXPECT_EQ(l.ttl, 0);
  EXPECT_FALSE(parse_lease(
      R"({"error":"etcdserver: requested lease not found","message":"etcdserver: requested lease not found","code":5})",
      l, e));
  EXPECT_EQ(e.code, kNotFound);
  EXPECT_EQ(e.message, "etcdserver: requested lease not found");
  EXPECT_FALSE(parse_lease(R"({"result":{"TTL":1.5}})", l, e));
  EXPECT_FALSE(parse_lease(R"({"ID":"99999999999999999999"})", l, e));  // beyond int64
}

TEST(EtcdJson, ParsesBothErrorShapes) {
  Error e;
  ASSERT_TRUE(
      parse_error(R"({"error":"x","code":16,"message":"etcdserver: invalid auth token"})", e));
  EXPECT_EQ(e.code, kUnauthenticated);
  ASSERT_TRUE(parse_error(
      R"({"error":{"grpc_code":16,"http_code":401,"message":"etcdserver: invalid auth token"}})",
      e));
  EXPECT_EQ(e.code, kUnauthenticated);
  EXPECT_EQ(e.message, "etcdserver: invalid auth token");
  EXPECT_FALSE(parse_error(R"({"header":{}})", e));
  EXPECT_FALSE(parse_error("not json", e));
}

TEST(EtcdJson, ParsesTokens) {
  std::string token;
  Error e;
  ASSERT_TRUE(parse_token(R"({"header":{},"token":"abc.12"})", token, e));
  EXPECT_EQ(token, "abc.12");
  EXPECT_FALSE(parse_token(R"({"header":{}})", token, e));
}

TEST(EtcdJson, ParsesWatchMessages) {
  WatchResponse w;
  Error e;
  ASSERT_TRUE(parse_watch(R"({"result":{"header":{"revision":"4"},"created":true}})", w, e));
  EXPECT_TRUE(w.created);
  EXPECT_EQ(w.revision, 4);
  EXPECT_TRUE(w.events.empty());
  ASSERT_TRUE(parse_watch(R"({"result":{"header":{"revision":"6"},"events":[)"
                          R"({"kv":{"key":"L2EvMQ==","mod_revision":"5","value":"eA=="}},)"
                          R"({"type":"DELETE","kv":{"key":"L2EvMg==","mod_revision":"6"}}]}})",
                          w, e));
  ASSERT_EQ(w.events.size(), 2u);
  EXPECT_FALSE(w.events[0].is_delete);  // PUT is the zero value: no "type"
  EXPECT_EQ(w.events[0].kv.key, "/a/1");
  EXPECT_EQ(w.events[0].kv.value, "x");
  EXPECT_TRUE(w.events[1].is_delete);
  EXPECT_EQ(w.events[1].kv.mod_revision, 6);
  ASSERT_TRUE(
      parse_watch(R"({"result":{"header":{"revision":"9"},"canceled":true,"compact_revision":"7",)"
                  R"("cancel_reason":"mvcc: required revision has been compacted"}})",
                  w, e));
  EXPECT_TRUE(w.canceled);
  EXPECT_EQ(w.compact_revision, 7);
  EXPECT_FALSE(parse_watch(R"({"result":{"events":[{"type":"EXPIRE","kv":{}}]}})", w, e));
  EXPECT_FALSE(parse_watch(R"({"result":{"events":[{"kv":{"key":"%%%"}}]}})", w, e));
  EXPECT_FALSE(parse_watch(R"({"error":{"grpc_code":1,"message":"context canceled"}})", w, e));
  EXPECT_EQ(e.message, "context canceled");
}

TEST(EtcdJson, InstanceDocumentRoundTrips) {
  Instance in;
  in.address = "10.0.0.7";
  in.port = 8000;
  in.tags = {"v2", "canary"};
  in.metadata = {{"zone", "a"}, {"version", "2.3.1"}};
  in.weight = 3;
  in.started_at = "2026-11-21T10:00:00Z";
  const std::string doc = encode_instance(in);
  EXPECT_EQ(doc, R"({"address":"10.0.0.7","port":8000,"tags":["v2","canary"],)"
                 R"("metadata":{"version":"2.3.1","zone":"a"},"weight":3,"health":"passing",)"
                 R"("started_at":"2026-11-21T10:00:00Z"})");
  Instance back;
  ASSERT_TRUE(decode_instance(doc, back));
  EXPECT_EQ(back, in);
  // Written by another tool: only address and port are needed.
  ASSERT_TRUE(decode_instance(R"({"address":"::1","port":"81","extra":[1]})", back));
  EXPECT_EQ(back.address, "::1");
  EXPECT_EQ(back.port, 81);
  EXPECT_EQ(back.weight, 1u);
  EXPECT_FALSE(decode_instance(R"({"address":"a","port":0})", back));
  EXPECT_FALSE(decode_instance(R"({"address":"a","port":70000})", back));
  EXPECT_FALSE(decode_instance(R"({"port":80})", back));
  EXPECT_FALSE(decode_instance(R"({"address":"a","port":80,"tags":[1]})", back));
  EXPECT_FALSE(decode_instance("[]", back));
}

}  // namespace
}  // namespace sidecar::registry::etcd
