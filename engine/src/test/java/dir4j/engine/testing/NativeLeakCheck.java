package dir4j.engine.testing;

import dir4j.engine.cpu.NativeMemory;
import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.BeforeEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * Fails a test that ends with more CPU native memory in use than it began with: a tensor the
 * code under test (or the test) allocated and never closed. Registered for every test of the
 * modules that depend on this test-jar (service file, with JUnit's extension autodetection turned
 * on in the parent pom), and runs around each test method including its {@code @BeforeEach} and
 * {@code @AfterEach}. Tests run one at a time per JVM, so the process-wide counters belong to the
 * test. With {@code -Ddir4j.cpu.trackAllocations=true} the message names the allocation sites of
 * the leaked blocks.
 */
public final class NativeLeakCheck implements BeforeEachCallback, AfterEachCallback {
    private static final ExtensionContext.Namespace NAMESPACE = ExtensionContext.Namespace.create(NativeLeakCheck.class);

    private record Before(long bytes, long blocks, long allocations) {}

    @Override
    public void beforeEach(ExtensionContext context) {
        context.getStore(NAMESPACE).put(Before.class,
                new Before(NativeMemory.liveBytes(), NativeMemory.liveBlocks(), NativeMemory.totalAllocations()));
    }

    @Override
    public void afterEach(ExtensionContext context) {
        Before b = context.getStore(NAMESPACE).remove(Before.class, Before.class);
        if (b == null || context.getExecutionException().isPresent()) {
            return; // a failing test's own error says more than its unfreed tensors
        }
        long bytes = NativeMemory.liveBytes() - b.bytes();
        long blocks = NativeMemory.liveBlocks() - b.blocks();
        if (bytes > 0 || blocks > 0) {
            throw new AssertionError(context.getDisplayName() + " left " + bytes + " bytes in " + blocks
                    + " native block(s) allocated and not freed (a tensor not closed: close it, or open a "
                    + "MemoryScope around the work)\n" + NativeMemory.describeLiveSince(b.allocations(), 10));
        }
    }
}
