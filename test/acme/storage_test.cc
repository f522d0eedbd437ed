#include "acme/storage.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace sidecar::acme {
namespace {

namespace fs = std::filesystem;

unsigned mode_of(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

class StorageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/acme-storage-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = std::string(tmpl) + "/acme";
  }
  void TearDown() override { fs::remove_all(fs::path(dir_).parent_path()); }
  std::string dir_;
};

TEST_F(StorageTest, AccountKeyIsCreatedOnceAndKept) {
  Storage s(dir_);
  s.prepare();
  EXPECT_EQ(mode_of(dir_), 0700u);
  bool created = false;
  const PrivateKey first = s.account_key(created);
  EXPECT_TRUE(created);
  EXPECT_TRUE(first.is_p256());
  EXPECT_EQ(mode_of(dir_ + "/account.key"), 0600u);
  const PrivateKey again = s.account_key(created);
  EXPECT_FALSE(created);
  EXPECT_EQ(jwk_thumbprint(first), jwk_thumbprint(again));
}

TEST_F(StorageTest, AnAccountKeyOfAnotherTypeIsAnError) {
  Storage s(dir_);
  s.prepare();
  write_file_atomic(dir_ + "/account.key", PrivateKey::generate("rsa2048").to_pem());
  bool created = false;
  EXPECT_THROW(s.account_key(created), std::runtime_error);
}

TEST_F(StorageTest, AccountRoundTripAndForget) {
  Storage s(dir_);
  s.prepare();
  EXPECT_FALSE(s.account());
  s.save_account({"https://ca/dir", "https://ca/acct/1", "mailto:a@b.c"});
  auto a = s.account();
  ASSERT_TRUE(a);
  EXPECT_EQ(a->url, "https://ca/acct/1");
  EXPECT_EQ(a->contact, "mailto:a@b.c");
  EXPECT_EQ(mode_of(dir_ + "/account.json"), 0600u);
  s.forget_account();
  EXPECT_FALSE(s.account());
}

TEST_F(StorageTest, CertificatesSwitchAtomicallyAndThePreviousOneStays) {
  Storage s(dir_);
  s.prepare();
  EXPECT_FALSE(s.certificate());
  StoredCertificate c{"CERT1", "KEY1", "https://ca/dir", {"a.example", "b.example"}, 42, ""};
  const std::string p1 = s.save_certificate(c, "AA01");
  EXPECT_EQ(p1, dir_ + "/certificates/AA01");
  EXPECT_EQ(fs::read_symlink(dir_ + "/current"), "certificates/AA01");
  for (const char* f : {"/cert.pem", "/key.pem", "/meta.json"}) {
    EXPECT_EQ(mode_of(p1 + f), 0600u) << f;
  }
  EXPECT_EQ(mode_of(p1), 0700u);
  auto loaded = s.certificate();
  ASSERT_TRUE(loaded);
  EXPECT_EQ(loaded->cert_pem, "CERT1");
  EXPECT_EQ(loaded->key_pem, "KEY1");
  EXPECT_EQ(loaded->domains, (std::vector<std::string>{"a.example", "b.example"}));
  EXPECT_EQ(loaded->issued_at, 42);
  EXPECT_EQ(loaded->path, p1);

  c.cert_pem = "CERT2";
  s.save_certificate(c, "BB02");
  c.cert_pem = "CERT3";
  s.save_certificate(c, "CC03");
  EXPECT_EQ(s.certificate()->cert_pem, "CERT3");
  // The current and the previous one; nothing else, no temporary leftovers.
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir_ + "/certificates")) {
    names.push_back(e.path().filename());
  }
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"BB02", "CC03"}));
  EXPECT_FALSE(fs::exists(dir_ + "/current.tmp"));
}

TEST_F(StorageTest, ADamagedCertificateDirectoryReadsAsNone) {
  Storage s(dir_);
  s.prepare();
  s.save_certificate({"C", "K", "d", {"a.example"}, 1, ""}, "AA");
  fs::remove(dir_ + "/certificates/AA/meta.json");
  EXPECT_FALSE(s.certificate());
}

TEST(WriteFileAtomic, ReplacesWithTheModeAndLeavesNoTemporary) {
  char tmpl[] = "/tmp/acme-write-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string path = std::string(tmpl) + "/f";
  write_file_atomic(path, "one");
  write_file_atomic(path, "two");
  std::ifstream in(path);
  std::string text;
  std::getline(in, text);
  EXPECT_EQ(text, "two");
  EXPECT_EQ(mode_of(path), 0600u);
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  EXPECT_THROW(write_file_atomic(std::string(tmpl) + "/no/such/dir/f", "x"), std::runtime_error);
  fs::remove_all(tmpl);
}

}  // namespace
}  // namespace sidecar::acme
