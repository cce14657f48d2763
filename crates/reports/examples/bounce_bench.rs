//! Bounce classification throughput:
//! `cargo run --release -p postwerk-reports --example bounce_bench`.
//!
//! Classifies the unit tests' replies (`src/bounce/cases.rs`: the engine's own failures,
//! big providers, common MTAs, status-only and code-only replies, DSN texts) over and over,
//! single-threaded, for about 2 s and prints classifications/s.
//!
//! Run it when adding rules. Expect ~1–2 µs per classification; a few hundred µs means
//! the lazy DFA's cache thrashes and regex fell back to a slow engine: see `DFA_CACHE` in
//! `src/bounce/mod.rs`. The full case set matters: a smaller sample may not reach enough
//! DFA states to show it.

use std::hint::black_box;
use std::time::{Duration, Instant};

use postwerk_core::model::BounceReason::{self, *};
use postwerk_reports::bounce;

/// `(code, enhanced, text, reason, hard)`; only the inputs are used here.
type Case = (u16, Option<&'static str>, &'static str, BounceReason, bool);

const CASES: &[Case] = &include!("../src/bounce/cases.rs");

fn main() {
    // The first call compiles the rules; keep that out of the figure.
    let start = Instant::now();
    black_box(bounce::classify(550, None, "warm up"));
    println!(
        "rules compiled in {:.1} ms; {} sample replies, single thread",
        start.elapsed().as_secs_f64() * 1e3,
        CASES.len()
    );

    let budget = Duration::from_secs(2);
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < budget {
        for &(code, enhanced, text, _, _) in CASES {
            black_box(bounce::classify(
                black_box(code),
                black_box(enhanced),
                black_box(text),
            ));
        }
        n += CASES.len() as u64;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "classify {:>10.0} /s  ({:.2} µs each; {n} classifications in {secs:.2} s)",
        n as f64 / secs,
        secs * 1e6 / n as f64
    );
}
