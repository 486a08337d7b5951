// Stand-in for ESP-IDF v5's freertos/task.h: declares only what device/ports/esp32s3 uses, with the names
// and signatures of ESP-IDF v5's FreeRTOS (ulStackDepth in bytes on ESP-IDF), so that the port's use of
// tinyfleet's API and its C++ are compiled on the host (device/targets/host-tests/CMakeLists.txt). It says
// nothing about the real ESP-IDF: nothing here is built or run against it.
#pragma once

#ifndef INC_FREERTOS_H
#error "include FreeRTOS.h must appear in source files before include task.h"
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tskTaskControlBlock* TaskHandle_t;

TaskHandle_t xTaskCreateStatic(TaskFunction_t pxTaskCode, const char* const pcName, const uint32_t ulStackDepth,
                               void* const pvParameters, UBaseType_t uxPriority, StackType_t* const puxStackBuffer,
                               StaticTask_t* const pxTaskBuffer);
void vTaskDelay(const TickType_t xTicksToDelay);

#ifdef __cplusplus
}
#endif
