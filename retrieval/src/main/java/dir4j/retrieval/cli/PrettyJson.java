package dir4j.retrieval.cli;

import dir4j.nn.io.Json;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

/**
 * JSON for people and scripts alike: nested objects and arrays one entry per line, indented by
 * one space per level as the reference's {@code json.dumps(data, indent=1)}; arrays of numbers
 * stay on one line. Leaves are written by {@link Json}; NaN and infinities become null (JSON has
 * neither).
 */
final class PrettyJson {
    private PrettyJson() {}

    static String write(Object value) {
        StringBuilder sb = new StringBuilder();
        write(sb, value, 0);
        return sb.append('\n').toString();
    }

    private static void write(StringBuilder sb, Object v, int depth) {
        if (v instanceof Map<?, ?> m) {
            if (m.isEmpty()) {
                sb.append("{}");
                return;
            }
            sb.append("{\n");
            Iterator<? extends Map.Entry<?, ?>> it = m.entrySet().iterator();
            while (it.hasNext()) {
                Map.Entry<?, ?> e = it.next();
                sb.append(" ".repeat(depth + 1)).append(Json.write(String.valueOf(e.getKey()))).append(": ");
                write(sb, e.getValue(), depth + 1);
                sb.append(it.hasNext() ? ",\n" : "\n");
            }
            sb.append(" ".repeat(depth)).append('}');
        } else if (v instanceof List<?> l) {
            boolean flat = l.stream().allMatch(x -> x == null || x instanceof Number || x instanceof Boolean);
            if (flat) {
                sb.append('[');
                for (int i = 0; i < l.size(); i++) {
                    sb.append(i == 0 ? "" : ", ");
                    write(sb, l.get(i), depth + 1);
                }
                sb.append(']');
                return;
            }
            sb.append("[\n");
            for (int i = 0; i < l.size(); i++) {
                sb.append(" ".repeat(depth + 1));
                write(sb, l.get(i), depth + 1);
                sb.append(i + 1 < l.size() ? ",\n" : "\n");
            }
            sb.append(" ".repeat(depth)).append(']');
        } else if (v instanceof Double d && !Double.isFinite(d) || v instanceof Float f && !Float.isFinite(f)) {
            sb.append("null");
        } else {
            sb.append(Json.write(v));
        }
    }

    /** Values of an array as a JSON list (NaN as null). */
    static List<Double> list(double[] values) {
        return java.util.Arrays.stream(values).boxed().toList();
    }
}
