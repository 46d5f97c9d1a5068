//! The password hashing pool: a fixed number of worker threads, each owning one argon2
//! memory buffer that it reuses for every verification, fed by a short bounded queue.
//!
//! Owns where argon2 runs, how many runs there are at once, and the memory they use.
//! It does not own which hash a password is checked against (`mod.rs`), nor how often
//! someone may try (`storage/rate_limit.rs`).
//!
//! Why not tokio's `spawn_blocking`: its pool grows to 512 threads, and argon2id at the
//! default cost allocates 19 MiB per run, so one anonymous burst of sign-in POSTs made
//! the process allocate gigabytes and stall token polls for seconds. Here at most
//! `workers` verifications run and at most `queue` wait; a request beyond that is
//! refused at once with [`Busy`] (the page answers 503 with `Retry-After`). Memory is
//! bounded by `workers` buffers, each the size of the largest hash verified, allocated
//! on a worker's first run and kept: a burst costs CPU time, never more memory.
//!
//! Workers are started on demand, up to `workers`, and end when the pool is dropped.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

pub use argon2::Block;
use tokio::sync::oneshot;

use crate::accounts::password;

/// Every worker and every queue slot is taken: nothing was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("password hashing is at capacity")]
pub struct Busy;

/// Work for a hashing thread, given that thread's reusable argon2 memory.
type Job = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

struct Queue {
    jobs: VecDeque<Job>,
    /// Jobs accepted and not finished: queued or running.
    in_flight: usize,
    /// Worker threads started.
    started: usize,
    /// Workers not running a job (waiting, or about to take a queued one).
    idle: usize,
    /// The pool was dropped: workers finish the queue and end.
    closed: bool,
}

struct Shared {
    // std's Mutex: the critical sections are queue operations; the hashing itself runs
    // outside it.
    queue: Mutex<Queue>,
    work: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Who a verification is for: a browser where the username signed in before
/// (`known_browser.rs`) may take the places kept back from everyone else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asker {
    /// A known browser of the account.
    KnownBrowser,
    /// Anyone else.
    Stranger,
}

/// A fixed pool of password hashing threads behind a bounded queue.
pub struct HashPool {
    shared: Arc<Shared>,
    workers: usize,
    /// `workers + queue`: jobs accepted at once.
    capacity: usize,
    /// Of `capacity`, the places strangers may not take (a quarter, rounded down): a
    /// flood of wrong passwords from many addresses, each refused at once when the
    /// pool is full and so costing none of its address's guesses, fills the pool for
    /// strangers but not for a person signing in where they did before.
    kept_for_known: usize,
}

impl HashPool {
    /// A pool of at most `workers` threads (at least 1) and `queue` waiting jobs.
    pub fn new(workers: usize, queue: usize) -> HashPool {
        let workers = workers.max(1);
        HashPool {
            shared: Arc::new(Shared {
                queue: Mutex::new(Queue {
                    jobs: VecDeque::new(),
                    in_flight: 0,
                    started: 0,
                    idle: 0,
                    closed: false,
                }),
                work: Condvar::new(),
            }),
            workers,
            capacity: workers + queue,
            kept_for_known: (workers + queue) / 4,
        }
    }

