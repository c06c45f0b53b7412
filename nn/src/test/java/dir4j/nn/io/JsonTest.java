package dir4j.nn.io;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.math.BigInteger;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class JsonTest {
    @Test
    void writeThenParseGivesTheSameValues() {
        Map<String, Object> v = new LinkedHashMap<>();
        v.put("arch", "resnet101_rmac");
        v.put("out_dim", 2048L);
        v.put("gemp", 3.5);
        v.put("flags", Arrays.asList(true, false, null));
        v.put("text", "quote \" backslash \\ newline \n tab \t ctrl \u0001 é ✓");
        v.put("nested", Map.of("k", List.of(1L, -2L)));
        assertEquals(v, Json.parse(Json.write(v)));
    }

    @Test
    void numbersKeepTheirKind() {
        assertEquals(List.of(1L, -0.5, 1.0e10, new BigInteger("123456789012345678901234567890")),
                Json.parse(" [1, -0.5, 1e10, 123456789012345678901234567890] "));
    }

    @Test
    void malformedTextIsAnErrorWithItsPosition() {
        for (String bad : List.of("{", "[1,]", "{\"a\" 1}", "tru", "\"open", "1 2", "01x", "{\"a\":1,\"a\":2}", "-")) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Json.parse(bad), bad);
            assertTrue(e.getMessage().contains("at character"), e.getMessage());
        }
        assertThrows(IllegalArgumentException.class, () -> Json.parse("[".repeat(10_000)));
        assertThrows(IllegalArgumentException.class, () -> Json.write(Double.NaN));
    }
}
