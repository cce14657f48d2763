//! The import watchdog: the signals of a screened file against the thresholds of
//! `[imports.watchdog]`. An import that trips any of them is held, with each reason
//! and its numbers, until an admin approves or discards it.

use postwerk_core::config::WatchdogConfig;
use serde::{Deserialize, Serialize};

/// What screening counted in a file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Screened {
    /// Data rows (the header not counted).
    pub rows: u64,
    /// Rows refused: no or an invalid address, a likely typo, too many fields.
    pub invalid: u64,
    /// Of those, likely typos of large mailbox domains.
    pub typos: u64,
    /// Role addresses (`info@`, …).
    pub role: u64,
    /// Addresses at disposable-mailbox domains.
    pub disposable: u64,
    /// Addresses already suppressed (hard bounce, complaint, unsubscribe, erasure).
    pub suppressed: u64,
    /// Rows of the most frequent domain.
    pub top_domain: u64,
    /// Rows without the consent evidence the import asks for.
    pub no_consent: u64,
}

/// Why an import was held: a signal, its count and share, and the threshold it
/// passed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    /// `invalid_addresses`, `role_addresses`, `disposable_domains`,
    /// `suppressed_addresses`, `single_domain`, `size` or `missing_consent`.
    pub signal: String,
    /// Rows concerned (for `size`: the file's rows).
    pub count: u64,
    /// Their share of the file's rows (for `size`: the factor over the largest
    /// earlier import).
    pub share: f64,
    /// The threshold passed.
    pub threshold: f64,
}

/// The reasons to hold a file (none: it may be committed). `largest_earlier` is the
/// most rows of the tenant's earlier finished imports (`None`: this is its first);
/// `consent_gated` says whether the import records consent for a purpose a stream
/// requires.
pub fn verdict(
    s: &Screened,
    config: &WatchdogConfig,
    largest_earlier: Option<u64>,
    consent_gated: bool,
) -> Vec<Reason> {
    if !config.enabled || s.rows == 0 {
        return Vec::new();
    }
    let mut reasons = Vec::new();
    if s.rows >= config.min_rows {
        let shares = [
            ("invalid_addresses", s.invalid, config.invalid_share),
            ("role_addresses", s.role, config.role_share),
            ("disposable_domains", s.disposable, config.disposable_share),
            (
                "suppressed_addresses",
                s.suppressed,
                config.suppressed_share,
            ),
            ("single_domain", s.top_domain, config.single_domain_share),
            (
                "missing_consent",
                if consent_gated { s.no_consent } else { 0 },
                config.missing_consent_share,
            ),
        ];
        for (signal, count, threshold) in shares {
            let share = count as f64 / s.rows as f64;
            if share > threshold {
                reasons.push(Reason {
                    signal: signal.into(),
                    count,
                    share: round(share),
                    threshold,
                });
            }
        }
    }
    if let Some(earlier) = largest_earlier.filter(|&n| n > 0)
        && s.rows >= config.size_min_rows
    {
        let factor = s.rows as f64 / earlier as f64;
        if factor > config.size_factor {
            reasons.push(Reason {
                signal: "size".into(),
                count: s.rows,
                share: round(factor),
                threshold: config.size_factor,
            });
        }
    }
    reasons
}

/// `x` to four decimals (what a report needs).
fn round(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn screened(rows: u64) -> Screened {
        Screened {
            rows,
            ..Screened::default()
        }
    }

    fn signals(reasons: &[Reason]) -> Vec<&str> {
        reasons.iter().map(|r| r.signal.as_str()).collect()
    }

    #[test]
    fn a_clean_file_passes_and_each_share_over_its_threshold_holds() {
        let config = WatchdogConfig::default();
        assert!(verdict(&screened(1000), &config, None, true).is_empty());
        let roles = Screened {
            role: 400,
            ..screened(1000)
        };
        let reasons = verdict(&roles, &config, None, false);
        assert_eq!(signals(&reasons), ["role_addresses"]);
        assert_eq!(reasons[0].count, 400);
        assert_eq!(reasons[0].share, 0.4);
        let many = Screened {
            invalid: 200,
            disposable: 60,
            suppressed: 101,
            top_domain: 900,
            no_consent: 51,
            ..screened(1000)
        };
        assert_eq!(
            signals(&verdict(&many, &config, None, true)),
            [
                "invalid_addresses",
                "disposable_domains",
                "suppressed_addresses",
                "single_domain",
                "missing_consent"
            ]
        );
        // Missing evidence counts only where the purpose is consent-gated.
        assert!(!signals(&verdict(&many, &config, None, false)).contains(&"missing_consent"));
    }

    #[test]
    fn small_files_are_not_held_for_shares_and_size_counts_against_earlier_imports() {
        let config = WatchdogConfig::default();
        let tiny = Screened {
            role: 10,
            ..screened(20)
        };
        assert!(verdict(&tiny, &config, None, false).is_empty());
        let big = screened(200_000);
        assert!(
            verdict(&big, &config, None, false).is_empty(),
            "first import"
        );
        assert!(verdict(&big, &config, Some(50_000), false).is_empty());
        let reasons = verdict(&big, &config, Some(10_000), false);
        assert_eq!(signals(&reasons), ["size"]);
        assert_eq!(reasons[0].share, 20.0);
        let off = WatchdogConfig {
            enabled: false,
            ..config
        };
        assert!(verdict(&big, &off, Some(10_000), false).is_empty());
    }
}
