//! The audit chain: an append-only log of admin actions and accesses to personal
//! data in which every entry carries the SHA-256 of the previous entry and of its own
//! fields. Removing, inserting, reordering or altering an entry breaks the chain at
//! that point, and [`verify`] names the first entry where it breaks. (Removing the
//! newest entries is only visible against a head hash kept elsewhere: `postwerk audit
//! verify` prints it.)

use ring::digest::{SHA256, digest};

use crate::StoreResult;
use crate::model::{AuditDraft, AuditRecord};
use crate::row::Columns;
use crate::run::FromRow;

/// The `prev_hash` of the first entry.
pub const GENESIS: [u8; 32] = [0; 32];

/// The hash of an entry: SHA-256 over the previous hash and the entry's fields,
/// each length-prefixed (so no two different entries hash alike).
pub fn chain_hash(prev: &[u8], d: &AuditDraft) -> Vec<u8> {
    let mut buf = Vec::with_capacity(256);
    let mut field = |bytes: &[u8]| {
        buf.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
        buf.extend_from_slice(bytes);
    };
    field(prev);
    field(&d.at.to_be_bytes());
    field(d.tenant_id.as_deref().unwrap_or("").as_bytes());
    field(d.actor.as_bytes());
    field(d.action.as_bytes());
    field(d.target.as_deref().unwrap_or("").as_bytes());
    field(d.ip.as_deref().unwrap_or("").as_bytes());
    digest(&SHA256, &buf).as_ref().to_vec()
}

/// Where a chain stops being intact.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainBreak {
    /// The entry's fields no longer match its hash.
    #[error("entry {seq} was altered (its fields do not match its hash)")]
    Altered {
        /// The entry.
        seq: i64,
    },
    /// The entry does not follow the one before it: entries between them were
    /// removed, or it was inserted or moved.
    #[error(
        "entry {seq} does not follow entry {after}: an entry was removed, inserted or moved here"
    )]
    Unlinked {
        /// The entry whose `prev_hash` does not match.
        seq: i64,
        /// The entry before it (0: the start of the chain; after pruning, the last
        /// pruned entry).
        after: i64,
    },
}

/// The `meta` key of the anchor of a pruned chain (`<seq>:<hex hash>`).
pub(crate) const ANCHOR_KEY: &str = "audit_anchor";

/// The anchor as stored in `meta`.
pub(crate) fn anchor_text(seq: i64, hash: &[u8]) -> String {
    let hex = postwerk_core::hex::encode(hash);
    format!("{seq}:{hex}")
}

/// An anchor read back from `meta` (`None` if malformed).
pub(crate) fn parse_anchor(text: &str) -> Option<(i64, Vec<u8>)> {
    let (seq, hex) = text.split_once(':')?;
    let hash = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    Some((seq.parse().ok()?, hash))
}

/// Of the oldest entries (`(seq, at, hash)` in `seq` order), the last of the leading
/// run created before `before`: where a prune stops.
pub(crate) fn prune_point(oldest: &[(i64, i64, Vec<u8>)], before: i64) -> Option<(i64, Vec<u8>)> {
    oldest
        .iter()
        .take_while(|(_, at, _)| *at < before)
        .last()
        .map(|(seq, _, hash)| (*seq, hash.clone()))
}

/// Checks entries given in `seq` order, starting from `anchor` (the last pruned
/// entry, if the oldest entries were pruned by retention); returns how many there
/// were and the head hash, or the first break.
pub fn verify(
    anchor: Option<(i64, Vec<u8>)>,
    entries: impl IntoIterator<Item = AuditRecord>,
) -> Result<(u64, Vec<u8>), ChainBreak> {
    let (after, prev) = anchor.unwrap_or((0, GENESIS.to_vec()));
    let (mut count, mut prev, mut after) = (0u64, prev, after);
    for e in entries {
        if e.prev_hash != prev {
            return Err(ChainBreak::Unlinked { seq: e.seq, after });
        }
        if chain_hash(&prev, &e.draft()) != e.hash {
            return Err(ChainBreak::Altered { seq: e.seq });
        }
        prev = e.hash;
        after = e.seq;
        count += 1;
    }
    Ok((count, prev))
}