    /// Checks `password` against the PHC string `phc` on a hashing thread, with the
    /// same result as [`password::verify`]. `Err(Busy)` at once when the pool is full.
    /// `held` is dropped when the job ends (run, or skipped because nobody waits for
    /// it any more), not when the caller stops waiting: what the caller holds for as
    /// long as the verification takes a thread or a queue slot.
    pub fn verify<H: Send + 'static>(
        &self,
        phc: String,
        password: String,
        held: H,
        asker: Asker,
    ) -> Result<Verifying, Busy> {
        let (tx, rx) = oneshot::channel();
        let limit = match asker {
            Asker::KnownBrowser => self.capacity,
            Asker::Stranger => self.capacity - self.kept_for_known,
        };
        self.try_run_within(limit, move |memory| {
            // The client went away while this waited: nobody would read the answer.
            if tx.is_closed() {
                return;
            }
            let matched = password::verify_in(&phc, &password, memory);
            // Let go before answering: the caller may act on the answer at once.
            drop(held);
            let _ = tx.send(matched);
        })?;
        Ok(Verifying(rx))
    }

    /// Runs `job` on a hashing thread with that thread's reusable argon2 memory, or
    /// refuses at once with `Busy` when every worker and every queue slot is taken.
    /// [`HashPool::verify`] is the job the server runs; tests hold workers busy with
    /// their own.
    pub fn try_run(&self, job: impl FnOnce(&mut Vec<Block>) + Send + 'static) -> Result<(), Busy> {
        self.try_run_within(self.capacity, job)
    }

    /// [`HashPool::try_run`], refused once `limit` jobs are in flight.
    fn try_run_within(
        &self,
        limit: usize,
        job: impl FnOnce(&mut Vec<Block>) + Send + 'static,
    ) -> Result<(), Busy> {
        let mut q = self.shared.lock();
        if q.closed || q.in_flight >= limit {
            return Err(Busy);
        }
        // No idle worker will be left for this job: start one, if the pool may grow.
        if q.jobs.len() >= q.idle && q.started < self.workers {
            let shared = Arc::clone(&self.shared);
            let spawned = std::thread::Builder::new()
                .name("password-hash".to_owned())
                .spawn(move || work(&shared));
            match spawned {
                Ok(_) => {
                    q.started += 1;
                    q.idle += 1;
                }
                // No thread at all would leave the job waiting forever.
                Err(_) if q.started == 0 => return Err(Busy),
                Err(_) => {}
            }
        }
        q.in_flight += 1;
        q.jobs.push_back(Box::new(job));
        drop(q);
        self.shared.work.notify_one();
        Ok(())
    }

    /// Worker threads started so far (never more than the configured workers).
    pub fn threads(&self) -> usize {
        self.shared.lock().started
    }

    /// Jobs accepted and not yet finished.
    pub fn in_flight(&self) -> usize {
        self.shared.lock().in_flight
    }
}

impl Drop for HashPool {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.work.notify_all();
    }
}

