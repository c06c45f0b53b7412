package dir4j.retrieval.extract;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

/** How a refused resume says what changed between the parts' extraction and this one. */
class PartStoreTest {
    @Test
    void aChangeIsShownWhereTheValuesDifferNotFromTheirCommonStart() {
        String was = "preprocessing=maxSide=128 upscale=true filter=BILINEAR means=[0.485, 0.456, 0.406] "
                + "stds=[0.229, 0.224, 0.225]; scales=[1.0]; scalePoolingP=3.0";
        String now = was.replace("scalePoolingP=3.0", "scalePoolingP=1.0");
        // the first difference is at the 3/1; shown from 20 characters before it
        assertEquals("(was ...1.0]; scalePoolingP=3.0, now ...1.0]; scalePoolingP=1.0)",
                PartStore.change(was, now));
        assertEquals("(was 32, now 16)", PartStore.change("32", "16"));
        assertEquals("(was absent, now 16)", PartStore.change(null, "16"));
        String net = "Options[arch=resnet18, outDim=32] weights sha256 " + "ab".repeat(32);
        String other = net.substring(0, net.length() - 1) + "c";
        String shown = PartStore.change(net, other);
        assertEquals("(was ..." + net.substring(net.length() - 21) + ", now ..." + other.substring(other.length() - 21)
                + ")", shown);
    }
}
