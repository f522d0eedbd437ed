#include "filters/basic_auth/htpasswd.h"

#include <gtest/gtest.h>

namespace sidecar::filters::basic_auth {
namespace {

// Made with Python's crypt (libxcrypt) and hashlib, password "s3cret".
constexpr const char* kBcrypt = "$2y$04$abcdefghijklmnopqrstuuLZYjhNQAOdpbzt4WxWlUHjv1wsyH5DG";
constexpr const char* kSha512 =
    "$6$saltsalt$As4wrv0kZlfch1du9WeH7qhskyLriQWySXrZzynnvi46nFnNxjdpl6ksRegrrKexvhIa/"
    "Iny8S8uF3fVWTMuC1";
constexpr const char* kSha256 = "$5$saltsalt$i1q2ZQzc.tl/BQ6CHiENAcVDvEY6nJ1OWlWXKh94b1.";
constexpr const char* kSha1 = "{SHA}/vNB+F2HQ559kaLUZbmHHvZrXpg=";

TEST(BasicAuth, VerifiesEveryAcceptedHash) {
  for (const char* h : {kBcrypt, kSha512, kSha256, kSha1}) {
    EXPECT_TRUE(verify(h, "s3cret")) << h;
    EXPECT_FALSE(verify(h, "s3cret ")) << h;
    EXPECT_FALSE(verify(h, "")) << h;
    EXPECT_FALSE(verify(h, std::string_view("s3cret\0x", 8))) << h;
  }
  // A tampered hash never matches.
  std::string bad = kBcrypt;
  bad.back() = bad.back() == 'G' ? 'H' : 'G';
  EXPECT_FALSE(verify(bad, "s3cret"));
}

TEST(BasicAuth, ParsesHtpasswd) {
  std::vector<User> users;
  std::string why;
  const std::string text = std::string("# users\n\nalice:") + kBcrypt + "\r\nbob:" + kSha1 +
                           "\ncarol:" + kSha512 + ":18000:0:99999:7:::\n";
  ASSERT_TRUE(parse_htpasswd(text, users, why)) << why;
  ASSERT_EQ(users.size(), 3u);
  EXPECT_EQ(users[0].name, "alice");
  EXPECT_EQ(users[0].hash, kBcrypt);
  EXPECT_EQ(users[1].name, "bob");
  EXPECT_EQ(hash_kind(users[1].hash), HashKind::kSha1);
  EXPECT_EQ(users[2].hash, kSha512);  // /etc/shadow's extra fields dropped
}

TEST(BasicAuth, RefusesWeakOrBrokenEntries) {
  std::vector<User> users;
  std::string why;
  EXPECT_FALSE(parse_htpasswd("alice:s3cret\n", users, why));
  EXPECT_NE(why.find("line 1: the password is not hashed"), std::string::npos) << why;
  EXPECT_FALSE(parse_htpasswd("\nalice:$apr1$abc$def\n", users, why));
  EXPECT_NE(why.find("line 2: MD5 hashes"), std::string::npos) << why;
  EXPECT_FALSE(parse_htpasswd("alice:$1$abc$def\n", users, why));
  EXPECT_FALSE(parse_htpasswd("alice:abJnggxhB/yWI\n", users, why));  // DES crypt
  EXPECT_FALSE(parse_htpasswd("alice:{SHA}short\n", users, why));
  EXPECT_NE(why.find("20-byte"), std::string::npos) << why;
  EXPECT_FALSE(parse_htpasswd(":{SHA}/vNB+F2HQ559kaLUZbmHHvZrXpg=\n", users, why));
  EXPECT_FALSE(parse_htpasswd(std::string("a:") + kSha1 + "\na:" + kSha1 + "\n", users, why));
  EXPECT_NE(why.find("listed twice"), std::string::npos) << why;
}

TEST(BasicAuth, DecodesAuthorization) {
  std::string user, password;
  ASSERT_TRUE(decode_basic("Basic YWxpY2U6czNjcmV0", user, password));  // alice:s3cret
  EXPECT_EQ(user, "alice");
  EXPECT_EQ(password, "s3cret");
  ASSERT_TRUE(decode_basic("basic YTpiOmM=", user, password));  // a:b:c, scheme any case
  EXPECT_EQ(user, "a");
  EXPECT_EQ(password, "b:c");
  EXPECT_FALSE(decode_basic("Bearer YWxpY2U6czNjcmV0", user, password));
  EXPECT_FALSE(decode_basic("Basic", user, password));
  EXPECT_FALSE(decode_basic("Basic !!!!", user, password));
  EXPECT_FALSE(decode_basic("Basic YWxpY2U=", user, password));           // no colon
  EXPECT_FALSE(decode_basic("Basic YWxpY2U6czNjcmV0=", user, password));  // bad length
}

}  // namespace
}  // namespace sidecar::filters::basic_auth
