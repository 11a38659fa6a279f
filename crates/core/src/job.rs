//! Work done a bounded piece at a time.
//!
//! A page cannot stop a computation in the middle: while wasm runs, its worker
//! answers no message. So everything long (training, Hessian searches, sharpness
//! measures, loss surfaces, studies, decision fields) is a [`Job`]: it does one
//! small piece per [`Job::advance`] call and can be dropped between pieces to
//! cancel it. One driver, [`Slicer::work_for`], runs any job for a time budget;
//! the page's scheduler gives each job its share of the time and nothing else
//! needs to know how a job splits its work.
//!
//! A piece is small even for the largest network the page allows (see each
//! implementation), so a budget is overrun by at most one piece.

/// Resumable work: a piece per call, progress and completion on demand.
///
/// `Cx` is what a piece needs but the job does not own, such as the Hessian
/// operator that [`crate::hessian::PowerIteration`] multiplies by; most jobs own
/// everything and use `()`.
pub trait Job<Cx: ?Sized = ()> {
    /// Does the next piece of work. Returns true once the job is done (and
    /// stays true when called again).
    fn advance(&mut self, cx: &mut Cx) -> bool;

    /// Fraction of the work done, in [0, 1].
    fn progress(&self) -> f64;

    /// Whether the work is finished, so its result is final.
    fn is_done(&self) -> bool;

    /// True while the job cannot go on until an answer from outside arrives (a
    /// loss surface the GPU is computing); the driver then stops early instead
    /// of spinning.
    fn is_waiting(&self) -> bool {
        false
    }
}

/// Why [`Slicer::work_for`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// The job is finished.
    Done,
    /// The job waits for an answer from outside ([`Job::is_waiting`]).
    Waiting,
    /// The time budget is spent; the job goes on at the next call.
    OutOfTime,
}

/// Runs jobs for a time budget, looking at the clock only every so many
/// pieces: a piece can be much cheaper than reading the clock is worth (a
/// training step of the reference net takes ~40 us), so the pieces between two
/// readings double while they take under [`Slicer::CHECK_MS`] / 2 and halve
/// above 2 x that. Keep one `Slicer` per kind of job, since it learns that
/// job's speed.
#[derive(Clone, Copy, Debug)]
pub struct Slicer {
    per_check: usize,
}

impl Default for Slicer {
    fn default() -> Self {
        Slicer { per_check: 1 }
    }
}

impl Slicer {
    /// The time between two clock readings it aims for (ms).
    pub const CHECK_MS: f64 = 0.5;
    /// The most pieces between two clock readings.
    pub const MAX_PER_CHECK: usize = 1 << 14;

    /// Advances `job` until it is done, waits, or `budget_ms` have passed on
    /// `now` (milliseconds, any origin). Does at least one piece, so that a job
    /// whose pieces are slower than the budget still moves.
    pub fn work_for<Cx: ?Sized, J: Job<Cx> + ?Sized>(
        &mut self,
        job: &mut J,
        cx: &mut Cx,
        budget_ms: f64,
        now: &mut dyn FnMut() -> f64,
    ) -> Stop {
        let start = now();
        let mut t0 = start;
        loop {
            for _ in 0..self.per_check {
                if job.is_done() || job.advance(cx) {
                    return Stop::Done;
                }
                if job.is_waiting() {
                    return Stop::Waiting;
                }
            }
            let t1 = now();
            let took = t1 - t0;
            if took < Self::CHECK_MS / 2.0 {
                self.per_check = (self.per_check * 2).min(Self::MAX_PER_CHECK);
            } else if took > Self::CHECK_MS * 2.0 {
                self.per_check = (self.per_check / 2).max(1);
            }
            if t1 - start >= budget_ms {
                return Stop::OutOfTime;
            }
            t0 = t1;
        }
    }
}

/// Runs `job` to the end (natively, or where nothing else needs the thread).
pub fn finish<Cx: ?Sized, J: Job<Cx> + ?Sized>(job: &mut J, cx: &mut Cx) {
    while !job.is_done() && !job.advance(cx) {
        assert!(!job.is_waiting(), "finish: the job waits for an answer from outside that nothing will give");
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    /// Counts to `n`, a piece per call; each piece moves a fake clock by `cost`.
    struct Count<'a> {
        at: usize,
        n: usize,
        clock: &'a Cell<f64>,
        cost: f64,
        wait_at: Option<usize>,
    }

    impl Job for Count<'_> {
        fn advance(&mut self, _: &mut ()) -> bool {
            if self.wait_at != Some(self.at) && self.at < self.n {
                self.at += 1;
                self.clock.set(self.clock.get() + self.cost);
            }
            self.is_done()
        }
        fn progress(&self) -> f64 {
            self.at as f64 / self.n as f64
        }
        fn is_done(&self) -> bool {
            self.at >= self.n
        }
        fn is_waiting(&self) -> bool {
            self.wait_at == Some(self.at)
        }
    }

    fn count(n: usize, cost: f64, clock: &Cell<f64>) -> Count<'_> {
        Count { at: 0, n, clock, cost, wait_at: None }
    }

    #[test]
    fn a_budget_is_overrun_by_at_most_the_pieces_between_two_readings() {
        let clock = Cell::new(0.0);
        let mut job = count(1_000_000, 0.01, &clock);
        let mut slicer = Slicer::default();
        let mut now = || clock.get();
        // Warm up: the slicer learns how many pieces fill CHECK_MS.
        for _ in 0..20 {
            assert_eq!(slicer.work_for(&mut job, &mut (), 5.0, &mut now), Stop::OutOfTime);
        }
        let (before, t) = (job.at, clock.get());
        slicer.work_for(&mut job, &mut (), 5.0, &mut now);
        let spent = clock.get() - t;
        assert!((5.0..5.0 + 2.0 * Slicer::CHECK_MS + 1e-9).contains(&spent), "spent {spent} ms of a 5 ms budget");
        assert_eq!(job.at - before, (spent / 0.01).round() as usize);
        assert!(slicer.per_check > 1, "cheap pieces are read in batches");
    }

    #[test]
    fn a_slow_piece_still_moves_and_a_finished_job_stops() {
        let clock = Cell::new(0.0);
        let mut now = || clock.get();
        let mut slow = count(3, 50.0, &clock);
        let mut slicer = Slicer::default();
        assert_eq!(slicer.work_for(&mut slow, &mut (), 1.0, &mut now), Stop::OutOfTime);
        assert_eq!(slow.at, 1, "one piece, though it took longer than the budget");
        assert_eq!(slicer.work_for(&mut slow, &mut (), 1e9, &mut now), Stop::Done);
        assert_eq!((slow.at, slow.progress()), (3, 1.0));
        assert_eq!(slicer.work_for(&mut slow, &mut (), 1e9, &mut now), Stop::Done, "done stays done");
        assert_eq!(slow.at, 3);
    }

    #[test]
    fn a_waiting_job_returns_at_once() {
        let clock = Cell::new(0.0);
        let mut job = Count { wait_at: Some(4), ..count(10, 0.001, &clock) };
        let stop = Slicer::default().work_for(&mut job, &mut (), 1e9, &mut || clock.get());
        assert_eq!((stop, job.at), (Stop::Waiting, 4));
        job.wait_at = None;
        finish(&mut job, &mut ());
        assert_eq!(job.at, 10);
    }
}
