// The esp32s3 environment's Inference port: TFLite Micro over static buffers (tinyfleet_model.cpp).
#pragma once

#include "esp32s3_agent.h"

// The model runner esp32s3_main.cpp puts in esp32s3::Config::inference (the agent's health check runs it);
// its own mutex keeps the health check and the application's inferences apart.
tinyfleet::Inference& tinyfleet_model_inference();
// One inference of the device's ML path, for the application's sensing task (one task: the input and output
// buffers are this file's) after it gave the agent new samples (esp32s3::samples): the running bundle's
// feature extractor over the ring's latest window into the model's input (esp32s3::model_input), the model
// (TFLite Micro), and its output through the bundle's thresholds (esp32s3::inference), counted in the
// telemetry window with its latency. Ok and `decision`; NotFound while the ring holds less than a window;
// InvalidState without a loaded model; InvalidArgument if the model's input is not the extractor's output
// (or a tensor is larger than this file's buffers); the port's error if the model failed.
tinyfleet::Status tinyfleet_model_infer(tinyfleet::Decision& decision);
// esp32s3::Config::prepare_inference: loads the model of the bank boot selection chose.
void tinyfleet_model_prepare(tinyfleet::Flash& flash, tinyfleet::Crypto& crypto, const tinyfleet::BootDecision& boot);
