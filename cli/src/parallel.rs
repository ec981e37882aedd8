//! Many files or objects at once (folders, rewrap runs, S3 runs): a few scoped threads,
//! each taking the next item until none is left or an interrupt was requested.

use std::sync::atomic::{AtomicUsize, Ordering};

use envcrypt::pipeline::PipelineOptions;

/// Items up to this size run on one thread each while several run at once; a larger one
/// gets the whole frame pipeline.
const SMALL: u64 = 4 << 20;

/// Most items at once.
const MAX_JOBS: usize = 8;

/// What a run's items wait on, which decides how many run at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// Local files: the threads asked for, or one per core (at least two, since syncing
    /// waits on the disk).
    Cpu,
    /// S3 objects, which wait on the network more than on the CPU: the most at once.
    #[cfg_attr(not(feature = "aws-s3"), allow(dead_code))]
    Network,
}

/// How many of `items` run at once: one with `--threads 1`, else as `bound` says; never
/// more than [`MAX_JOBS`] or the items.
pub fn count(pipeline: &PipelineOptions, bound: Bound, items: usize) -> usize {
    let jobs = match (pipeline.threads, bound) {
        (1, _) => 1,
        (_, Bound::Network) => MAX_JOBS,
        (0, Bound::Cpu) => std::thread::available_parallelism().map_or(2, |n| n.get().max(2)),
        (n, Bound::Cpu) => n,
    };
    jobs.min(MAX_JOBS).min(items.max(1))
}

/// The pipeline for one item of `size` bytes while `jobs` run at once: small items run on
/// one thread each, a large one gets `pipeline`.
pub fn pipeline_for(pipeline: &PipelineOptions, jobs: usize, size: u64) -> PipelineOptions {
    match jobs > 1 && size <= SMALL {
        true => PipelineOptions::single_threaded(),
        false => pipeline.clone(),
    }
}

/// Calls `work(index, item)` for every item on `jobs` threads, in order of taking; stops
/// taking items once an interrupt was requested.
pub fn for_each<T: Sync>(items: &[T], jobs: usize, work: impl Fn(usize, &T) + Sync) {
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1) {
            s.spawn(|| loop {
                if crate::interrupt::requested() {
                    return;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(i) else {
                    return;
                };
                work(i, item);
            });
        }
    });
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[test]
    fn every_item_once_on_any_number_of_jobs() {
        let items: Vec<usize> = (0..100).collect();
        for jobs in [0, 1, 3, 8] {
            let seen = Mutex::new(Vec::new());
            for_each(&items, jobs, |i, item| {
                assert_eq!(i, *item);
                seen.lock().unwrap().push(*item);
            });
            let mut seen = seen.into_inner().unwrap();
            seen.sort_unstable();
            assert_eq!(seen, items, "{jobs} jobs");
        }
    }

    #[test]
    fn how_many_run_at_once() {
        let threads = |n| PipelineOptions::default().with_threads(n);
        assert_eq!(count(&threads(1), Bound::Network, 100), 1);
        assert_eq!(count(&threads(1), Bound::Cpu, 100), 1);
        assert_eq!(count(&threads(3), Bound::Cpu, 100), 3);
        assert_eq!(count(&threads(3), Bound::Network, 100), MAX_JOBS);
        assert_eq!(count(&threads(64), Bound::Cpu, 100), MAX_JOBS);
        assert_eq!(count(&threads(0), Bound::Network, 5), 5);
        assert_eq!(count(&threads(0), Bound::Cpu, 0), 1);
        assert!(count(&threads(0), Bound::Cpu, 100) >= 2);
        let whole = threads(4);
        assert_eq!(pipeline_for(&whole, 2, SMALL).threads, 1);
        assert_eq!(pipeline_for(&whole, 2, SMALL + 1).threads, 4);
        assert_eq!(pipeline_for(&whole, 1, 10).threads, 4);
    }
}
