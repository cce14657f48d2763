//! Connection slots (`delivery.max_connections`) shared by priority lanes: waiting
//! connections are served highest priority first, and a lane may not take the slots
//! reserved for higher-priority lanes (a stream's `reserved_share`) that those lanes
//! are not using. A bulk flood therefore never holds every slot while transactional
//! mail waits.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use postwerk_core::stream::LANES;

#[derive(Default)]
struct State {
    in_use: [usize; LANES],
    reserved: [usize; LANES],
    /// Waiting acquisitions by (lane, arrival).
    waiters: BTreeMap<(usize, u64), oneshot::Sender<()>>,
    arrivals: u64,
}

impl State {
    fn used(&self) -> usize {
        self.in_use.iter().sum()
    }

    /// True when `lane` may take a slot now: one is free beyond those held back for
    /// higher-priority lanes below their reservation.
    fn can_take(&self, lane: usize, total: usize) -> bool {
        let held_back: usize = (0..lane)
            .map(|l| self.reserved[l].saturating_sub(self.in_use[l]))
            .sum();
        total.saturating_sub(self.used()) > held_back
    }
}

/// The slot pool.
pub struct Slots {
    total: usize,
    state: Mutex<State>,
}

/// A held slot; dropping it frees the slot for the next waiter.
pub struct Slot {
    slots: Arc<Slots>,
    lane: usize,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.slots.release(self.lane);
    }
}

impl Slots {
    /// `total` slots, nothing reserved.
    pub fn new(total: usize) -> Arc<Slots> {
        Arc::new(Slots {
            total,
            state: Mutex::default(),
        })
    }

    /// Sets the slots reserved per lane from percentages of the total (the largest
    /// share asked for by any stream of that priority); at most 90 % in all.
    pub fn reserve(&self, percent: [u8; LANES]) {
        let mut reserved = percent.map(|p| self.total * usize::from(p) / 100);
        let cap = self.total * 9 / 10;
        let mut left = cap;
        for r in &mut reserved {
            *r = (*r).min(left);
            left -= *r;
        }
        if let Ok(mut s) = self.state.lock() {
            s.reserved = reserved;
        }
    }

    /// Waits for a slot for a connection of `lane` (0 first).
    pub async fn acquire(self: &Arc<Self>, lane: usize) -> Slot {
        let lane = lane.min(LANES - 1);
        let rx = {
            let Ok(mut s) = self.state.lock() else {
                return self.slot(lane);
            };
            let ahead = s.waiters.keys().next().is_some_and(|(l, _)| *l <= lane);
            if !ahead && s.can_take(lane, self.total) {
                s.in_use[lane] += 1;
                return self.slot(lane);
            }
            let (tx, rx) = oneshot::channel();
            s.arrivals += 1;
            let arrival = s.arrivals;
            s.waiters.insert((lane, arrival), tx);
            rx
        };
        // The releaser counted the slot as ours before sending.
        let _ = rx.await;
        self.slot(lane)
    }

    fn slot(self: &Arc<Self>, lane: usize) -> Slot {
        Slot {
            slots: self.clone(),
            lane,
        }
    }

    fn release(&self, lane: usize) {
        let Ok(mut s) = self.state.lock() else {
            return;
        };
        s.in_use[lane] = s.in_use[lane].saturating_sub(1);
        while let Some((&(l, arrival), _)) = s.waiters.iter().next() {
            if !s.can_take(l, self.total) {
                break;
            }
            let Some(tx) = s.waiters.remove(&(l, arrival)) else {
                break;
            };
            s.in_use[l] += 1;
            if tx.send(()).is_err() {
                s.in_use[l] -= 1;
            }
        }
    }

    /// Slots in use per lane.
    pub fn in_use(&self) -> [usize; LANES] {
        self.state.lock().map(|s| s.in_use).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn bulk_cannot_take_the_transactional_reserve() {
        let slots = Slots::new(10);
        let mut percent = [0u8; LANES];
        percent[0] = 20;
        slots.reserve(percent);
        let mut bulk = Vec::new();
        for _ in 0..8 {
            bulk.push(slots.acquire(5).await);
        }
        let blocked = tokio::time::timeout(Duration::from_millis(50), slots.acquire(5)).await;
        assert!(
            blocked.is_err(),
            "the 9th bulk connection must wait: 2 slots are reserved"
        );
        let urgent = tokio::time::timeout(Duration::from_millis(50), slots.acquire(0)).await;
        assert!(urgent.is_ok(), "transactional gets a reserved slot at once");
        assert_eq!(slots.in_use()[0], 1);
    }

    #[tokio::test]
    async fn waiters_are_served_by_priority() {
        let slots = Slots::new(1);
        let held = slots.acquire(5).await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for lane in [5usize, 0, 3] {
            let (slots, order) = (slots.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let _slot = slots.acquire(lane).await;
                order.lock().unwrap().push(lane);
            }));
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        drop(held);
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), [0, 3, 5]);
        assert_eq!(slots.in_use(), [0; LANES]);
    }

    #[test]
    fn reservations_never_exceed_ninety_percent() {
        let slots = Slots::new(10);
        slots.reserve([90, 90, 0, 0, 0, 0, 0, 0, 0, 0]);
        let reserved = slots.state.lock().unwrap().reserved;
        assert_eq!(reserved[..2], [9, 0]);
    }
}
