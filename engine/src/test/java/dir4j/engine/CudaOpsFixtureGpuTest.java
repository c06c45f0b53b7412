package dir4j.engine;

import dir4j.engine.FixtureRunner.Layout;
import dir4j.engine.cuda.GpuTests;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicContainer;
import org.junit.jupiter.api.DynamicNode;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.TestFactory;

/**
 * Every engine fixture case (tests/fixtures/make_engine_fixtures.py: each op of Ops and NnOps,
 * the edge cases, and the view_* cases feeding ops transposed, permuted, stepped, offset and
 * expanded views) on the CUDA backend against PyTorch's values: inputs and upstream gradient on
 * the GPU, contiguous and strided with gaps, float32, convolutions in strict float32 (TF32 off),
 * with the CPU runs' tolerances.
 */
@Tag("gpu")
class CudaOpsFixtureGpuTest {
    private static final Device GPU = Device.cuda(0);
    private static boolean tf32;

    @BeforeAll
    static void gpu() {
        GpuTests.requireGpu();
        tf32 = GpuTests.convTf32(false);
    }

    @AfterAll
    static void restore() {
        GpuTests.convTf32(tf32);
    }

    @TestFactory
    Stream<DynamicNode> everyFixtureCaseMatchesPyTorchOnTheGpu() {
        Set<String> nn = new HashSet<>(FixtureRunner.NN_OPS);
        List<Layout> layouts = List.of(Layout.CONTIGUOUS, Layout.STRIDED_WITH_GAPS);
        return EngineFixture.index().stream().map(EngineFixture::load)
                .map(f -> DynamicContainer.dynamicContainer(f.name + " matches PyTorch on the GPU", layouts.stream()
                        .map(layout -> DynamicTest.dynamicTest("with " + layout.description, () -> FixtureRunner.run(f,
                                layout, nn.contains(f.op()) ? op -> Closeness.ACCUMULATED : OpsFixtureTest::tolerance,
                                GPU)))));
    }
}
