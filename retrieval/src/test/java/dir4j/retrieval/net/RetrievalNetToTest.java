package dir4j.retrieval.net;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.engine.Device;
import dir4j.engine.Tensor;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** RetrievalNet.to(CPU) on a CPU network: nothing is replaced, the adopted backbone included. */
class RetrievalNetToTest {
    @Test
    void toCpuKeepsEveryTensorAndValueAndParametersStayTrainableLeaves() {
        try (RetrievalNet net = new RetrievalNet(new RetrievalNet.Options("resnet18", 16, "gem", 3, false, false, 4),
                new Random(3))) {
            Map<String, Tensor> before = net.stateDict();
            Map<String, String> values = new java.util.HashMap<>();
            before.forEach((k, t) -> values.put(k, java.util.Arrays.toString(t.toDoubleArray())));
            assertSame(net, net.to(Device.CPU));
            Map<String, Tensor> after = net.stateDict();
            assertEquals(before.keySet(), after.keySet());
            before.forEach((k, t) -> {
                assertSame(t, after.get(k), k);
                assertEquals(values.get(k), java.util.Arrays.toString(after.get(k).toDoubleArray()), k);
            });
            net.namedParameters().forEach((k, t) -> assertTrue(t.requiresGrad() && t.isLeaf(), k));
            assertEquals(3.0, net.namedParameters().get("adpool.p").item(), 0.0);
        }
    }
}
