# Sourced by the bench scripts after they set $root (the repository):
# - java: a JDK 25's java, as ./dir4j finds it (.ci/jdk25.sh: JAVA_HOME when it is a JDK 25, else
#   /usr/lib/jvm/*25*), or the script stops saying none was found. A JAVA_HOME at an older JDK
#   (Debian's 17, say) would otherwise run JMH, whose forks then fail on dir4j's class files
#   while JMH itself exits 0 with an empty table.
# - jmh_failed FILE: says on stderr why a JMH run written to FILE gave no results (its error
#   lines, such as an exception in a benchmark's setup or another JMH holding /tmp/jmh.lock),
#   not only JMH's closing boilerplate.
. "$root/.ci/jdk25.sh"
dir4j_find_jdk25 || exit 1
java="$JAVA_HOME/bin/java"

jmh_failed() {
  local errors
  errors="$(grep -E 'ERROR|Error|Exception|<failure>|JMH lock|jmh\.lock' "$1" \
    | grep -vE '^[[:space:]]+at |^Benchmark |^# ' | head -12 || true)"
  echo "JMH gave no results ($java):" >&2
  if [[ -n "$errors" ]]; then echo "$errors" >&2; else tail -5 "$1" >&2; fi
}
