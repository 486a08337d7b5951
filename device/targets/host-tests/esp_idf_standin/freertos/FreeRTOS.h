// Stand-in for ESP-IDF v5's freertos/FreeRTOS.h (with what it takes from projdefs.h and the Xtensa
// portmacro.h): declares only what device/ports/esp32s3 uses, with the names, types and macro forms of
// ESP-IDF v5's FreeRTOS (StackType_t is a byte on ESP-IDF, so stack depths are in bytes), so that the port's
// use of tinyfleet's API and its C++ are compiled on the host (device/targets/host-tests/CMakeLists.txt). It
// says nothing about the real ESP-IDF: nothing here is built or run against it.
#pragma once
#define INC_FREERTOS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// portmacro.h (Xtensa)
typedef uint8_t StackType_t;
typedef int BaseType_t;
typedef unsigned int UBaseType_t;
typedef uint32_t TickType_t;
#define portMAX_DELAY (TickType_t)0xffffffffUL

// FreeRTOSConfig.h: CONFIG_FREERTOS_HZ's default
#define configTICK_RATE_HZ 100

// projdefs.h
typedef void (*TaskFunction_t)(void*);
#define pdMS_TO_TICKS(xTimeInMs) \
  ((TickType_t)(((TickType_t)(xTimeInMs) * (TickType_t)configTICK_RATE_HZ) / (TickType_t)1000U))

// Storage for statically allocated kernel objects: opaque to the application, which only defines them.
typedef struct xSTATIC_QUEUE {
  void* pvDummy1[3];
  UBaseType_t uxDummy2[4];
} StaticQueue_t;
typedef StaticQueue_t StaticSemaphore_t;

typedef struct xSTATIC_TCB {
  void* pxDummy1[8];
  UBaseType_t uxDummy2[8];
} StaticTask_t;

#ifdef __cplusplus
}
#endif
