// ESP-IDF entry point of a tinyfleet ESP32-S3 device: NVS, the default event loop and network, then the
// agent (device/ports/esp32s3/esp32s3_agent.h) with the TFLite Micro model runner (tinyfleet_model.h). The
// product's parts are declared in tinyfleet_app.h.
#include "esp_event.h"
#include "esp_log.h"
#include "esp_netif.h"
#include "nvs_flash.h"
#include "tinyfleet_app.h"
#include "tinyfleet_model.h"

extern "C" void app_main() {
  esp_err_t err = nvs_flash_init();
  if (err == ESP_ERR_NVS_NO_FREE_PAGES || err == ESP_ERR_NVS_NEW_VERSION_FOUND) {
    nvs_flash_erase();
    err = nvs_flash_init();
  }
  ESP_ERROR_CHECK(err);
  ESP_ERROR_CHECK(esp_netif_init());
  ESP_ERROR_CHECK(esp_event_loop_create_default());
  ESP_ERROR_CHECK(tinyfleet_app_network_up());
  static tinyfleet::esp32s3::Config config;
  tinyfleet_app_config(config);
  config.inference = &tinyfleet_model_inference();
  config.prepare_inference = tinyfleet_model_prepare;
  err = tinyfleet::esp32s3::start(config);
  if (err != ESP_OK) ESP_LOGE("tinyfleet", "agent did not start: %s", esp_err_to_name(err));
}
