package dir4j.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.engine.FixtureRunner.Layout;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicContainer;
import org.junit.jupiter.api.DynamicNode;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

/**
 * Every tensor op of {@link Ops} against PyTorch fixtures (tests/fixtures/make_engine_fixtures.py):
 * float32 output and input gradients for a fixed random upstream gradient, each case run with
 * contiguous inputs, again with the same values (and upstream gradient) in two strided layouts, and
 * once in float64. The view_* cases feed the op views made in the graph (transposed, permuted,
 * stepped, offset, expanded; two inputs viewing one tensor) and check the gradients of the viewed
 * tensors, and a += b into views against PyTorch's add_ ({@link FixtureRunner#applyView}).
 */
class OpsFixtureTest {

    /** Ops whose float32 results are a sum over many terms; the rest round once per element. */
    private static final Set<String> ACCUMULATING = Set.of("sum", "mean", "cumsum", "matmul", "gram",
            "composite_reused_input");

    static Closeness tolerance(String op) {
        return ACCUMULATING.contains(op) ? Closeness.ACCUMULATED : Closeness.ELEMENTWISE;
    }

    static Stream<DynamicNode> casesOf(Set<String> ops, java.util.function.Function<String, Closeness> tolerance) {
        return EngineFixture.index().stream().map(EngineFixture::load).filter(f -> ops.contains(f.op()))
                .map(f -> DynamicContainer.dynamicContainer(f.name + " matches PyTorch",
                        Arrays.stream(Layout.values()).filter(layout -> FixtureRunner.applies(f, layout))
                                .map(layout -> DynamicTest.dynamicTest(
                                "with " + layout.description, () -> FixtureRunner.run(f, layout, tolerance)))));
    }

    @TestFactory
    Stream<DynamicNode> tensorOpsMatchPyTorch() {
        return casesOf(FixtureRunner.TENSOR_OPS, OpsFixtureTest::tolerance);
    }

    @Test
    void everyFixtureCaseNamesAnOpThatATestRuns() {
        List<String> cases = EngineFixture.index();
        assertTrue(cases.size() >= 90, "the fixture index lists " + cases.size() + " cases");
        Set<String> unknown = new TreeSet<>(FixtureRunner.opsOf(cases));
        unknown.removeAll(FixtureRunner.TENSOR_OPS);
        unknown.removeAll(FixtureRunner.NN_OPS);
        assertEquals(Set.of(), unknown, "fixture ops no test runs");
        Set<String> untested = new TreeSet<>(FixtureRunner.TENSOR_OPS);
        untested.addAll(FixtureRunner.NN_OPS);
        untested.removeAll(FixtureRunner.opsOf(cases));
        assertEquals(Set.of(), untested, "ops with a dir4j call but no fixture");
    }
}
