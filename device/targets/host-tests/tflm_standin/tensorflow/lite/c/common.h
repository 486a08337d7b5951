// Stand-in for TensorFlow Lite Micro's tensorflow/lite/c/common.h: declares only the types
// device/ports/tflm uses (status, element types, tensor), under TFLM's names, so the port compiles on a
// machine without TFLM's source (device/targets/host-tests/CMakeLists.txt, docs/ports.md). Written from
// TFLM's documented API, not copied from it; the port reads fields by name, never by layout. It says
// nothing about the real library: nothing here is built or run against it.
#pragma once

#include <stddef.h>
#include <stdint.h>

typedef enum TfLiteStatus { kTfLiteOk = 0, kTfLiteError = 1 } TfLiteStatus;

typedef enum TfLiteType {
  kTfLiteNoType,
  kTfLiteFloat32,
  kTfLiteInt32,
  kTfLiteUInt8,
  kTfLiteInt64,
  kTfLiteString,
  kTfLiteBool,
  kTfLiteInt16,
  kTfLiteComplex64,
  kTfLiteInt8,
} TfLiteType;

typedef struct TfLiteIntArray {
  int size;
  int data[6];  // TFLM: a flexible array member; six is the manifest's largest rank
} TfLiteIntArray;

typedef struct TfLiteQuantizationParams {
  float scale;
  int32_t zero_point;
} TfLiteQuantizationParams;

typedef union TfLitePtrUnion {
  int8_t* int8;
  uint8_t* uint8;
  void* data;
} TfLitePtrUnion;

typedef struct TfLiteTensor {
  TfLiteType type;
  TfLitePtrUnion data;
  TfLiteIntArray* dims;
  TfLiteQuantizationParams params;
  size_t bytes;
} TfLiteTensor;
