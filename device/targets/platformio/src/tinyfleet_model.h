// The esp32s3 environment's Inference port: TFLite Micro over static buffers (tinyfleet_model.cpp).
#pragma once

#include "esp32s3_agent.h"

// The model runner esp32s3_main.cpp puts in esp32s3::Config::inference. The application's sensing task
// runs its inferences through it too (run(), then esp32s3::inference() with the output and latency): its
// own mutex keeps those and the agent's health check apart.
tinyfleet::Inference& tinyfleet_model_inference();
// esp32s3::Config::prepare_inference: loads the model of the bank boot selection chose.
void tinyfleet_model_prepare(tinyfleet::Flash& flash, tinyfleet::Crypto& crypto, const tinyfleet::BootDecision& boot);
