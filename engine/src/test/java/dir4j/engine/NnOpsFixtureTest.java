package dir4j.engine;

import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicNode;
import org.junit.jupiter.api.TestFactory;

/**
 * The neural-network ops of {@link NnOps} (linear, conv2d, batch norm with its running-statistics
 * update, pooling, L2 normalisation) against PyTorch fixtures, with contiguous and strided inputs.
 * Every result here sums many float32 products, so the absolute tolerance scales with the
 * magnitude of the result.
 */
class NnOpsFixtureTest {

    @TestFactory
    Stream<DynamicNode> neuralNetworkOpsMatchPyTorch() {
        return OpsFixtureTest.casesOf(FixtureRunner.NN_OPS, op -> Closeness.ACCUMULATED);
    }
}
