package dir4j.retrieval.train;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/** Reading a run's log.csv in tests. */
public final class LogFiles {
    private LogFiles() {}

    /** log.csv without its images/s column (a measured speed): step, loss, lr, validation mAP. */
    public static List<String> withoutSpeed(Path log) throws IOException {
        return Files.readAllLines(log).stream().map(l -> {
            String[] f = l.split(",", -1);
            return f[0] + "," + f[1] + "," + f[2] + "," + f[4];
        }).toList();
    }
}
