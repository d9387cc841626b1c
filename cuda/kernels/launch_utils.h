// Host-side launch helpers shared by the CUDA kernels.
#pragma once

#include <cuda_runtime.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace jax_mea::cuda {

// One bit per device ordinal (the first 64): whether a per-device, per-kernel
// setting has been applied.
struct DeviceFlags {
  std::atomic<uint64_t> bits{0};
};

// Raises a kernel's dynamic shared-memory limit to `bytes` once per device
// (needed above 48 KiB). Fails, as the launch would, when the device has less.
template <typename Kernel>
cudaError_t EnsureDynamicSmem(Kernel kernel, size_t bytes, DeviceFlags& flags) {
  if (bytes <= 48 * 1024) return cudaSuccess;
  int dev = 0;
  if (cudaError_t err = cudaGetDevice(&dev); err != cudaSuccess) return err;
  const uint64_t bit = dev < 64 ? (uint64_t{1} << dev) : 0;
  if (bit && (flags.bits.load(std::memory_order_acquire) & bit)) return cudaSuccess;
  int optin = 0;
  if (cudaError_t err =
          cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev);
      err != cudaSuccess) {
    return err;
  }
  if (bytes > static_cast<size_t>(optin)) return cudaErrorInvalidConfiguration;
  if (cudaError_t err = cudaFuncSetAttribute(reinterpret_cast<const void*>(kernel),
                                             cudaFuncAttributeMaxDynamicSharedMemorySize,
                                             static_cast<int>(bytes));
      err != cudaSuccess) {
    return err;
  }
  if (bit) flags.bits.fetch_or(bit, std::memory_order_acq_rel);
  return cudaSuccess;
}

// A device attribute of device `dev`, looked up once per device (the first 64
// ordinals; others on every call); 0 where the query fails or gives no positive value
// (then asked again next time).
template <cudaDeviceAttr kAttr>
int DeviceAttribute(int dev) {
  static std::atomic<int> values[64] = {};  // 0: not looked up yet
  if (dev >= 0 && dev < 64) {
    if (const int v = values[dev].load(std::memory_order_relaxed); v != 0) return v;
  }
  int value = 0;
  if (cudaDeviceGetAttribute(&value, kAttr, dev) != cudaSuccess || value <= 0) {
    cudaGetLastError();
    return 0;
  }
  if (dev >= 0 && dev < 64) values[dev].store(value, std::memory_order_relaxed);
  return value;
}
// The same of the current device; 0 where there is none.
template <cudaDeviceAttr kAttr>
int CurrentDeviceAttribute() {
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return DeviceAttribute<kAttr>(dev);
}
inline int CurrentDeviceMajor() {
  return CurrentDeviceAttribute<cudaDevAttrComputeCapabilityMajor>();
}
inline int CurrentDeviceSmCount() {
  return CurrentDeviceAttribute<cudaDevAttrMultiProcessorCount>();
}

}  // namespace jax_mea::cuda
