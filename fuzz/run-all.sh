#!/usr/bin/env bash
# Fuzzes each target in turn for SECONDS (default 600), one process at a time, stopping
# a target at its first crash, starting from corpus/<target>.
set -u
cd "$(dirname "$0")"
secs=${SECONDS_PER_TARGET:-600}
targets=${*:-smtp_command data_receiver report mime api_json config address}
for t in $targets; do
  input=corpus/$t
  rm -rf "out/$t" && mkdir -p out
  AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1 \
  AFL_BENCH_UNTIL_CRASH=1 AFL_NO_AFFINITY=1 \
    nice -n 19 cargo afl fuzz -i "$input" -o "out/$t" -V "$secs" "target/release/$t" \
    > "out-$t.log" 2>&1
  stats=out/$t/default/fuzzer_stats
  echo "$t: $(grep -E '^(run_time|execs_done|execs_per_sec|saved_crashes|corpus_count)' "$stats" | tr -s ' ' | tr '\n' ' ')"
done
