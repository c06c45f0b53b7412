package dir4j.engine.cuda;

import static jcuda.driver.JCudaDriver.cuDeviceGetCount;
import static jcuda.driver.JCudaDriver.cuDriverGetVersion;
import static jcuda.driver.JCudaDriver.cuGetErrorName;
import static jcuda.driver.JCudaDriver.cuGetErrorString;
import static jcuda.driver.JCudaDriver.cuInit;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Whether the CUDA driver is usable in this process, probed once: the driver library must open
 * (checked through FFM first, so that a machine without one never loads JCuda's natives, which
 * link against it), JCuda's driver natives must load, cuInit must succeed and find a device.
 */
final class CudaDriver {
    private static Availability availability;

    private CudaDriver() {}

    /**
     * The probe's result.
     *
     * @param reason        why CUDA is unusable (null when usable)
     * @param devices       CUDA devices found
     * @param driverVersion the CUDA version the driver supports, as 1000·major + 10·minor
     */
    record Availability(String reason, int devices, int driverVersion) {
        boolean usable() {
            return reason == null;
        }

        /** "13.0" */
        String cudaVersion() {
            return driverVersion / 1000 + "." + (driverVersion % 1000) / 10;
        }
    }

    /** The probe's result (probing on the first call). */
    static synchronized Availability availability() {
        if (availability == null) {
            availability = probe();
        }
        return availability;
    }

    /** The availability, or an error that says why CUDA is unusable. */
    static Availability require() {
        Availability a = availability();
        if (!a.usable()) {
            throw new IllegalStateException("CUDA is not usable: " + a.reason() + "; run with --device cpu");
        }
        return a;
    }

    private static Availability probe() {
        if (!NativeLibraries.driverPresent()) {
            // JCuda's natives link against the driver, so only the dynamic linker's path counts
            return new Availability("no NVIDIA driver (" + NativeLibraries.DRIVER + " not found; searched "
                    + NativeLibraries.linkerPath() + ")", 0, 0);
        }
        try {
            int rc = cuInit(0);
            if (rc != 0) {
                return new Availability("the NVIDIA driver is present but cuInit failed: " + describe(rc), 0, 0);
            }
            int[] count = {0};
            check(cuDeviceGetCount(count), "cuDeviceGetCount");
            int[] version = {0};
            check(cuDriverGetVersion(version), "cuDriverGetVersion");
            if (count[0] == 0) {
                return new Availability("the NVIDIA driver found no CUDA device", 0, version[0]);
            }
            return new Availability(null, count[0], version[0]);
        } catch (UnsatisfiedLinkError | ExceptionInInitializerError | NoClassDefFoundError e) {
            return new Availability("the NVIDIA driver is present but JCuda's driver natives did not load ("
                    + e + ")", 0, 0);
        } catch (CudaException e) {
            return new Availability(e.getMessage(), 0, 0);
        }
    }

    /** Throws an error naming the call when a driver call did not return CUDA_SUCCESS. */
    static void check(int result, String call) {
        if (result != 0) {
            throw new CudaException(call + " failed: " + describe(result));
        }
    }

    /** "CUDA_ERROR_OUT_OF_MEMORY (out of memory)". */
    static String describe(int result) {
        String[] name = {null};
        String[] text = {null};
        try {
            cuGetErrorName(result, name);
            cuGetErrorString(result, text);
        } catch (RuntimeException | UnsatisfiedLinkError e) {
            return "CUresult " + result;
        }
        return (name[0] != null ? name[0] : "CUresult " + result) + (text[0] != null ? " (" + text[0] + ")" : "");
    }

    /** The kernel-mode driver's release ("580.159"), read from /proc, or null. */
    static String kernelDriverRelease() {
        try {
            String v = Files.readString(Path.of("/proc/driver/nvidia/version"));
            java.util.regex.Matcher m = java.util.regex.Pattern.compile("Kernel Module\\s+(?:for \\S+\\s+)?([0-9.]+)")
                    .matcher(v);
            return m.find() ? m.group(1) : null;
        } catch (java.io.IOException | RuntimeException e) {
            return null;
        }
    }
}
