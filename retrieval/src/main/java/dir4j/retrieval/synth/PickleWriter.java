package dir4j.retrieval.synth;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;

/**
 * Writes plain containers as a protocol-2 pickle: Map (→ dict), List (→ list), String, Integer,
 * Long, Double, int[] and double[] (→ lists), Boolean and null. Enough for the revisited-protocol
 * ground truth ({@code gnd_*.pkl}) that the reference's tools and dir4j both read.
 */
final class PickleWriter {
    private final ByteArrayOutputStream out = new ByteArrayOutputStream();

    private PickleWriter() {}

    /** The pickle bytes of {@code value}. */
    static byte[] write(Object value) {
        PickleWriter w = new PickleWriter();
        w.out.write(0x80); // PROTO
        w.out.write(2);
        w.value(value);
        w.out.write('.'); // STOP
        return w.out.toByteArray();
    }

    private void value(Object v) {
        switch (v) {
            case null -> out.write('N');
            case Boolean b -> out.write(b ? 0x88 : 0x89);
            case Integer i -> integer(i);
            case Long l -> {
                if (l >= Integer.MIN_VALUE && l <= Integer.MAX_VALUE) {
                    integer(l.intValue());
                } else {
                    throw new IllegalArgumentException("PickleWriter: long " + l + " out of int range");
                }
            }
            case Double d -> {
                out.write('G'); // BINFLOAT, big-endian
                out.writeBytes(ByteBuffer.allocate(8).order(ByteOrder.BIG_ENDIAN).putDouble(d).array());
            }
            case String s -> {
                byte[] b = s.getBytes(StandardCharsets.UTF_8);
                out.write('X'); // BINUNICODE
                out.writeBytes(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(b.length).array());
                out.writeBytes(b);
            }
            case int[] a -> {
                out.write(']');
                if (a.length > 0) {
                    out.write('(');
                    for (int x : a) {
                        integer(x);
                    }
                    out.write('e');
                }
            }
            case double[] a -> {
                out.write(']');
                if (a.length > 0) {
                    out.write('(');
                    for (double x : a) {
                        value(x);
                    }
                    out.write('e');
                }
            }
            case List<?> list -> {
                out.write(']');
                if (!list.isEmpty()) {
                    out.write('(');
                    list.forEach(this::value);
                    out.write('e');
                }
            }
            case Map<?, ?> map -> {
                out.write('}');
                if (!map.isEmpty()) {
                    out.write('(');
                    map.forEach((k, x) -> {
                        value(k);
                        value(x);
                    });
                    out.write('u');
                }
            }
            default -> throw new IllegalArgumentException("PickleWriter: cannot write " + v.getClass());
        }
    }

    private void integer(int i) {
        if (i >= 0 && i < 256) {
            out.write('K');
            out.write(i);
        } else if (i >= 0 && i < 65536) {
            out.write('M');
            out.write(i & 0xff);
            out.write(i >>> 8);
        } else {
            out.write('J');
            out.writeBytes(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(i).array());
        }
    }
}
