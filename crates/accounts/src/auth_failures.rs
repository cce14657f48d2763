//! Refused credentials — failed sign-ins, refused API keys — are counted in
//! `postwerk_auth_failures_total{kind}` and written to the audit log as
//! `auth_failure.<kind>` (actor `anonymous` with the client address; the target names
//! the account or key by id, or an unknown address by a short form of its blind index,
//! never the address or the key's secret).
//!
//! Writing an audit entry costs a durable write, and refused credentials cost an
//! attacker nothing, so the entries are rate-bounded: each node writes at most
//! [`AUDITED_PER_MINUTE`] of them per minute. The ones beyond are only counted; the
//! first entry of the next minute is preceded by one `auth_failure.unaudited` entry
//! whose target `count:<n>` says how many were left out. (Each client is bounded
//! anyway by the failure guard: see [`crate::guard`].)

use std::net::IpAddr;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use postwerk_core::metrics::{self, AuthFailure};

use postwerk_services::audit::{self, Actor};
use postwerk_services::context::Services;

/// Most failure entries a node writes to the audit log per minute.
pub const AUDITED_PER_MINUTE: u32 = 60;
const MINUTE: Duration = Duration::from_secs(60);

/// The audit log's share of refused credentials in the current minute.
struct Budget {
    since: Instant,
    written: u32,
    left_out: u64,
}

impl Budget {
    /// Whether one more entry may be written at `now`: `Some(n)` with the number of
    /// entries left out in the previous minute (to be recorded first), `None` when
    /// this one is left out.
    fn admit(&mut self, now: Instant) -> Option<u64> {
        let mut carried = 0;
        if now.duration_since(self.since) >= MINUTE {
            carried = self.left_out;
            *self = Budget {
                since: now,
                written: 0,
                left_out: 0,
            };
        }
        if self.written >= AUDITED_PER_MINUTE {
            self.left_out += 1;
            return None;
        }
        self.written += 1;
        Some(carried)
    }
}

static BUDGET: LazyLock<Mutex<Budget>> = LazyLock::new(|| {
    Mutex::new(Budget {
        since: Instant::now(),
        written: 0,
        left_out: 0,
    })
});

/// The audit target naming an address that has no account: `email:` and the first
/// 16 hex digits of its blind index.
pub fn unknown_address(email_index: &str) -> String {
    format!("email:{}", email_index.get(..16).unwrap_or(email_index))
}

/// Counts a refused credential of `kind` from `ip` and audits it (within the budget)
/// for `tenant_id` (the account's or key's tenant, `None` when unknown) naming
/// `target`. An audit entry that cannot be written is logged; the refusal stands.
pub async fn record(
    services: &Services,
    kind: AuthFailure,
    tenant_id: Option<&str>,
    target: Option<String>,
    ip: Option<IpAddr>,
) {
    metrics::auth_failure(kind);
    let admitted = BUDGET
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .admit(Instant::now());
    let Some(left_out) = admitted else {
        return;
    };
    if left_out > 0 {
        let system = Actor::system();
        let target = Some(format!("count:{left_out}"));
        let summary = audit::record(services, &system, None, "auth_failure.unaudited", target);
        if let Err(e) = summary.await {
            tracing::warn!(error = %e, "could not audit the count of unaudited refused credentials");
        }
    }
    let actor = Actor {
        id: "anonymous".into(),
        ip: ip.map(|ip| ip.to_string()),
    };
    let action = format!("auth_failure.{}", kind.as_str());
    if let Err(e) = audit::record(services, &actor, tenant_id, &action, target).await {
        tracing::warn!(error = %e, kind = kind.as_str(), "could not audit a refused credential");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_leaves_out_what_is_over_and_reports_it_next_minute() {
        let start = Instant::now();
        let mut b = Budget {
            since: start,
            written: 0,
            left_out: 0,
        };
        for _ in 0..AUDITED_PER_MINUTE {
            assert_eq!(b.admit(start), Some(0));
        }
        assert_eq!(b.admit(start + Duration::from_secs(59)), None);
        assert_eq!(b.admit(start + Duration::from_secs(59)), None);
        assert_eq!(
            b.admit(start + MINUTE),
            Some(2),
            "the next minute's first entry reports the two left out"
        );
        assert_eq!(b.admit(start + MINUTE), Some(0), "once");
        assert_eq!(
            unknown_address("0123456789abcdef0123"),
            "email:0123456789abcdef"
        );
    }
}
