package dir4j.retrieval.eval;

/**
 * mAP and mP@k of the three revisited setups, printed as the reference prints them:
 *
 * <pre>
 * >> roxford5k: mAP E: 43.14, M: 36.38, H: 26.71
 * >> roxford5k: mP@k[1, 5, 10] E: [33.33 40.   37.36], M: [57.14 28.57 25.6 ], H: [40. 20. 18.]
 * </pre>
 */
public record RevisitedResult(ProtocolResult easy, ProtocolResult medium, ProtocolResult hard) {

    /** {@code >> dataset: mAP E: …, M: …, H: …} (percentages rounded to 2 decimals). */
    public String mapLine(String dataset) {
        return ">> " + dataset + ": mAP E: " + PythonFormat.scalar(percent(easy.map())) + ", M: "
                + PythonFormat.scalar(percent(medium.map())) + ", H: " + PythonFormat.scalar(percent(hard.map()));
    }

    /** {@code >> dataset: mP@k[1, 5, 10] E: […], M: […], H: […]} (numpy's array printing). */
    public String precisionLine(String dataset) {
        return ">> " + dataset + ": mP@k" + PythonFormat.list(easy.kappas()) + " E: "
                + PythonFormat.array(percent(easy.meanPrecisionAt())) + ", M: "
                + PythonFormat.array(percent(medium.meanPrecisionAt())) + ", H: "
                + PythonFormat.array(percent(hard.meanPrecisionAt()));
    }

    /** Both lines, as compute_map_and_print prints them. */
    public String report(String dataset) {
        return mapLine(dataset) + "\n" + precisionLine(dataset);
    }

    /** {@code np.around(x * 100, decimals=2)}: the same two roundings, in the same order. */
    static double percent(double fraction) {
        double x = fraction * 100;
        return Math.rint(x * 100) / 100;
    }

    private static double[] percent(double[] fractions) {
        double[] p = new double[fractions.length];
        for (int i = 0; i < p.length; i++) {
            p[i] = percent(fractions[i]);
        }
        return p;
    }
}
