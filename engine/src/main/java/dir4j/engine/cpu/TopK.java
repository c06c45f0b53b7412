package dir4j.engine.cpu;

import java.util.Arrays;

/**
 * The k best (score, index) pairs of a stream, in {@link ScoreOrder} (search results, the CPU
 * backend's top-k): a bounded max-heap of sort
 * keys whose root is the worst kept pair, so a candidate that cannot enter costs one comparison
 * (partial selection, O(n log k), never a full sort).
 */
public final class TopK {
    private final long[] heap;
    private int size;

    public TopK(int k) {
        if (k < 1) {
            throw new IllegalArgumentException("k must be at least 1, got " + k);
        }
        heap = new long[k];
    }

    /** The k this selection keeps. */
    public int capacity() {
        return heap.length;
    }

    public void offer(float score, int index) {
        long key = ScoreOrder.key(score, index);
        if (size < heap.length) {
            int i = size++;
            heap[i] = key;
            while (i > 0) {
                int parent = (i - 1) >>> 1;
                if (heap[parent] >= key) {
                    break;
                }
                heap[i] = heap[parent];
                i = parent;
            }
            heap[i] = key;
        } else if (key < heap[0]) {
            siftDown(key);
        }
    }

    private void siftDown(long key) {
        int i = 0;
        int half = size >>> 1;
        while (i < half) {
            int child = 2 * i + 1;
            int right = child + 1;
            if (right < size && heap[right] > heap[child]) {
                child = right;
            }
            if (key >= heap[child]) {
                break;
            }
            heap[i] = heap[child];
            i = child;
        }
        heap[i] = key;
    }

    /** The kept pairs' keys, best first (the heap is left unusable). */
    public long[] sortedKeys() {
        long[] keys = Arrays.copyOf(heap, size);
        Arrays.sort(keys);
        return keys;
    }
}
