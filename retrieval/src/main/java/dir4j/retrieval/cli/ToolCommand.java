package dir4j.retrieval.cli;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

/**
 * What the retrieval tool commands (eval, whiten, index, search, describe) share: one mapping of
 * outcomes to exit statuses that scripts can rely on, and one way of reporting a failure.
 *
 * <ul>
 * <li>0: done;</li>
 * <li>1: the work failed: an unreadable or inconsistent input file, a missing dataset, a write
 *     error; the message names the file and what to do;</li>
 * <li>2: the command line is wrong: an unknown or malformed option (picocli reports these), a
 *     combination that makes no sense, or {@code --device cuda} where the command has no GPU path or
 *     the GPU cannot start.</li>
 * </ul>
 * Messages go to stderr as {@code dir4j <command>: <message>}; results go to stdout.
 */
abstract class ToolCommand implements Callable<Integer> {
    /** The exit-status section of every tool command's --help. */
    static final String EXIT_HEADING = "%nExit status:%n";
    static final String EXIT_OK = "0:done";
    static final String EXIT_FAILED = "1:failed: an input could not be read or did not fit, or an output could not be "
            + "written (the message names the file)";
    static final String EXIT_USAGE = "2:bad command line: unknown or malformed options, options that do not go "
            + "together, or --device cuda where it cannot run";
    /** The exit statuses of a run that a signal stopped after a checkpoint (train, demo): the signal's own. */
    static final String EXIT_SIGINT = "130:stopped by Ctrl-C (SIGINT) after the step in progress, with a checkpoint "
            + "there (train --resume continues the run; the demo resumes by itself)";
    static final String EXIT_SIGTERM = "143:stopped by SIGTERM, the same way";

    @Spec
    CommandSpec spec;

    /** A mistake in the command line found after parsing: exit status 2. */
    static final class UsageException extends RuntimeException {
        UsageException(String message) {
            super(message);
        }
    }

    @Override
    public final Integer call() {
        try {
            return run();
        } catch (UsageException e) {
            System.err.println("dir4j " + spec.name() + ": " + e.getMessage());
            System.err.println("Try 'dir4j " + spec.name() + " --help' for the options.");
            return 2;
        } catch (IOException | UncheckedIOException | IllegalArgumentException | IllegalStateException e) {
            System.err.println("dir4j " + spec.name() + ": " + message(e));
            return 1;
        }
    }

    /**
     * Refuses an output that would replace an input before it is read or that the command still
     * needs: {@code out} being {@code input} itself (also through a link or another spelling of
     * the path), or lying inside {@code input} when that is a folder (an index). Null paths are
     * skipped. Exit status 2, naming both options.
     */
    static void requireOutputNotInput(Path out, String outOption, Path input, String inputOption) {
        if (out == null || input == null) {
            return;
        }
        Path o = resolved(out);
        Path i = resolved(input);
        boolean same = o.equals(i);
        if (!same && Files.exists(out) && Files.exists(input)) {
            try {
                same = Files.isSameFile(out, input); // hard links too
            } catch (IOException e) {
                same = false;
            }
        }
        if (same) {
            throw new UsageException(outOption + " " + out + " is " + inputOption + " " + input
                    + ": writing it would replace an input; name another file");
        }
        if (Files.isDirectory(input) && o.startsWith(i)) {
            throw new UsageException(outOption + " " + out + " lies inside " + inputOption + " " + input
                    + ": writing it would change an input; name a file outside it");
        }
    }

    /**
     * Refuses an input inside the folder the command replaces whole ({@code folder}, an index):
     * it would be read from what is being removed. Null paths are skipped. Exit status 2.
     */
    static void requireInputNotInside(Path input, String inputOption, Path folder, String folderOption) {
        if (input == null || folder == null) {
            return;
        }
        if (resolved(input).startsWith(resolved(folder))) {
            throw new UsageException(inputOption + " " + input + " lies inside " + folderOption + " " + folder
                    + ", which this command replaces: copy it out first");
        }
    }

    /**
     * The path with links and dot segments resolved as far as it exists (an output often does
     * not yet: its nearest existing folder is resolved and the rest appended).
     */
    private static Path resolved(Path p) {
        Path abs = p.toAbsolutePath().normalize();
        Path existing = abs;
        while (existing != null && !Files.exists(existing)) {
            existing = existing.getParent();
        }
        if (existing == null) {
            return abs;
        }
        try {
            return existing.toRealPath().resolve(existing.relativize(abs));
        } catch (IOException e) {
            return abs;
        }
    }

    /** Does the work; returns the exit status (0 unless a command has its own reason). */
    abstract int run() throws IOException;

    /**
     * A failure as one line naming the file: the JDK's file-system exceptions carry the path alone
     * as their message when the OS gives no reason, so their kind is spelled out here.
     */
    static String message(Exception e) {
        String m = e.getMessage();
        if (e instanceof NoSuchFileException nf) {
            if (nf.getFile() != null && Files.exists(Path.of(nf.getFile()))) {
                // thrown for a path that is there but is not what was looked for (a folder that is not an index)
                String kind = Files.isDirectory(Path.of(nf.getFile())) ? "a directory" : "a file";
                return nf.getFile() + ": exists (" + kind + "), but " + (nf.getReason() == null
                        ? "could not be opened" : nf.getReason());
            }
            return nf.getFile() + ": no such file" + (nf.getReason() == null ? "" : " (" + nf.getReason() + ")");
        }
        if (e instanceof AccessDeniedException ad) {
            return ad.getFile() + ": permission denied";
        }
        if (e instanceof FileAlreadyExistsException fe) {
            // Files.createDirectories reports a file standing where a folder is needed this way
            boolean notFolder = fe.getFile() != null && Files.exists(Path.of(fe.getFile()))
                    && !Files.isDirectory(Path.of(fe.getFile()));
            return fe.getFile() + (notFolder ? ": already exists and is not a folder" : ": already exists");
        }
        if (e instanceof FileSystemException fs && fs.getReason() == null && fs.getFile() != null) {
            return fs.getFile() + ": cannot be read or written (" + e.getClass().getSimpleName() + ")";
        }
        if (e instanceof UncheckedIOException u && u.getCause() != null
                && String.valueOf(m).equals(u.getCause().toString())) { // made from the cause alone
            return message(u.getCause());
        }
        return m == null ? e.getClass().getSimpleName() : m;
    }
}