/// A worker: takes jobs until the pool is dropped and the queue is empty.
fn work(shared: &Shared) {
    // The one argon2 buffer of this thread, grown to the largest cost verified, reused.
    let mut memory: Vec<Block> = Vec::new();
    let mut q = shared.lock();
    loop {
        if let Some(job) = q.jobs.pop_front() {
            q.idle -= 1;
            drop(q);
            // A job that panics fails its own request (its answer is dropped) and
            // leaves the worker and the pool's counts intact.
            let _ = catch_unwind(AssertUnwindSafe(|| job(&mut memory)));
            q = shared.lock();
            q.idle += 1;
            q.in_flight -= 1;
        } else if q.closed {
            return;
        } else {
            q = shared.work.wait(q).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// A verification accepted by the pool.
pub struct Verifying(oneshot::Receiver<bool>);

impl Verifying {
    /// Whether the password matched; false if the verification could not finish.
    pub async fn outcome(self) -> bool {
        self.0.await.unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::{Algorithm, Argon2, Params, Version};
    use std::sync::mpsc;

    /// A job that holds its worker until `release` is dropped or sent to.
    fn blocker(pool: &HashPool) -> Result<mpsc::Sender<()>, Busy> {
        let (release, wait) = mpsc::channel::<()>();
        pool.try_run(move |_| {
            let _ = wait.recv();
        })?;
        Ok(release)
    }

    #[tokio::test]
    async fn a_full_pool_refuses_at_once_and_takes_work_again_when_freed() {
        let pool = HashPool::new(1, 1);
        let running = blocker(&pool).unwrap();
        let queued = blocker(&pool).unwrap();
        assert_eq!(blocker(&pool).unwrap_err(), Busy);
        let phc = password::hash_with("pw", password::test_params());
        assert!(pool
            .verify(phc.clone(), "pw".into(), (), Asker::Stranger)
            .is_err());
        assert_eq!(pool.threads(), 1);
        drop(running);
        drop(queued);
        let verifying = loop {
            // The two blockers end as soon as they run; then there is room again.
            match pool.verify(phc.clone(), "pw".into(), (), Asker::Stranger) {
                Ok(v) => break v,
                Err(Busy) => tokio::task::yield_now().await,
            }
        };
        assert!(verifying.outcome().await);
        assert_eq!(pool.threads(), 1);
    }

    /// What a verification holds is let go when its job ends, not when its caller
    /// stops waiting: a caller that goes away frees nothing the job still takes.
    #[tokio::test]
    async fn what_a_verification_holds_lives_as_long_as_its_job() {
        let pool = HashPool::new(1, 1);
        let running = blocker(&pool).unwrap();
        let held = std::sync::Arc::new(());
        let phc = password::hash_with("pw", password::test_params());
        let verifying = pool
            .verify(
                phc,
                "pw".into(),
                std::sync::Arc::clone(&held),
                Asker::Stranger,
            )
            .unwrap();
        drop(verifying);
        assert_eq!(std::sync::Arc::strong_count(&held), 2, "queued: still held");
        drop(running);
        // The job runs (and skips the hash: nobody waits for it), then lets go.
        while std::sync::Arc::strong_count(&held) > 1 {
            tokio::task::yield_now().await;
        }
        assert_eq!(pool.in_flight(), 0);
    }

    #[tokio::test]
    async fn the_pool_starts_no_more_threads_than_workers() {
        let pool = HashPool::new(2, 8);
        let releases: Vec<_> = (0..10).map(|_| blocker(&pool).unwrap()).collect();
        assert_eq!(blocker(&pool).unwrap_err(), Busy);
        assert_eq!(pool.threads(), 2);
        assert_eq!(pool.in_flight(), 10);
        drop(releases);
    }

    #[tokio::test]
    async fn verifications_agree_with_password_verify() {
        let pool = HashPool::new(2, 16);
        let with = |algorithm, version, m, len| {
            let params = Params::new(m, 1, 1, Some(len)).unwrap();
            let salt = argon2::password_hash::SaltString::encode_b64(b"sixteen byte slt").unwrap();
            use argon2::PasswordHasher;
            Argon2::new(algorithm, version, params)
                .hash_password(b"correct horse", &salt)
                .unwrap()
                .to_string()
        };
        let hashes = [
            password::hash_with("correct horse", password::test_params()),
            with(Algorithm::Argon2id, Version::V0x13, 64, 32),
            with(Algorithm::Argon2i, Version::V0x13, 128, 16),
            with(Algorithm::Argon2d, Version::V0x10, 64, 64),
            // A larger cost after smaller ones: the worker's buffer grows once.
            with(Algorithm::Argon2id, Version::V0x13, 1024, 32),
            password::dummy_like(&password::hash_with("x", password::test_params())),
            "not a hash".to_owned(),
            "$argon2id$v=19$m=64,t=1,p=1$c2l4dGVlbiBieXRlIHNsdA".to_owned(),
        ];
        for phc in &hashes {
            for guess in ["correct horse", "correct hors", ""] {
                let pooled = pool
                    .verify(phc.clone(), guess.to_owned(), (), Asker::Stranger)
                    .unwrap()
                    .outcome()
                    .await;
                assert_eq!(pooled, password::verify(phc, guess), "{phc} with {guess:?}");
            }
        }
        assert!(
            pool.verify(
                hashes[1].clone(),
                "correct horse".into(),
                (),
                Asker::Stranger
            )
            .unwrap()
            .outcome()
            .await
        );
    }
}
