# CMake toolchain file for Debian's arm-none-eabi-gcc (gcc-arm-none-eabi + libnewlib-arm-none-eabi),
# Cortex-M4, Thumb-2. Usage: cmake -DCMAKE_TOOLCHAIN_FILE=device/cmake/arm-none-eabi.cmake ...
#   -DTINYFLEET_ARM_FLOAT=soft|hard   soft (default): no FPU use, runs on any M4; hard: FPv4-SP, hard-float ABI.
# Code is built for size (-Os), without exceptions or RTTI, one section per function and object so the
# linker drops everything unused (--gc-sections).
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR arm)

set(CMAKE_C_COMPILER arm-none-eabi-gcc)
set(CMAKE_CXX_COMPILER arm-none-eabi-g++)
set(CMAKE_ASM_COMPILER arm-none-eabi-gcc)
find_program(CMAKE_OBJCOPY arm-none-eabi-objcopy)
find_program(CMAKE_OBJDUMP arm-none-eabi-objdump)
find_program(CMAKE_SIZE arm-none-eabi-size)
find_program(CMAKE_NM arm-none-eabi-nm)

# Compiler checks link a test program: a static library needs no startup code or linker script.
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)

set(TINYFLEET_ARM_FLOAT soft CACHE STRING "Cortex-M4 float ABI: soft or hard")
set_property(CACHE TINYFLEET_ARM_FLOAT PROPERTY STRINGS soft hard)
if(TINYFLEET_ARM_FLOAT STREQUAL "hard")
  set(_tf_cpu "-mcpu=cortex-m4 -mthumb -mfpu=fpv4-sp-d16 -mfloat-abi=hard")
else()
  set(_tf_cpu "-mcpu=cortex-m4 -mthumb -mfloat-abi=soft")
endif()

set(_tf_common "${_tf_cpu} -Os -ffunction-sections -fdata-sections")
set(CMAKE_C_FLAGS_INIT "${_tf_common}")
set(CMAKE_CXX_FLAGS_INIT "${_tf_common} -fno-exceptions -fno-rtti -fno-threadsafe-statics -fno-use-cxa-atexit")
set(CMAKE_ASM_FLAGS_INIT "${_tf_cpu}")
# nano.specs: newlib-nano. No syscalls are provided: an image that pulls in stdio or malloc fails to link.
set(CMAKE_EXE_LINKER_FLAGS_INIT "${_tf_cpu} --specs=nano.specs -nostartfiles -Wl,--gc-sections")

# -Os everywhere, whatever the build type.
set(CMAKE_C_FLAGS_RELEASE_INIT "")
set(CMAKE_CXX_FLAGS_RELEASE_INIT "")
set(CMAKE_C_FLAGS_MINSIZEREL_INIT "")
set(CMAKE_CXX_FLAGS_MINSIZEREL_INIT "")

set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
