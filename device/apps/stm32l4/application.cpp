#include "application.h"

namespace tinyfleet::app {

void Application::set_model(size_t input_len, size_t output_len) {
  const bool fits = input_len <= input_cap_ && output_len <= output_cap_;
  input_len_ = fits ? input_len : 0;
  output_len_ = fits ? output_len : 0;
}

void Application::boot(const BootDecision& decision) {
  last_tick_ms_ = clock_.monotonic_ms();
  frames_since_inference_ = 0;
  agent_.on_boot(decision);
  after_event();
}

void Application::step() {
  transport_.poll(agent_);
  after_event();

  const uint16_t channels = agent_.calibration().channel_count;
  const uint32_t n = channels == 0 ? 0 : sensor_.read(frames_, kMaxFramesPerRead, channels);
  if (n > 0) {
    agent_.on_samples(frames_, n);
    frames_since_inference_ += n;
    if (frames_since_inference_ >= config_.hop_frames) {
      frames_since_inference_ = 0;
      run_inference();
    }
  }

  const uint32_t now = clock_.monotonic_ms();
  if (now - last_tick_ms_ >= config_.tick_ms) {  // wraps: a difference only
    last_tick_ms_ = now;
    int16_t temp_q8 = 0;
    if (sensor_.temperature(temp_q8)) agent_.on_temperature(temp_q8);
    agent_.on_tick();
    after_event();
  }
}

void Application::run_inference() {
  if (input_len_ == 0 || output_len_ == 0) {
    ++counters_.model_failed;
    return;
  }
  const Status extracted = features_.extract(agent_, input_, input_len_);
  if (extracted != Status::Ok) {
    ++(extracted == Status::NotFound ? counters_.window_short : counters_.extract_failed);
    return;
  }
  InferenceResult result;
  if (model_.run(input_, input_len_, output_, output_len_, result) != Status::Ok) {
    ++counters_.model_failed;
    return;
  }
  counters_.last = agent_.on_inference(output_, output_len_, result.latency_us);
  ++counters_.inferences;
}

void Application::after_event() {
  while (relay_.health_check_due && !relay_.reboot_due) {
    relay_.health_check_due = false;
    ++counters_.health_checks;
    agent_.run_health_check();
  }
  if (relay_.reboot_due) {
    relay_.reboot_due = false;
    power_.request_reboot();
  }
}

}  // namespace tinyfleet::app
