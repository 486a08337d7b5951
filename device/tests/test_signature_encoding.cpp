// The crypto port accepts a signature only in its one encoding (docs/bundle-format.md, "Signature block"):
// strict DER and low s. mbedTLS alone accepts the high-s twin and BER variants; each would be a second
// digest for the same bundle.
#include <gtest/gtest.h>

#include <mbedtls/pk.h>

#include <cstring>
#include <vector>

#include "mbedtls_crypto.h"
#include "support/bundle_builder.h"

using namespace tinyfleet;
using Bytes = std::vector<uint8_t>;

namespace {

const uint8_t kOrder[32] = {0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF,
                            0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xBC, 0xE6, 0xFA, 0xAD, 0xA7, 0x17,
                            0x9E, 0x84, 0xF3, 0xB9, 0xCA, 0xC2, 0xFC, 0x63, 0x25, 0x51};

struct Sig {
  Bytes r, s;  // magnitudes, big-endian, no sign zero
};

Bytes der_int(const Bytes& magnitude, bool extra_zero = false) {
  Bytes v;
  if (extra_zero || (magnitude[0] & 0x80)) v.push_back(0);
  if (extra_zero && (magnitude[0] & 0x80)) v.push_back(0);
  v.insert(v.end(), magnitude.begin(), magnitude.end());
  Bytes out = {0x02, static_cast<uint8_t>(v.size())};
  out.insert(out.end(), v.begin(), v.end());
  return out;
}

Bytes der(const Sig& sig) {
  Bytes body = der_int(sig.r);
  Bytes s = der_int(sig.s);
  body.insert(body.end(), s.begin(), s.end());
  Bytes out = {0x30, static_cast<uint8_t>(body.size())};
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

Bytes magnitude(const uint8_t* p, size_t n) {
  while (n > 1 && *p == 0) ++p, --n;
  return Bytes(p, p + n);
}

Sig parse(const Bytes& d) {
  const uint8_t* r = d.data() + 2;
  const uint8_t* s = r + 2 + r[1];
  return {magnitude(r + 2, r[1]), magnitude(s + 2, s[1])};
}

Bytes n_minus(const Bytes& s) {
  uint8_t padded[32] = {};
  std::memcpy(padded + 32 - s.size(), s.data(), s.size());
  uint8_t out[32];
  int borrow = 0;
  for (int i = 31; i >= 0; --i) {
    const int d = kOrder[i] - padded[i] - borrow;
    out[i] = static_cast<uint8_t>(d & 0xFF);
    borrow = d < 0;
  }
  return magnitude(out, 32);
}

bool mbedtls_alone_verifies(const Bytes& pub, const uint8_t digest[32], const Bytes& sig) {
  mbedtls_pk_context pk;
  mbedtls_pk_init(&pk);
  const bool ok = mbedtls_pk_parse_public_key(&pk, pub.data(), pub.size()) == 0 &&
                  mbedtls_pk_verify(&pk, MBEDTLS_MD_SHA256, digest, 32, sig.data(), sig.size()) == 0;
  mbedtls_pk_free(&pk);
  return ok;
}

struct Signed {
  tftest::TestSigner signer{"signature-encoding"};
  host::MbedtlsCrypto crypto;
  uint8_t digest[32];
  Bytes sig;
  explicit Signed(const char* text) {
    const auto* p = reinterpret_cast<const uint8_t*>(text);
    sha256(crypto, p, std::strlen(text), digest);
    sig = signer.sign(p, std::strlen(text));
  }
  Status verify(const Bytes& s) {
    return crypto.ecdsa_p256_verify(signer.public_der().data(), signer.public_der().size(), digest, s.data(),
                                    s.size());
  }
};

}  // namespace

TEST(SignatureEncoding, TheLowSSignatureVerifiesItsHighTwinIsRefused) {
  for (int i = 0; i < 16; ++i) {
    Signed m(("message " + std::to_string(i)).c_str());
    ASSERT_TRUE(host::canonical_low_s_der(m.sig.data(), m.sig.size()));
    EXPECT_EQ(m.verify(m.sig), Status::Ok);
    Sig twin = parse(m.sig);
    twin.s = n_minus(twin.s);
    const Bytes high = der(twin);
    EXPECT_TRUE(mbedtls_alone_verifies(m.signer.public_der(), m.digest, high));  // why the port checks
    EXPECT_FALSE(host::canonical_low_s_der(high.data(), high.size()));
    EXPECT_EQ(m.verify(high), Status::BadSignature);
  }
}

TEST(SignatureEncoding, EveryOtherDerShapeOfTheSameSignatureIsRefused) {
  Signed m("tinyfleet");
  const Sig sig = parse(m.sig);
  Bytes body = der_int(sig.r);
  const Bytes s_int = der_int(sig.s);
  body.insert(body.end(), s_int.begin(), s_int.end());
  std::vector<Bytes> shapes;
  {  // r with a needless leading zero
    Bytes b = der_int(sig.r, true);
    b.insert(b.end(), s_int.begin(), s_int.end());
    b.insert(b.begin(), {0x30, static_cast<uint8_t>(b.size())});
    shapes.push_back(b);
  }
  {  // the SEQUENCE length in long form
    Bytes b = {0x30, 0x81, static_cast<uint8_t>(body.size())};
    b.insert(b.end(), body.begin(), body.end());
    shapes.push_back(b);
  }
  {  // a byte after the two INTEGERs, inside the SEQUENCE
    Bytes b = body;
    b.push_back(0);
    b.insert(b.begin(), {0x30, static_cast<uint8_t>(b.size())});
    shapes.push_back(b);
  }
  {  // a negative r (sign zero dropped): another integer, refused as malformed before mbedTLS
    Bytes b = {0x02, static_cast<uint8_t>(sig.r.size())};
    b.insert(b.end(), sig.r.begin(), sig.r.end());
    b.insert(b.end(), s_int.begin(), s_int.end());
    b.insert(b.begin(), {0x30, static_cast<uint8_t>(b.size())});
    if (sig.r[0] & 0x80) shapes.push_back(b);
  }
  for (size_t i = 0; i < shapes.size(); ++i) {
    EXPECT_FALSE(host::canonical_low_s_der(shapes[i].data(), shapes[i].size())) << i;
    EXPECT_EQ(m.verify(shapes[i]), Status::BadSignature) << i;
  }
  EXPECT_EQ(der(sig), m.sig);  // the one shape left is the signer's own
}

TEST(SignatureEncoding, MalformedBytesAreRefusedWithoutReadingPastThem) {
  const Bytes cases[] = {
      {},
      {0x30},
      {0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01},        // shorter than its length says
      {0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x02, 0x01},  // s longer than the SEQUENCE
      {0x31, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01},  // a SET
      {0x30, 0x06, 0x03, 0x01, 0x01, 0x02, 0x01, 0x01},  // a BIT STRING for r
      {0x30, 0x06, 0x02, 0x00, 0x02, 0x02, 0x01, 0x01},  // an empty INTEGER
  };
  for (const Bytes& c : cases) EXPECT_FALSE(host::canonical_low_s_der(c.data(), c.size()));
  const Bytes smallest = {0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01};  // r = s = 1: canonical, wrong
  EXPECT_TRUE(host::canonical_low_s_der(smallest.data(), smallest.size()));
}