/// The columns an [`AuditRecord`] is read from.
pub(crate) const AUDIT_COLS: &str =
    "seq, at, tenant_id, actor, action, target, ip, prev_hash, hash";

/// An audit row.
impl FromRow for AuditRecord {
    fn from_row<R: Columns>(r: &R) -> Result<Self, R::Error> {
        Ok(AuditRecord {
            seq: r.get("seq")?,
            at: r.get("at")?,
            tenant_id: r.get("tenant_id")?,
            actor: r.get("actor")?,
            action: r.get("action")?,
            target: r.get("target")?,
            ip: r.get("ip")?,
            prev_hash: r.get("prev_hash")?,
            hash: r.get("hash")?,
        })
    }
}

/// A row of [`OLDEST_AUDIT`]: what [`prune_point`] reads (both backends).
pub(crate) fn prune_row<R: Columns>(r: &R) -> Result<(i64, i64, Vec<u8>), R::Error> {
    Ok((r.get("seq")?, r.get("at")?, r.get("hash")?))
}

/// A row of [`AUDIT_ANCHOR`]: the anchor's `seq` and hash; one that does not parse
/// makes it corrupt.
struct Anchor(i64, Vec<u8>);

impl FromRow for Anchor {
    fn from_row<R: Columns>(r: &R) -> Result<Self, R::Error> {
        parse_anchor(&r.get::<String>("value")?)
            .map(|(seq, hash)| Anchor(seq, hash))
            .ok_or_else(|| R::corrupt("audit anchor"))
    }
}

sql! {
    /// The newest entry's hash (the next entry's `prev_hash`).
    LAST_AUDIT_HASH = "SELECT hash FROM audit ORDER BY seq DESC LIMIT 1";
    /// A new entry (`$1`..`$8`: at, tenant, actor, action, target, ip, prev_hash, hash).
    INSERT_AUDIT = "INSERT INTO audit (at, tenant_id, actor, action, target, ip, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING seq";
    /// The oldest `$1` entries, for [`prune_row`].
    OLDEST_AUDIT = "SELECT seq, at, hash FROM audit ORDER BY seq LIMIT $1";
    /// Sets meta key `$1` to `$2` (the anchor of a pruned chain).
    SET_AUDIT_ANCHOR = "INSERT INTO meta (key, value) VALUES ($1, $2) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value";
    /// Removes the entries up to `$1`.
    PRUNE_AUDIT = "DELETE FROM audit WHERE seq <= $1";
    /// Meta key `$1`'s value (the anchor).
    AUDIT_ANCHOR = "SELECT value FROM meta WHERE key = $1";
    /// Entries after `$1`, of tenant `$2` (NULL: every one), at most `$3`.
    LIST_AUDIT = "SELECT {AUDIT_COLS} FROM audit WHERE seq > $1 \
         AND (CAST($2 AS TEXT) IS NULL OR tenant_id = $2) ORDER BY seq LIMIT $3";
    /// The same, newest first, before `$1`.
    LIST_AUDIT_NEWEST = "SELECT {AUDIT_COLS} FROM audit WHERE seq < $1 \
         AND (CAST($2 AS TEXT) IS NULL OR tenant_id = $2) ORDER BY seq DESC LIMIT $3";
}

