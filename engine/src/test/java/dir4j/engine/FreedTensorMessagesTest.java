package dir4j.engine;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** A use of a freed tensor says how it was freed, and what to do where that helps. */
class FreedTensorMessagesTest {
    @Test
    void theErrorSaysWhetherAScopeEndedOrACloseFreedIt() {
        Tensor scoped;
        try (MemoryScope scope = MemoryScope.open()) {
            scoped = Tensor.ones(2, 3);
        }
        String a = assertThrows(IllegalStateException.class, () -> scoped.add(scoped)).getMessage();
        assertTrue(a.contains("[2, 3]") && a.contains("was already freed: its MemoryScope ended; keep it with "
                + "MemoryScope.keep(t)"), a);

        Tensor held = Tensor.ones(4);
        held.close(); // as a module's close frees its parameters while another thread still uses them
        String b = assertThrows(IllegalStateException.class, () -> held.add(held)).getMessage();
        assertTrue(b.contains("was already closed: by its close(), or by the close of what holds it (a module or "
                + "network, an index, an extractor)") && !b.contains("MemoryScope"), b);

        // closed inside a scope (a holder made in the scope and closed there), used after the scope: the close
        // freed it, not the scope's end
        Tensor closedInScope;
        try (MemoryScope scope = MemoryScope.open()) {
            closedInScope = Tensor.ones(5);
            closedInScope.close();
        }
        String c = assertThrows(IllegalStateException.class, () -> closedInScope.add(closedInScope)).getMessage();
        assertTrue(c.contains("was already closed: by its close()") && !c.contains("MemoryScope"), c);
    }
}
