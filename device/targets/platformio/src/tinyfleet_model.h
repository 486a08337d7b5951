// The esp32s3 environment's Inference port: TFLite Micro over static buffers (tinyfleet_model.cpp).
#pragma once

#include "esp32s3_agent.h"

// The model runner to put in esp32s3::Config::inference, and the function to put in its prepare_inference.
tinyfleet::Inference& tinyfleet_model_inference();
void tinyfleet_model_prepare(tinyfleet::Flash& flash, tinyfleet::Crypto& crypto, const tinyfleet::BootDecision& boot);
