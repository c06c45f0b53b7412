package dir4j.engine.cuda;

import static jcuda.driver.JCudaDriver.cuDeviceGet;
import static jcuda.driver.JCudaDriver.cuDeviceGetAttribute;
import static jcuda.driver.JCudaDriver.cuDeviceGetName;
import static jcuda.driver.JCudaDriver.cuDeviceTotalMem;

import dir4j.kernels.Ptx;
import java.nio.charset.StandardCharsets;
import java.util.List;
import jcuda.driver.CUdevice;
import jcuda.driver.CUdevice_attribute;

/**
 * One line on whether CUDA is usable (for {@code dir4j info}): the devices, the driver, cuBLAS,
 * cuDNN and the kernels when it is, and why not otherwise. Creates no context.
 */
public final class CudaStatus {
    private CudaStatus() {}

    /** Prints the status line (the GPU check script's first step). */
    public static void main(String[] args) {
        System.out.println(describe());
    }

    /** "usable: cuda:0 NVIDIA H200 (compute 9.0, 132 SMs, 139.80 GiB); driver 580.159 (CUDA 13.0); cuBLAS ...". */
    public static String describe() {
        CudaDriver.Availability a = CudaDriver.availability();
        if (!a.usable()) {
            return "not usable: " + a.reason() + "; use --device cpu";
        }
        StringBuilder sb = new StringBuilder("usable: ");
        for (int i = 0; i < a.devices(); i++) {
            sb.append(i > 0 ? ", " : "").append(device(i));
        }
        String release = CudaDriver.kernelDriverRelease();
        sb.append("; driver ").append(release != null ? release + " " : "").append("(CUDA ").append(a.cudaVersion())
                .append(')');
        sb.append("; cuBLAS ").append(library(Cublas::version, Cublas::library));
        sb.append("; cuDNN ").append(library(Cudnn::version, Cudnn::library));
        List<String> modules = Ptx.modules();
        sb.append("; kernels ").append(Ptx.buildDescription()
                .map(d -> d + ", " + modules.size() + " files")
                .orElse("not built (nvcc not found at build time): only cuBLAS/cuDNN ops would run"));
        return sb.toString();
    }

    private static String library(java.util.function.Supplier<String> version,
                                  java.util.function.Supplier<NativeFunctions> functions) {
        try {
            String v = version.get();
            List<String> missing = functions.get().missing();
            return missing.isEmpty() ? v : v + " lacking " + String.join(", ", missing);
        } catch (RuntimeException e) {
            return "unavailable: " + e.getMessage();
        }
    }

    private static String device(int ordinal) {
        try {
            CUdevice dev = new CUdevice();
            CudaDriver.check(cuDeviceGet(dev, ordinal), "cuDeviceGet");
            byte[] name = new byte[256];
            CudaDriver.check(cuDeviceGetName(name, name.length, dev), "cuDeviceGetName");
            int len = 0;
            while (len < name.length && name[len] != 0) {
                len++;
            }
            int[] major = {0};
            int[] minor = {0};
            int[] sms = {0};
            cuDeviceGetAttribute(major, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev);
            cuDeviceGetAttribute(minor, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev);
            cuDeviceGetAttribute(sms, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, dev);
            long[] total = {0};
            cuDeviceTotalMem(total, dev);
            return String.format("cuda:%d %s (compute %d.%d, %d SMs, %s)", ordinal,
                    new String(name, 0, len, StandardCharsets.UTF_8), major[0], minor[0], sms[0],
                    CachingAllocator.bytes(total[0]));
        } catch (RuntimeException e) {
            return "cuda:" + ordinal + " (" + e.getMessage() + ")";
        }
    }
}
