// Stand-in for ESP-IDF v5's freertos/queue.h, which semphr.h includes: declares only what the semaphore
// macros device/ports/esp32s3 uses expand to, with the names and signatures of ESP-IDF v5's FreeRTOS, so
// that the port's use of tinyfleet's API and its C++ are compiled on the host
// (device/targets/host-tests/CMakeLists.txt). It says nothing about the real ESP-IDF: nothing here is built
// or run against it.
#pragma once

#ifndef INC_FREERTOS_H
#error "include FreeRTOS.h must appear in source files before include queue.h"
#endif

#ifdef __cplusplus
extern "C" {
#endif

struct QueueDefinition;
typedef struct QueueDefinition* QueueHandle_t;

#define queueSEND_TO_BACK ((BaseType_t)0)
#define queueQUEUE_TYPE_MUTEX ((uint8_t)1U)

QueueHandle_t xQueueCreateMutexStatic(const uint8_t ucQueueType, StaticQueue_t* pxStaticQueue);
BaseType_t xQueueSemaphoreTake(QueueHandle_t xQueue, TickType_t xTicksToWait);
BaseType_t xQueueGenericSend(QueueHandle_t xQueue, const void* const pvItemToQueue, TickType_t xTicksToWait,
                             const BaseType_t xCopyPosition);

#ifdef __cplusplus
}
#endif
