package dir4j.engine.cpu;

import java.lang.foreign.MemorySegment;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Single-precision GEMM on the CPU, BLIS-style: A is packed into MR-row panels and B into
 * NR-column panels in per-thread heap arrays, and a register-blocked broadcast-FMA micro-kernel
 * computes one MR×NR tile of C per call. Cache blocking: a KC-deep B panel of NC columns is packed
 * once and shared by all threads; each task packs its own block of A rows (kept in L2) and sweeps
 * it across the shared B panel, one KC×NR micro-panel (kept in L1) at a time. When there are
 * several column blocks and A is small (a convolution's weights), A is packed once for all of them.
 * The operands need not be matrices at all ({@link GemmOperand}, {@link GemmOutput}): the
 * convolutions ({@link Conv2dKernels}) run on this same driver and micro-kernel.
 *
 * <p>Runs with {@code -Djdk.incubator.vector.VECTOR_ACCESS_OOB_CHECK=0} (see DESIGN.md), so the
 * micro-kernel's panel indexing is unchecked: SgemmTest proves it over many odd shapes, and the
 * public entry points check every operand's extent against its segment before anything runs.
 */
public final class Sgemm {
    /** The backend's float species ({@link CpuVectors}: preferred, or {@code -Ddir4j.vector.bits}). */
    static final VectorSpecies<Float> SPECIES = CpuVectors.FLOAT;
    /** Micro-tile rows: the micro-kernel's twelve broadcast rows. */
    static final int MR = 12;
    /** Micro-tile columns: two vectors. */
    static final int NR = 2 * SPECIES.length();
    /** Depth of a packed block: a KC×NR micro-panel of B (32 KiB at 512 bits) stays in L1. */
    static final int KC = 256;
    /** Rows of A per task block, aimed at L2 with the B micro-panel streaming past. */
    static final int MC = 192;
    /** Columns of the shared packed B panel (KC·NC floats, in L2/L3). */
    static final int NC = 2048;
    /** Below this many multiply-adds a product runs on the calling thread alone. */
    private static final long SERIAL_WORK = 64L * 64 * 64;
    /** Largest A (in packed floats) packed once and shared by all column blocks: 16 MiB. */
    private static final long PREPACK_A_FLOATS = 1L << 22;
    /**
     * Largest B (in packed floats, all depth blocks) for the two-phase schedule of a product with
     * one column block: 4 MiB, so that what one task sweeps stays within L2/L3 as before.
     */
    private static final long WHOLE_B_FLOATS = 1L << 20;

    private static final System.Logger LOG = System.getLogger(Sgemm.class.getName());

    static {
        LOG.log(System.Logger.Level.DEBUG, "SGEMM micro-kernel {0}x{1} on {2}-bit vectors", MR, NR,
                SPECIES.vectorBitSize());
        if (CpuVectors.preferredBits() < 512) {
            LOG.log(System.Logger.Level.WARNING, "no AVX-512 on this CPU: the SGEMM micro-kernel keeps 27 vectors"
                    + " in registers and will spill on 16-register AVX2 (correct, but slower)");
        }
        if (!"0".equals(System.getProperty("jdk.incubator.vector.VECTOR_ACCESS_OOB_CHECK"))) {
            LOG.log(System.Logger.Level.WARNING, "Vector API bounds checks are on: SGEMM and convolutions run"
                    + " ~2.6x slower; start the JVM with -Djdk.incubator.vector.VECTOR_ACCESS_OOB_CHECK=0");
        }
    }

    private Sgemm() {}

    /**
     * C = alpha·A·B + beta·C in float32, row-major-with-arbitrary-strides operands in native memory.
     * Element (i,k) of A is at float index {@code aOff + i*aRs + k*aCs} of segment a (strides in
     * floats, so a transposed operand is just swapped strides); B likewise; C (i,j) at
     * {@code cOff + i*ldc + j}. beta == 0 means C is not read (NaN-safe). k == 0 gives C = beta·C.
     * Segments may be native (any arena, confined to the caller included) or heap; C must not
     * overlap A or B.
     *
     * @throws IllegalArgumentException if a size is negative or an operand reaches past its segment
     */
    public static void sgemm(int m, int n, int k, float alpha,
            MemorySegment a, long aOff, long aRs, long aCs,
            MemorySegment b, long bOff, long bRs, long bCs,
            float beta, MemorySegment c, long cOff, long ldc) {
        checkSizes(m, n, k);
        if (m == 0 || n == 0) {
            return;
        }
        checkExtent("A", a, aOff, m, aRs, k, aCs);
        checkExtent("B", b, bOff, k, bRs, n, bCs);
        checkExtent("C", c, cOff, m, ldc, n, 1);
        gemm(m, n, k, GemmOperand.strided(forWorkers(a), aOff, aRs, aCs),
                GemmOperand.strided(forWorkers(b), bOff, bRs, bCs),
                GemmOutput.strided(forWorkers(c), cOff, ldc, alpha, beta));
    }

    /**
     * {@link #sgemm} on {@code batch} independent products; product t uses the offsets
     * {@code aOff + t*aBatchStride}, {@code bOff + t*bBatchStride}, {@code cOff + t*cBatchStride}.
     * When the products divide evenly over the threads (or are many) each thread takes whole
     * products; otherwise they run one after another, each parallel over its own blocks.
     */
    public static void sgemmBatched(int batch, int m, int n, int k, float alpha,
            MemorySegment a, long aOff, long aRs, long aCs, long aBatchStride,
            MemorySegment b, long bOff, long bRs, long bCs, long bBatchStride,
            float beta, MemorySegment c, long cOff, long ldc, long cBatchStride) {
        checkSizes(m, n, k);
        if (batch < 0) {
            throw new IllegalArgumentException("sgemmBatched: negative batch " + batch);
        }
        if (batch == 0 || m == 0 || n == 0) {
            return;
        }
        for (int t : new int[] {0, batch - 1}) {
            checkExtent("A[" + t + "]", a, aOff + t * aBatchStride, m, aRs, k, aCs);
            checkExtent("B[" + t + "]", b, bOff + t * bBatchStride, k, bRs, n, bCs);
            checkExtent("C[" + t + "]", c, cOff + t * cBatchStride, m, ldc, n, 1);
        }
        MemorySegment sa = forWorkers(a);
        MemorySegment sb = forWorkers(b);
        MemorySegment sc = forWorkers(c);
        int threads = CpuThreads.threads();
        boolean byProduct = batch % threads == 0 || batch >= 4 * threads;
        CpuThreads.parallelFor(byProduct ? batch : 1, first -> {
            int from = byProduct ? first : 0;
            int to = byProduct ? first + 1 : batch;
            for (int t = from; t < to; t++) {
                gemm(m, n, k,
                        GemmOperand.strided(sa, aOff + t * aBatchStride, aRs, aCs),
                        GemmOperand.strided(sb, bOff + t * bBatchStride, bRs, bCs),
                        GemmOutput.strided(sc, cOff + t * cBatchStride, ldc, alpha, beta));
            }
        });
    }

    private static void checkSizes(int m, int n, int k) {
        if (m < 0 || n < 0 || k < 0) {
            throw new IllegalArgumentException("sgemm: negative size m=" + m + " n=" + n + " k=" + k);
        }
    }

    /**
     * The segment as the worker threads may use it. A confined segment (a test's
     * {@code Arena.ofConfined()}) is viewed again as a global segment over the same memory: safe,
     * because its owner thread is inside this call and so cannot close the arena before the
     * workers are done. Extents are checked against the original first.
     */
    @SuppressWarnings("restricted")
    static MemorySegment forWorkers(MemorySegment seg) {
        if (!seg.isNative() || CpuThreads.threads() == 1) {
            return seg;
        }
        return MemorySegment.ofAddress(seg.address()).reinterpret(seg.byteSize());
    }

    /** Throws unless every element off + r·rs + c·cs (r < rows, c < cols) lies inside seg. */
    static void checkExtent(String name, MemorySegment seg, long off, long rows, long rs, long cols, long cs) {
        if (rows == 0 || cols == 0) {
            return;
        }
        long lo = off + Math.min(0, (rows - 1) * rs) + Math.min(0, (cols - 1) * cs);
        long hi = off + Math.max(0, (rows - 1) * rs) + Math.max(0, (cols - 1) * cs);
        long size = seg.byteSize() / Float.BYTES;
        if (lo < 0 || hi >= size) {
            throw new IllegalArgumentException(name + ": a " + rows + "x" + cols + " matrix at float offset " + off
                    + " with strides (" + rs + ", " + cs + ") spans float indices [" + lo + ", " + hi
                    + "] but its segment holds " + size + " floats");
        }
    }

    /**
     * The driver: C ← A·B through {@code out}, for any operands that can pack themselves. The loop
     * nest is BLIS's: NC columns of B → KC depth → (shared, parallel) pack of B → tasks over row
     * blocks of A (and column ranges, when rows are too few to feed the threads) → micro-tiles.
     * Depth and column blocks are split evenly (k = 300 gives 150 + 150, not 256 + 44). Tiles are
     * summed over the depth blocks in place and stored once where a column block's tiles take at
     * most {@link #IN_PLACE_FLOATS}, else stored (accumulated into the output) per depth block.
     */
    static void gemm(int m, int n, int k, GemmOperand a, GemmOperand b, GemmOutput out) {
        if (m == 0 || n == 0) {
            return;
        }
        boolean serial = (long) m * n * k < SERIAL_WORK || CpuThreads.threads() == 1;
        int ncBlocks = ceilDiv(n, NC);
        int kcBlocks = Math.max(1, ceilDiv(k, KC));
        int kcMax = ceilDiv(k, kcBlocks);
        int nPanelsMax = ceilDiv(ceilDiv(n, ncBlocks), NR);
        Workspace ws = WORKSPACE.get();
        if (!serial && m <= SMALL_M && k > 0 && k <= SMALL_M_DEPTH && n >= SMALL_M_MIN_COLUMNS
                && out.columnsSplittable() && out.rowGroup() <= 1) {
            gemmSmallM(m, n, k, a, b, out, kcBlocks, kcMax, ws);
            return;
        }
        if (splitsDepth(m, n, k) && out.columnsSplittable() && out.rowGroup() <= 1) {
            gemmSplitK(m, n, k, a, b, out, serial, ws);
            return;
        }
        TaskPlan plan = TaskPlan.of(m, nPanelsMax, out, serial ? 1 : CpuThreads.threads());
        if (!serial && ncBlocks == 1 && kcBlocks > 1 && (long) kcBlocks * nPanelsMax * NR * kcMax <= WHOLE_B_FLOATS) {
            gemmWholeB(m, n, k, a, b, out, plan, kcBlocks, kcMax, ws);
            return;
        }
        float[] bPack = ws.bPanels(nPanelsMax * NR * kcMax);
        // With several depth blocks, the tiles of a column block are summed in place over them and
        // handed to the output once (not once per depth block), when they take few enough floats.
        long tileFloats = (long) plan.panels() * MR * nPanelsMax * NR;
        float[] sums = kcBlocks > 1 && tileFloats <= IN_PLACE_FLOATS ? ws.sums((int) tileFloats) : null;
        // With several column blocks every block of A would be packed once per column block; when
        // A is small (a convolution's weights) pack all of it once instead and share it.
        long prepacked = (long) plan.panels() * MR * kcMax * kcBlocks;
        float[] aAll = ncBlocks > 1 && prepacked <= PREPACK_A_FLOATS ? ws.aShared((int) prepacked) : null;
        if (aAll != null) {
            forEach(serial, kcBlocks * plan.blocks(), u -> {
                int pcb = u / plan.blocks();
                int mb = u % plan.blocks();
                int pc = split(k, kcBlocks, pcb);
                int kc = split(k, kcBlocks, pcb + 1) - pc;
                a.packRowPanels(aAll, plan.prepackedOffset(pcb, mb, kcMax), plan.rowStart(mb),
                        plan.rowStart(mb + 1) - plan.rowStart(mb), pc, kc, MR);
            });
        }
        for (int jcb = 0; jcb < ncBlocks; jcb++) {
            int jc = split(n, ncBlocks, jcb);
            int nc = split(n, ncBlocks, jcb + 1) - jc;
            int nPanels = ceilDiv(nc, NR);
            for (int pcb = 0; pcb < kcBlocks; pcb++) {
                int pc = split(k, kcBlocks, pcb);
                int kc = split(k, kcBlocks, pcb + 1) - pc;
                int depthBlock = pcb;
                // Pack the shared B panel, panel t at t·NR·kc, in chunks of at least 16K floats.
                long minPanels = serial ? nPanels : Math.max(1, 16_384 / ((long) NR * Math.max(kc, 1)));
                CpuThreads.parallelRange(nPanels, minPanels, (s, e) -> b.packColumnPanels(bPack,
                        (int) s * NR * kc, pc, kc, jc + (int) s * NR, (int) Math.min(nc - s * NR, (e - s) * NR), NR));
                forEach(serial, plan.tasks(), task -> {
                    TaskShare t = plan.share(task, nPanels);
                    if (t == null) {
                        return;
                    }
                    Workspace w = WORKSPACE.get();
                    float[] aPack = aAll;
                    int aOff = 0;
                    if (aAll != null) {
                        aOff = plan.prepackedOffset(depthBlock, t.mb(), kcMax);
                    } else {
                        aPack = w.aPanels(ceilDiv(t.rows(), MR) * MR * kc);
                        a.packRowPanels(aPack, 0, t.r0(), t.rows(), pc, kc, MR);
                    }
                    if (sums != null) {
                        sumTiles(aPack, aOff, t.r0(), t.rows(), plan.panelStart(t.mb()), bPack, jc, nc, nPanels,
                                t.jr0(), t.jr1(), kc, out, depthBlock, kcBlocks, sums, w.tile);
                    } else {
                        macroKernel(aPack, aOff, t.r0(), t.rows(), bPack, 0, jc, nc, t.jr0(), t.jr1(), kc, out,
                                depthBlock == 0, w.tile);
                    }
                });
            }
        }
    }

    /**
     * The schedule for mid-sized products with one column block (a convolution at batch 1: N is
     * H·W, a few hundred): every depth block of B is packed in one parallel phase, then each task
     * runs its rows through all depth blocks in a second, so the product costs two fork/joins
     * instead of two per depth block. Measured here (2 threads): 256×196×1024 ran slower on two
     * threads than on one (69 vs 82 GFLOP/s) with a barrier per depth block.
     */
    private static void gemmWholeB(int m, int n, int k, GemmOperand a, GemmOperand b, GemmOutput out, TaskPlan plan,
            int kcBlocks, int kcMax, Workspace ws) {
        int nPanels = ceilDiv(n, NR);
        int blockFloats = nPanels * NR * kcMax;
        float[] bAll = ws.bPanels(kcBlocks * blockFloats);
        // phase 1: pack B, chunks of at least 16K floats, over all depth blocks
        int chunkPanels = (int) Math.max(1, Math.min(nPanels, 16_384 / ((long) NR * kcMax)));
        int chunks = ceilDiv(nPanels, chunkPanels);
        CpuThreads.parallelFor(kcBlocks * chunks, u -> {
            int pcb = u / chunks;
            int s0 = (u % chunks) * chunkPanels;
            int s1 = Math.min(nPanels, s0 + chunkPanels);
            int pc = split(k, kcBlocks, pcb);
            int kc = split(k, kcBlocks, pcb + 1) - pc;
            b.packColumnPanels(bAll, pcb * blockFloats + s0 * NR * kc, pc, kc, s0 * NR,
                    Math.min(n - s0 * NR, (s1 - s0) * NR), NR);
        });
        // phase 2: each task takes its rows (and column range) through every depth block in order
        CpuThreads.parallelFor(plan.tasks(), task -> {
            TaskShare t = plan.share(task, nPanels);
            if (t == null) {
                return;
            }
            Workspace w = WORKSPACE.get();
            int mPanels = ceilDiv(t.rows(), MR);
            float[] acc = w.accumulators(mPanels * (t.jr1() - t.jr0()) * MR * NR);
            for (int pcb = 0; pcb < kcBlocks; pcb++) {
                int pc = split(k, kcBlocks, pcb);
                int kc = split(k, kcBlocks, pcb + 1) - pc;
                float[] aPack = w.aPanels(mPanels * MR * kc);
                a.packRowPanels(aPack, 0, t.r0(), t.rows(), pc, kc, MR);
                int at = 0;
                for (int jr = t.jr0(); jr < t.jr1(); jr++) {
                    int bi = pcb * blockFloats + jr * NR * kc;
                    for (int ir = 0; ir < mPanels; ir++, at += MR * NR) {
                        microKernel(kc, aPack, ir * MR * kc, bAll, bi, acc, at, pcb > 0);
                    }
                }
            }
            int at = 0;
            for (int jr = t.jr0(); jr < t.jr1(); jr++) {
                for (int ir = 0; ir < mPanels; ir++, at += MR * NR) {
                    storeTile(acc, at, w.tile, out, t.r0() + ir * MR, Math.min(MR, t.rows() - ir * MR), jr * NR,
                            Math.min(NR, n - jr * NR));
                }
            }
        });
    }

    /** Hands the finished tile acc[at …] (all depth blocks summed) to out, through the scratch tile. */
    private static void storeTile(float[] acc, int at, float[] tile, GemmOutput out, int i0, int rows, int j0,
            int cols) {
        System.arraycopy(acc, at, tile, 0, MR * NR);
        out.store(tile, NR, i0, rows, j0, cols, true);
    }

    /** Rows (A's, C's) up to which {@link #gemmSmallM} runs a wide product. */
    static final int SMALL_M = 128;
    /** Depth up to which {@link #gemmSmallM} runs (all of A packed at once stays small). */
    static final int SMALL_M_DEPTH = 1024;
    /** Columns from which {@link #gemmSmallM} runs (enough column panels to share). */
    static final int SMALL_M_MIN_COLUMNS = 1024;
    /** Column panels a {@link #gemmSmallM} task takes at most. */
    private static final int SMALL_M_RUN = 16;

    /**
     * The schedule for few rows and many columns (a 1×1 convolution to or from 64 or 128 channels
     * over a large map: m = 64, n = 12,544): with the shared-panel schedule every B panel (the
     * activation) was packed in a parallel phase and read back after a barrier by tasks of a
     * panel or two of A, and packing it took about 60 % of the micro-kernel's time. Here all of A
     * is packed once, and each task takes a run of column panels, packing each B micro-panel
     * (KC × NR, in L1) right before all of A's row panels run against it: no barrier, and the
     * panel is read from L1 while it is hot. Tasks own whole columns, so the output must allow
     * column splits.
     */
    private static void gemmSmallM(int m, int n, int k, GemmOperand a, GemmOperand b, GemmOutput out, int kcBlocks,
            int kcMax, Workspace ws) {
        int mPanels = ceilDiv(m, MR);
        int blockFloats = mPanels * MR * kcMax;
        float[] aAll = ws.aShared(kcBlocks * blockFloats);
        for (int pcb = 0; pcb < kcBlocks; pcb++) {
            int pc = split(k, kcBlocks, pcb);
            a.packRowPanels(aAll, pcb * blockFloats, 0, m, pc, split(k, kcBlocks, pcb + 1) - pc, MR);
        }
        int nPanels = ceilDiv(n, NR);
        int per = Math.max(1, Math.min(SMALL_M_RUN, nPanels / (4 * CpuThreads.threads())));
        CpuThreads.parallelFor(ceilDiv(nPanels, per), task -> {
            Workspace w = WORKSPACE.get();
            float[] bp = w.bPanels(NR * kcMax);
            float[] acc = w.accumulators(mPanels * MR * NR);
            for (int jr = task * per, end = Math.min(nPanels, jr + per); jr < end; jr++) {
                int cols = Math.min(NR, n - jr * NR);
                for (int pcb = 0; pcb < kcBlocks; pcb++) {
                    int pc = split(k, kcBlocks, pcb);
                    int kc = split(k, kcBlocks, pcb + 1) - pc;
                    b.packColumnPanels(bp, 0, pc, kc, jr * NR, cols, NR);
                    for (int ir = 0; ir < mPanels; ir++) {
                        microKernel(kc, aAll, pcb * blockFloats + ir * MR * kc, bp, 0, acc, ir * MR * NR, pcb > 0);
                    }
                }
                for (int ir = 0; ir < mPanels; ir++) {
                    storeTile(acc, ir * MR * NR, w.tile, out, ir * MR, Math.min(MR, m - ir * MR), jr * NR, cols);
                }
            }
        });
    }

    /** Depth of one {@link #gemmSplitK} chunk: two depth blocks (fewer chunks when their copies would grow large). */
    static final int SPLIT_K_CHUNK = 2 * KC;
    /** Largest output (m·n) that {@link #gemmSplitK} runs: each chunk holds a private copy of it. */
    static final long SPLIT_K_MAX_OUTPUT = 1L << 18;
    /** Most floats in all of {@link #gemmSplitK}'s private copies together (16 MiB). */
    private static final long SPLIT_K_MAX_COPIES = 1L << 22;
    /** Largest m and n for {@link #gemmSplitK}: a chunk packs all of A and B for each depth block. */
    static final int SPLIT_K_MAX_SIDE = 2048;

    /**
     * Whether a product runs split along its depth ({@link #gemmSplitK}): a small output (at most
     * {@link #SPLIT_K_MAX_OUTPUT} floats, sides up to {@link #SPLIT_K_MAX_SIDE}) and a depth of at
     * least four chunks: a 1×1 convolution's weight gradient, whose depth is the batch's pixels.
     */
    static boolean splitsDepth(int m, int n, int k) {
        return k >= 4 * SPLIT_K_CHUNK && (long) m * n <= SPLIT_K_MAX_OUTPUT && m <= SPLIT_K_MAX_SIDE
                && n <= SPLIT_K_MAX_SIDE;
    }

    /**
     * The schedule for a small output and a long depth (the weight gradient of a 1×1 convolution:
     * dW[Co × Ci] = dY·Xᵀ summed over the batch's pixels, 12,544 of them for ResNet-50's layer1 at
     * batch 4). The shared-panel schedule ran its ~50 depth blocks with a barrier each and only a
     * few row tasks between barriers. Here the depth is cut into chunks of {@link #SPLIT_K_CHUNK}
     * and each task runs one chunk on its own (packing all of A and B per depth block, no
     * barrier) into a private copy of the output in tile order; the copies are then summed in
     * chunk order, tiles in parallel (so only for outputs whose tiles may be stored concurrently in
     * any grouping). The chunks depend on the shape alone, and a serial run takes this schedule too,
     * so the result does not depend on the thread count (nor on which thread ran which chunk).
     */
    private static void gemmSplitK(int m, int n, int k, GemmOperand a, GemmOperand b, GemmOutput out, boolean serial,
            Workspace ws) {
        int mPanels = ceilDiv(m, MR);
        int nPanels = ceilDiv(n, NR);
        int tileFloats = MR * NR;
        int partialFloats = mPanels * nPanels * tileFloats;
        int chunks = (int) Math.max(2, Math.min(ceilDiv(k, SPLIT_K_CHUNK), SPLIT_K_MAX_COPIES / partialFloats));
        float[] partials = ws.partials(chunks * partialFloats);
        forEach(serial, chunks, c -> {
            int k0 = split(k, chunks, c);
            int depth = split(k, chunks, c + 1) - k0;
            int blocks = ceilDiv(depth, KC);
            int kcMax = ceilDiv(depth, blocks);
            Workspace w = WORKSPACE.get();
            float[] ap = w.aPanels(mPanels * MR * kcMax);
            float[] bp = w.bPanels(nPanels * NR * kcMax);
            for (int pcb = 0; pcb < blocks; pcb++) {
                int pc = k0 + split(depth, blocks, pcb);
                int kc = k0 + split(depth, blocks, pcb + 1) - pc;
                a.packRowPanels(ap, 0, 0, m, pc, kc, MR);
                b.packColumnPanels(bp, 0, pc, kc, 0, n, NR);
                int at = c * partialFloats;
                for (int jr = 0; jr < nPanels; jr++) {
                    for (int ir = 0; ir < mPanels; ir++, at += tileFloats) {
                        microKernel(kc, ap, ir * MR * kc, bp, jr * NR * kc, partials, at, pcb > 0);
                    }
                }
            }
        });
        int tiles = mPanels * nPanels;
        CpuThreads.parallelRange(tiles, serial ? tiles : Math.max(1, 4096 / chunks), (s, e) -> {
            float[] sum = WORKSPACE.get().tile;
            for (int t = (int) s; t < e; t++) {
                int jr = t / mPanels;
                int ir = t % mPanels;
                System.arraycopy(partials, t * tileFloats, sum, 0, tileFloats);
                for (int c = 1; c < chunks; c++) {
                    addTile(partials, c * partialFloats + t * tileFloats, sum);
                }
                out.store(sum, NR, ir * MR, Math.min(MR, m - ir * MR), jr * NR, Math.min(NR, n - jr * NR), true);
            }
        });
    }

    /** sum[0 … MR·NR) += src[at …]. */
    private static void addTile(float[] src, int at, float[] sum) {
        VectorSpecies<Float> s = SPECIES;
        for (int i = 0; i < MR * NR; i += s.length()) {
            FloatVector.fromArray(s, sum, i).add(FloatVector.fromArray(s, src, at + i)).intoArray(sum, i);
        }
    }

    /** body(0 … n−1): on the pool, or on this thread when the product is too small to share. */
    private static void forEach(boolean serial, int n, java.util.function.IntConsumer body) {
        if (serial) {
            for (int i = 0; i < n; i++) {
                body.accept(i);
            }
        } else {
            CpuThreads.parallelFor(n, body);
        }
    }

    /** Start of part i of [0, total) cut into parts as equal as integers allow. */
    private static int split(int total, int parts, int i) {
        return (int) ((long) total * i / parts);
    }

    /**
     * One task's share: every MR×NR tile of its row block (packed at aOff) against B panels
     * [jr0, jr1). The B micro-panel is the outer loop so it stays in L1 while A streams from L2.
     */
    private static void macroKernel(float[] aPack, int aOff, int r0, int rows, float[] bPack, int bOff, int jc,
            int nc, int jr0, int jr1, int kc, GemmOutput out, boolean first, float[] tile) {
        int mPanels = ceilDiv(rows, MR);
        for (int jr = jr0; jr < jr1; jr++) {
            int cols = Math.min(NR, nc - jr * NR);
            int bi = bOff + jr * NR * kc;
            for (int ir = 0; ir < mPanels; ir++) {
                microKernel(kc, aPack, aOff + ir * MR * kc, bPack, bi, tile, 0, false);
                out.store(tile, NR, r0 + ir * MR, Math.min(MR, rows - ir * MR), jc + jr * NR, cols, first);
            }
        }
    }

    /** Most floats of tiles {@link #sumTiles} keeps for a column block (8 MiB). */
    private static final long IN_PLACE_FLOATS = 1L << 21;

    /**
     * {@link #macroKernel} for a product with several depth blocks whose tiles are summed in place:
     * tile (panel p, column panel jr) of the column block at sums[(p·nPanels + jr)·MR·NR], p counted
     * over all row blocks from panel0; each is stored once, after depth block {@code kcBlocks − 1}.
     * A strided 3×3's forward stored every tile once per depth block (five at layer2) before.
     */
    private static void sumTiles(float[] aPack, int aOff, int r0, int rows, int panel0, float[] bPack, int jc, int nc,
            int nPanels, int jr0, int jr1, int kc, GemmOutput out, int depthBlock, int kcBlocks, float[] sums,
            float[] tile) {
        int mPanels = ceilDiv(rows, MR);
        boolean last = depthBlock == kcBlocks - 1;
        for (int jr = jr0; jr < jr1; jr++) {
            int cols = Math.min(NR, nc - jr * NR);
            int bi = jr * NR * kc;
            for (int ir = 0; ir < mPanels; ir++) {
                int at = ((panel0 + ir) * nPanels + jr) * MR * NR;
                microKernel(kc, aPack, aOff + ir * MR * kc, bPack, bi, sums, at, depthBlock > 0);
                if (last) {
                    storeTile(sums, at, tile, out, r0 + ir * MR, Math.min(MR, rows - ir * MR), jc + jr * NR, cols);
                }
            }
        }
    }

    /** One task's share: row block mb (rows r0 … r0+rows−1) against column panels [jr0, jr1). */
    private record TaskShare(int mb, int r0, int rows, int jr0, int jr1) {}

    /** How one depth step's work splits into tasks; the same for every depth step of a product. */
    private record TaskPlan(int[] rowStarts, int[] panelStarts, int nSplits) {
        static TaskPlan of(int m, int nPanels, GemmOutput out, int threads) {
            // Rows are handed out in units: MR-panels, or the output's row groups if it has them.
            int group = out.rowGroup();
            int unit = group > 1 ? group : MR;
            int units = ceilDiv(m, unit);
            int perBlock = Math.max(1, MC / unit);
            int blocks = ceilDiv(units, perBlock);
            // At least two tasks per thread where possible, so a thread slowed by a neighbour on
            // the same core does not hold up the rest; round to a multiple of the thread count.
            if (threads > 1) {
                blocks = Math.min(units, Math.max(blocks, 2 * threads));
                blocks = Math.min(units, ceilDiv(blocks, threads) * threads);
            }
            int splits = 1;
            if (threads > 1 && blocks < 2 * threads && out.columnsSplittable()) {
                splits = Math.min(nPanels, ceilDiv(2 * threads, blocks));
            }
            int[] starts = new int[blocks + 1];
            int[] panelStarts = new int[blocks + 1];
            for (int i = 0; i <= blocks; i++) {
                starts[i] = (int) Math.min(m, (long) units * i / blocks * unit);
                panelStarts[i] = i == 0 ? 0 : panelStarts[i - 1] + ceilDiv(starts[i] - starts[i - 1], MR);
            }
            return new TaskPlan(starts, panelStarts, Math.max(1, splits));
        }

        int blocks() {
            return rowStarts.length - 1;
        }

        /** MR-panels over all row blocks (each block's last panel may be partial). */
        int panels() {
            return panelStarts[blocks()];
        }

        /** The first MR-panel of row block mb, counted over all row blocks. */
        int panelStart(int mb) {
            return panelStarts[mb];
        }

        /** Where row block mb of depth block pcb starts in an all-of-A pack (stride kcMax per panel). */
        int prepackedOffset(int pcb, int mb, int kcMax) {
            return (pcb * panels() + panelStarts[mb]) * MR * kcMax;
        }

        int tasks() {
            return blocks() * nSplits;
        }

        /** Task {@code task}'s share of nPanels column panels, or null when it has no work. */
        TaskShare share(int task, int nPanels) {
            int mb = task / nSplits;
            int ns = task % nSplits;
            int r0 = rowStart(mb);
            int rows = rowStart(mb + 1) - r0;
            int jr0 = split(nPanels, nSplits, ns);
            int jr1 = split(nPanels, nSplits, ns + 1);
            return rows == 0 || jr1 == jr0 ? null : new TaskShare(mb, r0, rows, jr0, jr1);
        }

        int rowStart(int block) {
            return rowStarts[block];
        }
    }

    /**
     * Reusable packing buffers, one set per thread: the micro-kernel wants heap arrays (DESIGN.md).
     * They grow to the largest product seen and stay: per calling thread up to KC·NC floats of B
     * (2 MiB at 512 bits), a prepacked A of up to 16 MiB, the split-depth copies (up to 16 MiB) and
     * a column block's tile sums (up to 8 MiB);
     * per worker one A block (~200 KiB) and its task's tiles.
     */
    private static final class Workspace {
        private float[] aPanels = new float[0];
        private float[] bPanels = new float[0];
        private float[] aShared = new float[0];
        private float[] partials = new float[0];
        private float[] accumulators = new float[0];
        private float[] sums = new float[0];
        final float[] tile = new float[MR * NR];

        /** a, or a new array of size floats when a is shorter (contents not kept). */
        private static float[] atLeast(float[] a, int size) {
            return a.length < size ? new float[size] : a;
        }

        float[] aPanels(int size) {
            return aPanels = atLeast(aPanels, size);
        }

        float[] aShared(int size) {
            return aShared = atLeast(aShared, size);
        }

        /** A task's tiles, summed over the depth blocks before they are stored. */
        float[] accumulators(int size) {
            return accumulators = atLeast(accumulators, size);
        }

        /** A column block's tiles, summed over the depth blocks in place ({@link #sumTiles}). */
        float[] sums(int size) {
            return sums = atLeast(sums, size);
        }

        float[] partials(int size) {
            return partials = atLeast(partials, size);
        }

        float[] bPanels(int size) {
            return bPanels = atLeast(bPanels, size);
        }
    }

    private static final ThreadLocal<Workspace> WORKSPACE = ThreadLocal.withInitial(Workspace::new);

    static int ceilDiv(int a, int b) {
        return (a + b - 1) / b;
    }

    /**
     * c[ci …] = Apanel[kc×MR]ᵀ·Bpanel[kc×NR] (+ c[ci …] when {@code accumulate}), an MR×NR tile
     * stored row-major with row stride NR; the one micro-kernel (the convolutions run on it
     * too). Per depth step it loads two B vectors and broadcasts the step's 12 A values straight
     * from the packed panel, each feeding two FMAs into 24 accumulators that stay in registers
     * for the whole panel: 24 + 2 + 1 of AVX-512's 32 vector registers. Measured here against
     * 6×2 (also unrolled ×2), 8×2, 8×3 and 14×2 vectors, 12×2 was fastest (6×2 ~5-10% behind).
     */
    static void microKernel(int kc, float[] a, int ai, float[] b, int bi, float[] c, int ci, boolean accumulate) {
        VectorSpecies<Float> s = SPECIES;
        int vl = s.length();
        FloatVector zero = FloatVector.zero(s);
        FloatVector c0lo = accumulate ? FloatVector.fromArray(s, c, ci + 0 * NR) : zero;
        FloatVector c0hi = accumulate ? FloatVector.fromArray(s, c, ci + 0 * NR + vl) : zero;
        FloatVector c1lo = accumulate ? FloatVector.fromArray(s, c, ci + 1 * NR) : zero;
        FloatVector c1hi = accumulate ? FloatVector.fromArray(s, c, ci + 1 * NR + vl) : zero;
        FloatVector c2lo = accumulate ? FloatVector.fromArray(s, c, ci + 2 * NR) : zero;
        FloatVector c2hi = accumulate ? FloatVector.fromArray(s, c, ci + 2 * NR + vl) : zero;
        FloatVector c3lo = accumulate ? FloatVector.fromArray(s, c, ci + 3 * NR) : zero;
        FloatVector c3hi = accumulate ? FloatVector.fromArray(s, c, ci + 3 * NR + vl) : zero;
        FloatVector c4lo = accumulate ? FloatVector.fromArray(s, c, ci + 4 * NR) : zero;
        FloatVector c4hi = accumulate ? FloatVector.fromArray(s, c, ci + 4 * NR + vl) : zero;
        FloatVector c5lo = accumulate ? FloatVector.fromArray(s, c, ci + 5 * NR) : zero;
        FloatVector c5hi = accumulate ? FloatVector.fromArray(s, c, ci + 5 * NR + vl) : zero;
        FloatVector c6lo = accumulate ? FloatVector.fromArray(s, c, ci + 6 * NR) : zero;
        FloatVector c6hi = accumulate ? FloatVector.fromArray(s, c, ci + 6 * NR + vl) : zero;
        FloatVector c7lo = accumulate ? FloatVector.fromArray(s, c, ci + 7 * NR) : zero;
        FloatVector c7hi = accumulate ? FloatVector.fromArray(s, c, ci + 7 * NR + vl) : zero;
        FloatVector c8lo = accumulate ? FloatVector.fromArray(s, c, ci + 8 * NR) : zero;
        FloatVector c8hi = accumulate ? FloatVector.fromArray(s, c, ci + 8 * NR + vl) : zero;
        FloatVector c9lo = accumulate ? FloatVector.fromArray(s, c, ci + 9 * NR) : zero;
        FloatVector c9hi = accumulate ? FloatVector.fromArray(s, c, ci + 9 * NR + vl) : zero;
        FloatVector c10lo = accumulate ? FloatVector.fromArray(s, c, ci + 10 * NR) : zero;
        FloatVector c10hi = accumulate ? FloatVector.fromArray(s, c, ci + 10 * NR + vl) : zero;
        FloatVector c11lo = accumulate ? FloatVector.fromArray(s, c, ci + 11 * NR) : zero;
        FloatVector c11hi = accumulate ? FloatVector.fromArray(s, c, ci + 11 * NR + vl) : zero;
        for (int p = 0; p < kc; p++, ai += MR, bi += NR) {
            FloatVector b0 = FloatVector.fromArray(s, b, bi);
            FloatVector b1 = FloatVector.fromArray(s, b, bi + vl);
            FloatVector a0 = FloatVector.broadcast(s, a[ai + 0]);
            c0lo = a0.fma(b0, c0lo);
            c0hi = a0.fma(b1, c0hi);
            FloatVector a1 = FloatVector.broadcast(s, a[ai + 1]);
            c1lo = a1.fma(b0, c1lo);
            c1hi = a1.fma(b1, c1hi);
            FloatVector a2 = FloatVector.broadcast(s, a[ai + 2]);
            c2lo = a2.fma(b0, c2lo);
            c2hi = a2.fma(b1, c2hi);
            FloatVector a3 = FloatVector.broadcast(s, a[ai + 3]);
            c3lo = a3.fma(b0, c3lo);
            c3hi = a3.fma(b1, c3hi);
            FloatVector a4 = FloatVector.broadcast(s, a[ai + 4]);
            c4lo = a4.fma(b0, c4lo);
            c4hi = a4.fma(b1, c4hi);
            FloatVector a5 = FloatVector.broadcast(s, a[ai + 5]);
            c5lo = a5.fma(b0, c5lo);
            c5hi = a5.fma(b1, c5hi);
            FloatVector a6 = FloatVector.broadcast(s, a[ai + 6]);
            c6lo = a6.fma(b0, c6lo);
            c6hi = a6.fma(b1, c6hi);
            FloatVector a7 = FloatVector.broadcast(s, a[ai + 7]);
            c7lo = a7.fma(b0, c7lo);
            c7hi = a7.fma(b1, c7hi);
            FloatVector a8 = FloatVector.broadcast(s, a[ai + 8]);
            c8lo = a8.fma(b0, c8lo);
            c8hi = a8.fma(b1, c8hi);
            FloatVector a9 = FloatVector.broadcast(s, a[ai + 9]);
            c9lo = a9.fma(b0, c9lo);
            c9hi = a9.fma(b1, c9hi);
            FloatVector a10 = FloatVector.broadcast(s, a[ai + 10]);
            c10lo = a10.fma(b0, c10lo);
            c10hi = a10.fma(b1, c10hi);
            FloatVector a11 = FloatVector.broadcast(s, a[ai + 11]);
            c11lo = a11.fma(b0, c11lo);
            c11hi = a11.fma(b1, c11hi);
        }
        c0lo.intoArray(c, ci + 0 * NR);
        c0hi.intoArray(c, ci + 0 * NR + vl);
        c1lo.intoArray(c, ci + 1 * NR);
        c1hi.intoArray(c, ci + 1 * NR + vl);
        c2lo.intoArray(c, ci + 2 * NR);
        c2hi.intoArray(c, ci + 2 * NR + vl);
        c3lo.intoArray(c, ci + 3 * NR);
        c3hi.intoArray(c, ci + 3 * NR + vl);
        c4lo.intoArray(c, ci + 4 * NR);
        c4hi.intoArray(c, ci + 4 * NR + vl);
        c5lo.intoArray(c, ci + 5 * NR);
        c5hi.intoArray(c, ci + 5 * NR + vl);
        c6lo.intoArray(c, ci + 6 * NR);
        c6hi.intoArray(c, ci + 6 * NR + vl);
        c7lo.intoArray(c, ci + 7 * NR);
        c7hi.intoArray(c, ci + 7 * NR + vl);
        c8lo.intoArray(c, ci + 8 * NR);
        c8hi.intoArray(c, ci + 8 * NR + vl);
        c9lo.intoArray(c, ci + 9 * NR);
        c9hi.intoArray(c, ci + 9 * NR + vl);
        c10lo.intoArray(c, ci + 10 * NR);
        c10hi.intoArray(c, ci + 10 * NR + vl);
        c11lo.intoArray(c, ci + 11 * NR);
        c11hi.intoArray(c, ci + 11 * NR + vl);
    }
}
