//! The in-memory ready queue: per destination domain, one FIFO per priority lane
//! (transactional before bulk: a transactional job never waits behind queued bulk
//! jobs), and the accounting that decides when another connection to a destination
//! is worth opening.
//!
//! The queue never blocks on I/O. It only hands out jobs and tells the caller
//! (the engine) when to start a connection worker.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::job::{Job, Route};
use postwerk_core::stream::LANES;

#[derive(Default)]
struct Destination {
    lanes: [VecDeque<Job>; LANES],
    workers: usize,
}

impl Destination {
    fn len(&self) -> usize {
        self.lanes.iter().map(VecDeque::len).sum()
    }

    fn pop(&mut self) -> Option<Job> {
        self.lanes.iter_mut().find_map(VecDeque::pop_front)
    }
}

/// Ready jobs by route (egress pool and destination domain).
pub struct ReadyQueue {
    destinations: Mutex<HashMap<Route, Destination>>,
    per_destination: usize,
    len: AtomicUsize,
}

impl ReadyQueue {
    /// An empty queue allowing `per_destination` workers per domain.
    pub fn new(per_destination: usize) -> Self {
        ReadyQueue {
            destinations: Mutex::new(HashMap::new()),
            per_destination,
            len: AtomicUsize::new(0),
        }
    }

    /// Jobs waiting (not in flight).
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds jobs; returns the routes for which a new worker should be started (one
    /// entry per worker). A worker is added while the backlog exceeds the workers
    /// already serving the route, up to the per-destination limit.
    pub fn push(&self, jobs: Vec<Job>) -> Vec<Route> {
        let mut spawn = Vec::new();
        let Ok(mut map) = self.destinations.lock() else {
            return spawn;
        };
        self.len.fetch_add(jobs.len(), Ordering::Relaxed);
        for job in jobs {
            let dest = map.entry(job.route()).or_default();
            dest.lanes[job.content.lane.min(LANES - 1)].push_back(job);
        }
        for (domain, dest) in map.iter_mut() {
            while dest.workers < self.per_destination && dest.len() > dest.workers {
                dest.workers += 1;
                spawn.push(domain.clone());
            }
        }
        spawn
    }

    /// The highest-priority lane with jobs waiting for `route`.
    pub fn best_lane(&self, route: &Route) -> Option<usize> {
        let map = self.destinations.lock().ok()?;
        map.get(route)?.lanes.iter().position(|l| !l.is_empty())
    }

    /// The next job for `route`, if any.
    pub fn pop(&self, route: &Route) -> Option<Job> {
        let mut map = self.destinations.lock().ok()?;
        let job = map.get_mut(route)?.pop();
        if job.is_some() {
            self.len.fetch_sub(1, Ordering::Relaxed);
        }
        job
    }

    /// Takes every waiting job of `route` (the destination failed as a whole).
    pub fn drain(&self, route: &Route) -> Vec<Job> {
        let Ok(mut map) = self.destinations.lock() else {
            return Vec::new();
        };
        let jobs: Vec<Job> = map
            .get_mut(route)
            .map(|d| d.lanes.iter_mut().flat_map(|l| l.drain(..)).collect())
            .unwrap_or_default();
        self.len.fetch_sub(jobs.len(), Ordering::Relaxed);
        jobs
    }

    /// A worker for `route` ends. Returns true if it should be replaced because jobs
    /// are still waiting (the caller then starts a new worker; the count is kept).
    pub fn worker_done(&self, route: &Route, stopping: bool) -> bool {
        let Ok(mut map) = self.destinations.lock() else {
            return false;
        };
        let Some(dest) = map.get_mut(route) else {
            return false;
        };
        if !stopping && dest.len() > 0 {
            return true;
        }
        dest.workers = dest.workers.saturating_sub(1);
        if dest.workers == 0 && dest.len() == 0 {
            map.remove(route);
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::Content;
    use postwerk_core::address::Address;
    use postwerk_services::streams::Stream;

    fn job(n: usize, domain: &str) -> Job {
        Job {
            recipient_id: format!("rcpt_{n}"),
            message_id: "msg_1".into(),
            tenant_id: "t".into(),
            rcpt_hash: vec![],
            address: Address::parse(&format!("u{n}@{domain}")).unwrap(),
            attempts: 0,
            expires_at: 0,
            content: Content::new(
                Vec::new(),
                "example.com".into(),
                &Stream::initial("broadcast"),
                None,
            ),
            pool: None,
        }
    }

    fn route(domain: &str) -> Route {
        Route {
            pool: None,
            domain: domain.into(),
        }
    }

    #[test]
    fn workers_grow_with_backlog_up_to_the_limit() {
        let q = ReadyQueue::new(3);
        assert_eq!(q.push(vec![job(1, "a.test")]), vec![route("a.test")]);
        assert_eq!(
            q.push(vec![job(2, "a.test")]).len(),
            1,
            "backlog 2 > 1 worker"
        );
        assert_eq!(
            q.push((3..10).map(|n| job(n, "a.test")).collect()).len(),
            1,
            "capped at 3"
        );
        assert_eq!(q.push(vec![job(10, "b.test")]), vec![route("b.test")]);
        assert_eq!(q.len(), 10);
    }

    #[test]
    fn pools_do_not_share_a_route() {
        let q = ReadyQueue::new(1);
        let mut pooled = job(2, "a.test");
        pooled.pool = Some("bulk".into());
        let spawned = q.push(vec![job(1, "a.test"), pooled]);
        assert_eq!(spawned.len(), 2, "one worker per pool: {spawned:?}");
        let bulk = Route {
            pool: Some("bulk".into()),
            domain: "a.test".into(),
        };
        assert_eq!(q.pop(&bulk).unwrap().recipient_id, "rcpt_2");
        assert_eq!(q.pop(&route("a.test")).unwrap().recipient_id, "rcpt_1");
    }

    #[test]
    fn transactional_jobs_never_wait_behind_queued_bulk_jobs() {
        let q = ReadyQueue::new(1);
        q.push((1..=3).map(|n| job(n, "a.test")).collect());
        let mut urgent = job(9, "a.test");
        urgent.content = Content::new(
            Vec::new(),
            "example.com".into(),
            &Stream::initial("transactional"),
            None,
        );
        q.push(vec![urgent]);
        let order: Vec<String> = std::iter::from_fn(|| q.pop(&route("a.test")))
            .map(|j| j.recipient_id)
            .collect();
        assert_eq!(order, ["rcpt_9", "rcpt_1", "rcpt_2", "rcpt_3"]);
    }

    #[test]
    fn pop_is_fifo_per_domain_and_workers_are_replaced_while_jobs_wait() {
        let q = ReadyQueue::new(1);
        q.push(vec![job(1, "a.test"), job(2, "a.test")]);
        assert_eq!(q.pop(&route("a.test")).unwrap().recipient_id, "rcpt_1");
        assert!(q.worker_done(&route("a.test"), false), "a job still waits");
        assert_eq!(q.pop(&route("a.test")).unwrap().recipient_id, "rcpt_2");
        assert!(q.pop(&route("a.test")).is_none());
        assert!(!q.worker_done(&route("a.test"), false));
        assert_eq!(
            q.push(vec![job(3, "a.test")]).len(),
            1,
            "worker count went back to 0"
        );
        assert_eq!(q.drain(&route("a.test")).len(), 1);
        assert!(q.is_empty());
    }
}
