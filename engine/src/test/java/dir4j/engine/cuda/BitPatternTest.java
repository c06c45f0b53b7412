package dir4j.engine.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dir4j.engine.DType;
import org.junit.jupiter.api.Test;

/** Fill values as the bit patterns the fill kernels and cuMemsetD16/D32 write. */
class BitPatternTest {
    @Test
    void fillValuesEncodeAsEachDtypesBits() {
        assertEquals(0x3f800000L, CudaBackend.bits(DType.FLOAT32, 1.0));
        assertEquals(0xbff0000000000000L, CudaBackend.bits(DType.FLOAT64, -1.0));
        assertEquals(0xffffffffL, CudaBackend.bits(DType.INT32, -1));
        assertEquals(7, CudaBackend.bits(DType.INT32, 7.9), "int32 truncates as Java's cast");
        assertEquals(0x3c00, CudaBackend.bits(DType.FLOAT16, 1.0));
        assertEquals(0x3f80, CudaBackend.bits(DType.BFLOAT16, 1.0));
        assertEquals(0x4049, CudaBackend.bits(DType.BFLOAT16, Math.PI), "bfloat16 rounds to nearest even");
        assertEquals(0x7fc0, CudaBackend.bits(DType.BFLOAT16, Double.NaN));
    }
}
