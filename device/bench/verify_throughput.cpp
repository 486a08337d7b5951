// Streaming-verify throughput of the core against mbedTLS SHA-256 alone over the same bytes, same chunks,
// same run (best of N). Driven by bench/bench_device.py, which reads the JSON line it prints.
// Usage: verify_throughput <bundle> <key.der> <hardware_class> <device_id> <min_counter> <now> <chunk> <repeat>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <vector>

#include "mbedtls_crypto.h"
#include "tinyfleet/stream_verifier.h"

using namespace tinyfleet;

namespace {

std::vector<uint8_t> read_all(const char* path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

template <typename F>
double best_seconds(int repeat, F&& fn) {
  double best = 1e30;
  for (int i = 0; i < repeat; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    fn();
    std::chrono::duration<double> dt = std::chrono::steady_clock::now() - t0;
    if (dt.count() < best) best = dt.count();
  }
  return best;
}

StreamVerifier* g_verifier;  // 6.5 KiB: static storage, as on a device

}  // namespace

int main(int argc, char** argv) {
  if (argc != 9) {
    std::fprintf(stderr, "usage: %s bundle key.der hardware_class device_id min_counter now chunk repeat\n", argv[0]);
    return 2;
  }
  const std::vector<uint8_t> bundle = read_all(argv[1]);
  const std::vector<uint8_t> der = read_all(argv[2]);
  if (bundle.empty() || der.empty()) {
    std::fprintf(stderr, "error: cannot read %s or %s\n", argv[1], argv[2]);
    return 2;
  }
  const size_t chunk = std::strtoul(argv[7], nullptr, 10);
  const int repeat = std::atoi(argv[8]);
  if (chunk == 0 || repeat <= 0) {
    std::fprintf(stderr, "error: chunk and repeat must be positive\n");
    return 2;
  }
  host::MbedtlsCrypto crypto;
  TrustedKey key;
  key.der = der.data();
  key.der_len = static_cast<uint16_t>(der.size());
  compute_key_id(crypto, key);
  VerifyPolicy policy;
  policy.hardware_class = argv[3];
  policy.device_id = argv[4];
  policy.min_counter = static_cast<uint32_t>(std::strtoul(argv[5], nullptr, 10));
  policy.now = std::strtoull(argv[6], nullptr, 10);
  policy.keys = &key;
  policy.key_count = 1;
  static StreamVerifier verifier(crypto, policy);
  g_verifier = &verifier;

  // The three measurements are interleaved, one of each per round, so a burst of load from other
  // processes on a shared machine disturbs all of them alike; each keeps its best round.
  Status verdict = Status::Ok;
  uint32_t poff = 0;
  uint8_t digest[32];
  double t_verify = 1e30, t_prefix = 1e30, t_sha = 1e30;
  for (int round = 0; round < repeat; ++round) {
    // Streaming verify of the whole bundle.
    t_verify = std::min(t_verify, best_seconds(1, [&] {
      g_verifier->reset();
      Status s = Status::NeedMoreBytes;
      for (size_t off = 0; off < bundle.size(); off += chunk)
        s = g_verifier->feed(bundle.data() + off, bundle.size() - off < chunk ? bundle.size() - off : chunk);
      if (s == Status::NeedMoreBytes) s = g_verifier->finish();
      verdict = s;
    }));
    // The fixed cost: the metadata prefix alone (parse, SHA-256 of the signed region, ECDSA P-256 verify).
    t_prefix = std::min(t_prefix, best_seconds(1, [&] {
      g_verifier->reset();
      BundleHeader h;
      if (parse_header(bundle.data(), bundle.size(), h) != Status::Ok) return;
      poff = h.payload_offset;
      g_verifier->feed(bundle.data(), poff);
    }));
    // Baseline: mbedTLS SHA-256 alone over the same bytes in the same chunks.
    t_sha = std::min(t_sha, best_seconds(1, [&] {
      Sha256Context ctx;
      crypto.sha256_start(ctx);
      for (size_t off = 0; off < bundle.size(); off += chunk)
        crypto.sha256_update(ctx, bundle.data() + off, bundle.size() - off < chunk ? bundle.size() - off : chunk);
      crypto.sha256_finish(ctx, digest);
    }));
  }
  if (!g_verifier->prefix_verified()) {
    std::fprintf(stderr, "error: the bundle's metadata prefix did not verify\n");
    return 1;
  }
  if (verdict != Status::Ok) {
    std::fprintf(stderr, "error: the bundle did not verify: %s\n", status_name(verdict));
    return 1;
  }
  const double mb = bundle.size() / 1e6;
  // Payload phase: everything after the prefix, against SHA-256 of the same bytes' share of t_sha.
  const double t_payload = t_verify - t_prefix;
  const double sha_payload = t_sha * static_cast<double>(bundle.size() - poff) / static_cast<double>(bundle.size());
  std::printf("{\"bytes\": %zu, \"chunk\": %zu, \"repeat\": %d, \"verify_s\": %.6f, \"sha256_s\": %.6f, "
              "\"prefix_verify_s\": %.6f, \"verify_mb_s\": %.2f, \"sha256_mb_s\": %.2f, \"ratio\": %.4f, "
              "\"payload_phase_ratio\": %.4f}\n",
              bundle.size(), chunk, repeat, t_verify, t_sha, t_prefix, mb / t_verify, mb / t_sha, t_sha / t_verify,
              sha_payload / t_payload);
  return 0;
}
