package dir4j.retrieval.search;

import dir4j.engine.DType;
import dir4j.engine.Device;
import dir4j.engine.MemoryScope;
import dir4j.engine.Ops;
import dir4j.engine.Shape;
import dir4j.engine.Tensor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Dot-product similarities Q·Dᵀ between query rows and database rows, computed one block at a
 * time with the engine's matmul (the packed SGEMM on CPU), so that any number of queries against
 * any database needs only one block of scores in memory. The database is read through a
 * transposed view: no copy of it is made.
 */
final class SimilarityBlocks {
    /** Query rows per block. */
    static final int QUERY_BLOCK = 512;
    /** Database rows per block on the CPU: 512 x 8192 float scores = 16 MiB. */
    static final int DATABASE_BLOCK = 8192;
    /**
     * Bytes of one block of scores on a device (256 MiB: 512 queries against 131,072 rows). Each
     * block ends in a wait for the device and a merge on the host, during which the device is
     * idle, so on a GPU blocks are made as large as memory comfortably allows: 100,000 rows are
     * one block, as in torch.mm + topk over the whole database. {@code -Ddir4j.search.deviceBlockBytes}
     * sets another size (read at each search).
     */
    static final long DEVICE_BLOCK_BYTES = 256L << 20;

    /** Receives one block: {@code scores[i * databaseCount + j]} = sim(query q0+i, database d0+j). */
    interface Consumer {
        void accept(float[] scores, int q0, int queryCount, int d0, int databaseCount);
    }

    private SimilarityBlocks() {}

    /**
     * Calls {@code consumer} for every block of sim(queries, database[0:databaseRows]),
     * database blocks inner, so a consumer sees each query's blocks in database order.
     */
    static void forEach(Tensor queries, Tensor database, int databaseRows, Consumer consumer) {
        checkMatrix("queries", queries); // before its shape sizes the buffer
        int nq = queries.shape(0);
        float[] buffer = new float[Math.min(QUERY_BLOCK, Math.max(1, nq)) * Math.min(DATABASE_BLOCK,
                Math.max(1, databaseRows))];
        blocks(queries, database, databaseRows, DATABASE_BLOCK, (s, q0, qn, d0, dn) -> {
            copyOut(s, buffer, qn * dn);
            return () -> consumer.accept(buffer, q0, qn, d0, dn);
        });
    }

    /** Receives one block's selection: the best {@code kept} of each query row within the block. */
    interface TopConsumer {
        /** {@code values[i * kept + r]}, database row {@code d0 + columns[i * kept + r]}: query q0+i's r-th best. */
        void accept(float[] values, int[] columns, int q0, int queryCount, int d0, int kept);
    }

    /**
     * Like {@link #forEach}, but each block's k best per query are selected where the scores are
     * ({@link dir4j.engine.Backend#topk}, on the GPU for device tensors) and only those come back
     * to the host: k ≤ {@link dir4j.engine.Backend#TOPK_MAX}.
     */
    static void forEachTop(Tensor queries, Tensor database, int databaseRows, int k, TopConsumer consumer) {
        blocks(queries, database, databaseRows, databaseBlock(database.device()), (s, q0, qn, d0, dn) -> {
            int kept = Math.min(k, dn);
            Tensor v = Tensor.empty(DType.FLOAT32, s.device(), qn, kept);
            Tensor c = Tensor.empty(DType.INT32, s.device(), qn, kept);
            s.backend().topk(s, kept, v, c);
            float[] values = (v.device().equals(Device.CPU) ? v : v.to(Device.CPU)).toFloatArray();
            int[] columns = (c.device().equals(Device.CPU) ? c : c.to(Device.CPU)).toIntArray();
            return () -> consumer.accept(values, columns, q0, qn, d0, kept);
        });
    }

    /** One block of scores [qn, dn] (contiguous, freed after the call) → what to hand the consumer. */
    private interface BlockBody {
        Runnable accept(Tensor scores, int q0, int qn, int d0, int dn);
    }

    /**
     * The checks and the block loop both walks share: each block's Q·Dᵀ is computed in a memory
     * scope of its own, and what the body returns runs after the scope has freed the block.
     */
    private static void blocks(Tensor queries, Tensor database, int databaseRows, int databaseBlock, BlockBody body) {
        checkMatrix("queries", queries);
        checkMatrix("database", database);
        if (queries.shape(1) != database.shape(1)) {
            throw new IllegalArgumentException("query dimension " + queries.shape(1) + " differs from the database's "
                    + database.shape(1));
        }
        if (databaseRows < 0 || databaseRows > database.shape(0)) {
            throw new IllegalArgumentException(databaseRows + " database rows requested of " + database.shape(0));
        }
        int nq = queries.shape(0);
        try (MemoryScope scope = MemoryScope.open()) {
            Tensor queries32 = asFloat32(queries);
            Tensor database32 = asFloat32(database);
            for (int q0 = 0; q0 < nq; q0 += QUERY_BLOCK) {
                int qn = Math.min(QUERY_BLOCK, nq - q0);
                for (int d0 = 0; d0 < databaseRows; d0 += databaseBlock) {
                    int dn = Math.min(databaseBlock, databaseRows - d0);
                    Runnable then;
                    try (MemoryScope block = MemoryScope.open()) {
                        Tensor s = Ops.matmul(queries32.slice(0, q0, q0 + qn), database32.slice(0, d0, d0 + dn).t());
                        then = body.accept(s.isContiguous() ? s : Ops.contiguous(s), q0, qn, d0, dn);
                    }
                    then.run();
                }
            }
        }
    }

    /**
     * Database rows per block of {@link #forEachTop}: {@value #DATABASE_BLOCK} on the CPU (the
     * scores stay in cache), {@link #DEVICE_BLOCK_BYTES} of scores for {@value #QUERY_BLOCK}
     * queries on a device. ({@link #forEach} brings whole blocks to the host, so it keeps
     * {@value #DATABASE_BLOCK} rows everywhere.)
     */
    static int databaseBlock(Device device) {
        if (device.equals(Device.CPU)) {
            return DATABASE_BLOCK;
        }
        long bytes = Long.getLong("dir4j.search.deviceBlockBytes", DEVICE_BLOCK_BYTES);
        return (int) Math.clamp(bytes / ((long) QUERY_BLOCK * Float.BYTES), 1, Integer.MAX_VALUE);
    }

    private static void checkMatrix(String what, Tensor t) {
        if (t.rank() != 2 || !t.dtype().isFloating()) {
            throw new IllegalArgumentException(what + " must be a rank-2 float tensor (rows x dimension), got "
                    + Shape.str(t.shape()) + " " + t.dtype());
        }
    }

    /** The tensor itself as a view when float32, else a float32 copy (owned by the open scope). */
    private static Tensor asFloat32(Tensor t) {
        return t.dtype() == DType.FLOAT32 ? t.slice(0, 0, t.shape(0)) : Ops.cast(t, DType.FLOAT32);
    }

    private static void copyOut(Tensor s, float[] buffer, int count) {
        Tensor cpu = s.device().equals(Device.CPU) ? s : Ops.copyTo(s, Device.CPU);
        Tensor c = cpu.isContiguous() ? cpu : Ops.contiguous(cpu);
        MemorySegment.copy(c.segment(), ValueLayout.JAVA_FLOAT, c.offset() * Float.BYTES, buffer, 0, count);
    }
}
