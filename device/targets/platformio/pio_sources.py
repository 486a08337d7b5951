"""PlatformIO pre-script: generated and third-party sources the environments share with the CMake builds.

native: tests/vectors embedded as C++ (device/targets/cortex-m/gen_vectors.py), as the QEMU image has them.
nucleo_l476rg, nucleo_l476rg_app: mbedTLS 2.28 from Debian's source (device/targets/fetch-mbedtls.sh), the
modules the crypto port uses, as device/targets/cortex-m/CMakeLists.txt compiles them.
"""

import subprocess
import sys
from pathlib import Path

from SCons.Script import DefaultEnvironment

env = DefaultEnvironment()
env.Append(CXXFLAGS=["-std=gnu++17", "-fno-exceptions", "-fno-rtti"])  # C++ only: mbedTLS is C
repo = Path(env.subst("$PROJECT_DIR"))  # platformio.ini is at the repository root
generated = Path(env.subst("$BUILD_DIR")) / "generated"
generated.mkdir(parents=True, exist_ok=True)
MBEDTLS_MODULES = ["asn1parse", "asn1write", "bignum", "constant_time", "ecdsa", "ecp", "ecp_curves", "md",
                   "memory_buffer_alloc", "oid", "pk", "pk_wrap", "pkparse", "platform", "platform_util", "sha256"]

if env.subst("$PIOENV") == "native":
    subprocess.run([sys.executable, str(repo / "device/targets/cortex-m/gen_vectors.py"), str(repo / "tests/vectors"),
                    str(generated / "vectors_data.cpp")], check=True)
    env.BuildSources("$BUILD_DIR/generated", str(generated))
elif env.subst("$PIOENV") in ("nucleo_l476rg", "nucleo_l476rg_app"):
    mbedtls = repo / "build/third_party/mbedtls"
    subprocess.run(["bash", str(repo / "device/targets/fetch-mbedtls.sh"), str(mbedtls)], check=True)
    env.BuildSources("$BUILD_DIR/mbedtls", str(mbedtls / "library"),
                     src_filter=["-<*>"] + [f"+<{m}.c>" for m in MBEDTLS_MODULES])
