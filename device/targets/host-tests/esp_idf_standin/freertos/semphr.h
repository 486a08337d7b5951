// Stand-in for ESP-IDF v5's freertos/semphr.h: declares only what device/ports/esp32s3 uses, as FreeRTOS
// defines it: macros over the queue functions (queue.h), so that the port's use of tinyfleet's API and its
// C++ are compiled on the host (device/targets/host-tests/CMakeLists.txt). It says nothing about the real
// ESP-IDF: nothing here is built or run against it.
#pragma once

#ifndef INC_FREERTOS_H
#error "include FreeRTOS.h must appear in source files before include semphr.h"
#endif

#include "queue.h"

typedef QueueHandle_t SemaphoreHandle_t;

#define semGIVE_BLOCK_TIME ((TickType_t)0U)

#define xSemaphoreCreateMutexStatic(pxMutexBuffer) xQueueCreateMutexStatic(queueQUEUE_TYPE_MUTEX, (pxMutexBuffer))
#define xSemaphoreTake(xSemaphore, xBlockTime) xQueueSemaphoreTake((xSemaphore), (xBlockTime))
#define xSemaphoreGive(xSemaphore) \
  xQueueGenericSend((QueueHandle_t)(xSemaphore), NULL, semGIVE_BLOCK_TIME, queueSEND_TO_BACK)