store_area! {
    /// The audit chain's entries.
    AuditStore {
        /// Appends an audit entry, chained to the newest one (see [`audit`](crate::audit)).
        fn append_audit(&self, d: AuditDraft) -> StoreResult<AuditRecord>;
        /// Deletes the oldest audit entries created before `before` (at most `limit`, a
        /// leading run in `seq` order) and records the last one deleted as the chain's
        /// anchor ([`AuditStore::audit_anchor`]); returns how many went.
        fn prune_audit(&self, before: i64, limit: usize) -> StoreResult<u64>;
    }
    shared {
        /// Audit entries in `seq` order after `after_seq`, optionally of one tenant, at
        /// most `limit`.
        fn list_audit(
            &self,
            tenant_id: Option<&str>,
            after_seq: Option<i64>,
            limit: usize,
        ) -> StoreResult<Vec<AuditRecord>> {
            let args = args![after_seq.unwrap_or(0), tenant_id, limit.max(1)];
            self.rows("list_audit", &LIST_AUDIT, args).await
        }
        /// Like [`AuditStore::list_audit`], newest first: the entries before `before_seq`
        /// (all of them without it), at most `limit`.
        fn list_audit_newest(
            &self,
            tenant_id: Option<&str>,
            before_seq: Option<i64>,
            limit: usize,
        ) -> StoreResult<Vec<AuditRecord>> {
            let args = args![before_seq.unwrap_or(i64::MAX), tenant_id, limit.max(1)];
            self.rows("list_audit_newest", &LIST_AUDIT_NEWEST, args).await
        }
        /// Where the remaining audit chain starts: the `seq` and hash of the last pruned
        /// entry, or `None` if none was ever pruned (the chain starts at genesis).
        fn audit_anchor(&self) -> StoreResult<Option<(i64, Vec<u8>)>> {
            let anchor: Option<Anchor> =
                self.row("audit_anchor", &AUDIT_ANCHOR, args![ANCHOR_KEY]).await?;
            Ok(anchor.map(|Anchor(seq, hash)| (seq, hash)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<AuditRecord> {
        let mut prev = GENESIS.to_vec();
        (1..=n)
            .map(|seq| {
                let d = AuditDraft {
                    at: 1_000 + seq,
                    tenant_id: Some("ten_a".into()),
                    actor: "key:key_1".into(),
                    action: "subject.export".into(),
                    target: Some(format!("rcpt:{seq:02x}")),
                    ip: Some("192.0.2.1".into()),
                };
                let hash = chain_hash(&prev, &d);
                AuditRecord::from_draft(seq, d, std::mem::replace(&mut prev, hash.clone()), hash)
            })
            .collect()
    }

    #[test]
    fn intact_chain_verifies_and_every_tampering_is_named() {
        let good = chain(5);
        let (n, head) = verify(None, good.clone()).unwrap();
        assert_eq!((n, head), (5, good[4].hash.clone()));

        let mut altered = good.clone();
        altered[2].action = "subject.erase".into();
        assert_eq!(verify(None, altered), Err(ChainBreak::Altered { seq: 3 }));

        let mut removed = good.clone();
        removed.remove(1);
        assert_eq!(
            verify(None, removed),
            Err(ChainBreak::Unlinked { seq: 3, after: 1 })
        );

        let mut swapped = good.clone();
        swapped.swap(3, 4);
        assert_eq!(
            verify(None, swapped),
            Err(ChainBreak::Unlinked { seq: 5, after: 3 })
        );

        let mut inserted = good.clone();
        let mut fake = good[1].clone();
        fake.seq = 99;
        inserted.insert(2, fake);
        assert_eq!(
            verify(None, inserted),
            Err(ChainBreak::Unlinked { seq: 99, after: 2 })
        );

        // Recomputing one entry's hash does not help: the next one no longer links.
        let mut rehashed = good;
        rehashed[1].actor = "someone else".into();
        rehashed[1].hash = chain_hash(&rehashed[1].prev_hash, &rehashed[1].draft());
        assert_eq!(
            verify(None, rehashed),
            Err(ChainBreak::Unlinked { seq: 3, after: 2 })
        );
    }

    #[test]
    fn a_pruned_chain_verifies_from_its_anchor_and_only_from_it() {
        let good = chain(5);
        let oldest: Vec<_> = good.iter().map(|e| (e.seq, e.at, e.hash.clone())).collect();
        let anchor = prune_point(&oldest, 1_003).expect("entries 1 and 2 are older");
        assert_eq!(anchor, (2, good[1].hash.clone()));
        assert_eq!(prune_point(&oldest, 1_000), None);
        assert_eq!(
            parse_anchor(&anchor_text(anchor.0, &anchor.1)),
            Some(anchor.clone())
        );
        let rest = good[2..].to_vec();
        assert_eq!(
            verify(Some(anchor.clone()), rest.clone()).map(|(n, _)| n),
            Ok(3)
        );
        assert_eq!(
            verify(None, rest),
            Err(ChainBreak::Unlinked { seq: 3, after: 0 }),
            "without its anchor a pruned chain does not verify"
        );
        assert_eq!(
            verify(Some(anchor), good[3..].to_vec()),
            Err(ChainBreak::Unlinked { seq: 4, after: 2 }),
            "an entry removed after the anchor is named"
        );
    }
}
