package dir4j.nn;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.engine.Device;
import dir4j.engine.MemoryScope;
import dir4j.engine.Tensor;
import dir4j.nn.gpu.NnGpu;
import dir4j.nn.resnet.ResNet;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** Module.to on the CPU: moving to where the tensors already are changes nothing, adopted modules included. */
class ModuleToTest {
    /** A module built on a ResNet as RetrievalNet is: the ResNet's members registered at the top level. */
    static final class Adopting extends Module {
        final ResNet base;

        Adopting(ResNet base) {
            this.base = base;
            adopt(base);
        }

        @Override
        public Tensor forward(Tensor x) {
            return base.features(x);
        }
    }

    @Test
    void toCpuKeepsEveryTensorIdentityAndValueAndLeavesParametersRequiringGrad() {
        try (ResNet net = new ResNet(ResNet.Depth.RESNET18, 4, 0, new Random(1))) {
            NnGpu.randomiseBatchNorms(net, 5);
            Map<String, Tensor> before = net.stateDict();
            List<double[]> values = new ArrayList<>();
            before.values().forEach(t -> values.add(t.toDoubleArray()));
            assertSame(net, net.to(Device.CPU));
            Map<String, Tensor> after = net.stateDict();
            assertEquals(before.keySet(), after.keySet());
            int i = 0;
            for (var e : before.entrySet()) {
                Tensor now = after.get(e.getKey());
                assertSame(e.getValue(), now, e.getKey());
                assertFalse(now.isClosed(), e.getKey() + " was freed");
                assertEquals(java.util.Arrays.toString(values.get(i++)), java.util.Arrays.toString(now.toDoubleArray()),
                        e.getKey());
            }
            for (var e : net.namedParameters().entrySet()) {
                assertTrue(e.getValue().requiresGrad() && e.getValue().isLeaf(), e.getKey());
            }
            assertEquals(Device.CPU, net.device());
        }
    }

    @Test
    void anAdoptedModuleSharesItsTensorsWithTheAdopterBeforeAndAfterTo() {
        try (Adopting net = new Adopting(new ResNet(ResNet.Depth.RESNET18, 4, 0, new Random(2)))) {
            net.to(Device.CPU);
            Map<String, Tensor> top = net.stateDict();
            Map<String, Tensor> base = net.base.stateDict();
            assertEquals(base.keySet(), top.keySet(), "the adopter names the base's members at the top level");
            base.forEach((k, t) -> assertSame(t, top.get(k), k));
        }
    }

    @Test
    void gradientsAfterToCpuEqualThoseOfAnUnmovedTwin() {
        try (ResNet moved = new ResNet(ResNet.Depth.RESNET18, 4, 0, new Random(3));
             ResNet twin = new ResNet(ResNet.Depth.RESNET18, 4, 0, new Random(3));
             MemoryScope scope = MemoryScope.open()) {
            moved.to(Device.CPU);
            Tensor x = Tensor.randn(new Random(4), 2, 3, 32, 32);
            Tensor up = Tensor.randn(new Random(5), 2, 32, 1, 1);
            moved.forward(x).backward(up);
            twin.forward(x).backward(up);
            Map<String, Tensor> t = twin.namedParameters();
            for (var e : moved.namedParameters().entrySet()) {
                Tensor g = e.getValue().grad();
                assertTrue(g != null, e.getKey() + " got no gradient");
                assertEquals(java.util.Arrays.toString(t.get(e.getKey()).grad().toDoubleArray()),
                        java.util.Arrays.toString(g.toDoubleArray()), e.getKey());
            }
            moved.zeroGrad();
            twin.zeroGrad();
            assertNull(moved.namedParameters().get("conv1.weight").grad());
        }
    }
}
