package dir4j.engine.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** TF32 defaults: PyTorch's (convolutions on, matrix products off) unless a system property says otherwise. */
class Tf32DefaultsTest {
    @AfterEach
    void clear() {
        System.clearProperty("dir4j.cuda.tf32");
        System.clearProperty("dir4j.cuda.tf32.conv");
        System.clearProperty("dir4j.cuda.tf32.matmul");
    }

    @Test
    void withoutPropertiesConvolutionsUseTf32AndMatrixProductsDoNot() {
        assertEquals(true, CudaBackend.tf32Default("dir4j.cuda.tf32.conv", true));
        assertEquals(false, CudaBackend.tf32Default("dir4j.cuda.tf32.matmul", false));
    }

    @Test
    void theOwnPropertySetsOneKindAndTheSharedOneOverridesBoth() {
        System.setProperty("dir4j.cuda.tf32.conv", "false");
        System.setProperty("dir4j.cuda.tf32.matmul", "true");
        assertEquals(false, CudaBackend.tf32Default("dir4j.cuda.tf32.conv", true));
        assertEquals(true, CudaBackend.tf32Default("dir4j.cuda.tf32.matmul", false));
        System.setProperty("dir4j.cuda.tf32", "false");
        assertEquals(false, CudaBackend.tf32Default("dir4j.cuda.tf32.matmul", false));
        System.setProperty("dir4j.cuda.tf32", "true");
        assertEquals(true, CudaBackend.tf32Default("dir4j.cuda.tf32.conv", false));
    }
}
