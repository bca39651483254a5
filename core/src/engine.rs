//! The inference engine: a bounded queue per model feeding worker threads that merge
//! concurrent requests into dynamic batches, and lay runs over the cores by the load.
//!
//! Callers tokenize texts or decode images (in parallel, on their own threads) and submit
//! the rows of a request as one job. A worker takes the first waiting job, then keeps taking jobs
//! for at most `max_queue_delay` while the batch stays within [`MergeLimits`] (how many
//! rows a run may hold at its padded length: measured per variant, since merging saves
//! work on some graphs and CPUs and costs it on others), `max_batch_size` rows and
//! `max_batch_tokens` (rows × longest row, the padded size a batch costs); a job that
//! does not fit waits for the worker's next batch, as does a job of images behind texts
//! or of texts behind images (an image–text model takes both, never in one batch). The
//! rows of a batch are sorted by length and cut into runs within the same limits, so that
//! short texts are not padded to long ones; each run is one `session.run`. Images all
//! have the model's input size: they count as one token each. Every job gets back exactly
//! its own rows, in its own order, with the time it waited and the time it ran.
//!
//! A worker whose batch has the machine to itself (no other run under way, nothing
//! waiting) runs it on the [`Lane::Wide`] session when the layout has one: a lone request
//! is answered on every core; under load each worker runs on a single-thread session.
//!
//! The answer comes back on a oneshot channel: an async caller awaits it
//! ([`Pending::answer`]) without holding a thread; a blocking one waits on it
//! ([`Engine::infer`]). A full queue refuses a job at once ([`Refused::Busy`]): the
//! caller answers 429 rather than letting latency grow without bound. A job whose caller
//! gave up (its deadline passed, or it dropped its [`Pending`]) is dropped unrun.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ndarray::Array3;
use tokenizers::Encoding;
use tokio::sync::oneshot;

use modelcrate_runtime::policy::MergeLimits;
use modelcrate_runtime::{Error, Lane, Layout, Result, RowOutput, TaskModel, image};

/// How requests are merged and how much may wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchingOptions {
    /// Most rows (texts) in one `session.run`.
    pub max_batch_size: usize,
    /// Most padded tokens (rows × longest row) in one `session.run`.
    pub max_batch_tokens: usize,
    /// How far rows merge at each length.
    pub merge: MergeLimits,
    /// How long a worker waits for more jobs to fill a batch; zero takes only what
    /// is already queued.
    pub max_queue_delay: Duration,
    /// Jobs that may wait; beyond it `submit` refuses.
    pub queue_capacity: usize,
}

impl Default for BatchingOptions {
    fn default() -> Self {
        Self {
            max_batch_size: 32,
            max_batch_tokens: 32 * 128,
            merge: MergeLimits::unlimited(),
            max_queue_delay: Duration::from_millis(2),
            queue_capacity: 256,
        }
    }
}

impl BatchingOptions {
    /// Whether `rows` rows whose longest is `longest` tokens may run as one.
    fn fits(&self, rows: usize, longest: usize) -> bool {
        rows <= self.max_batch_size && rows * longest <= self.max_batch_tokens && rows <= self.merge.max_rows(longest)
    }
}

/// The rows of one request: the encodings of its texts, or its prepared images.
#[derive(Debug)]
pub enum Rows {
    Texts(Vec<Encoding>),
    /// `[3, height, width]` each, the model's input size.
    Images(Vec<Array3<f32>>),
}

impl Rows {
    pub fn len(&self) -> usize {
        match self {
            Self::Texts(encodings) => encodings.len(),
            Self::Images(images) => images.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What the longest row costs a padded batch: its tokens; an image counts as one.
    fn longest(&self) -> usize {
        match self {
            Self::Texts(encodings) => encodings.iter().map(Encoding::len).max().unwrap_or(0),
            Self::Images(images) => usize::from(!images.is_empty()),
        }
    }

    /// The encodings of a text job (none for images).
    pub fn encodings(&self) -> &[Encoding] {
        match self {
            Self::Texts(encodings) => encodings,
            Self::Images(_) => &[],
        }
    }

    fn is_images(&self) -> bool {
        matches!(self, Self::Images(_))
    }

    fn images(&self) -> &[Array3<f32>] {
        match self {
            Self::Images(images) => images,
            Self::Texts(_) => &[],
        }
    }
}

/// A job's result: its rows back (post-processing may need the encodings' offsets), one
/// output per row in order, and where its time went.
#[derive(Debug)]
pub struct Answered {
    pub inputs: Rows,
    pub rows: Vec<RowOutput>,
    /// From submission until a worker started the job's batch.
    pub queue_time: Duration,
    /// The job's batch in `session.run`s (all its runs).
    pub inference_time: Duration,
    /// What the caller took to make the rows (tokenizing texts, decoding images), as it
    /// said when it submitted them.
    pub preparation_time: Duration,
    /// Rows in the batch the job ran in (its own and others').
    pub batch_rows: usize,
    /// Rows of the job that ran in a run of texts of different lengths (padded to the
    /// run's longest, or the longest others were padded to).
    pub mixed_length_rows: usize,
}

/// Why a job was not answered.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("the queue of model `{model}` is full ({capacity} requests waiting)")]
    Busy { model: &'static str, capacity: usize },
    #[error("no answer within {0:?}")]
    TimedOut(Duration),
    #[error("the engine of model `{0}` has stopped")]
    Stopped(&'static str),
    /// The batch the job ran in failed; every job of it gets the same message.
    #[error("{0}")]
    Failed(String),
}

impl From<Error> for Refused {
    fn from(error: Error) -> Self {
        Self::Failed(error.to_string())
    }
}

struct Job {
    inputs: Rows,
    preparation_time: Duration,
    submitted: Instant,
    deadline: Instant,
    reply: oneshot::Sender<std::result::Result<Answered, Refused>>,
}

impl Job {
    fn rows(&self) -> usize {
        self.inputs.len()
    }

    fn longest(&self) -> usize {
        self.inputs.longest()
    }

    /// Whether someone still waits for the answer: before its deadline, not dropped.
    fn is_wanted(&self, now: Instant) -> bool {
        self.deadline > now && !self.reply.is_closed()
    }
}

/// A submitted job's answer to come.
pub struct Pending {
    answer: oneshot::Receiver<std::result::Result<Answered, Refused>>,
    model: &'static str,
}

impl Pending {
    /// Awaits the answer without holding a thread. The job's deadline is kept by the
    /// engine (a job not started by then is answered [`Refused::TimedOut`]); dropping the
    /// future withdraws the job if it has not started.
    pub async fn answer(self) -> std::result::Result<Answered, Refused> {
        self.answer.await.unwrap_or(Err(Refused::Stopped(self.model)))
    }

    /// Blocks the calling thread for the answer (not on an async runtime's thread).
    pub fn wait(self) -> std::result::Result<Answered, Refused> {
        self.answer.blocking_recv().unwrap_or(Err(Refused::Stopped(self.model)))
    }
}

/// The jobs waiting for a worker, oldest first. A worker looks at the oldest before it
/// takes it: a job that would not fit the batch being gathered stays first in line.
#[derive(Default)]
struct Queue {
    jobs: Mutex<Waiting>,
    /// Signalled when a job arrives or the queue closes.
    arrived: Condvar,
}

#[derive(Default)]
struct Waiting {
    jobs: VecDeque<Job>,
    /// No job will arrive any more: workers return once it is empty.
    closed: bool,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, Waiting> {
        self.jobs.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// One model's queue and workers. Dropping it stops the workers once the queue drains.
pub struct Engine {
    model: Arc<dyn TaskModel>,
    options: BatchingOptions,
    layout: Layout,
    queue: Arc<Queue>,
}

impl Engine {
    /// Starts one worker per run the model's layout lets be under way at once.
    pub fn start(model: Arc<dyn TaskModel>, options: BatchingOptions) -> Self {
        let options = BatchingOptions {
            max_batch_size: options.max_batch_size.max(1),
            max_batch_tokens: options.max_batch_tokens.max(1),
            queue_capacity: options.queue_capacity.max(1),
            ..options
        };
        let layout = model.info().layout;
        let queue = Arc::new(Queue::default());
        let running = Arc::new(AtomicUsize::new(0));
        // Detached: each worker returns once the queue is closed and empty.
        for index in 0..layout.concurrent_runs() {
            let worker = Worker {
                model: Arc::clone(&model),
                options: options.clone(),
                adaptive: matches!(layout, Layout::Adaptive { .. }),
                queue: Arc::clone(&queue),
                running: Arc::clone(&running),
            };
            std::thread::Builder::new()
                .name(format!("{}-{index}", model.info().name))
                .spawn(move || worker.run())
                .unwrap_or_else(|error| panic!("cannot start an inference thread: {error}"));
        }
        Self {
            model,
            options,
            layout,
            queue,
        }
    }

    pub fn model(&self) -> &Arc<dyn TaskModel> {
        &self.model
    }

    pub fn options(&self) -> &BatchingOptions {
        &self.options
    }

    /// The sessions the workers run on, and how they share the cores.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// Workers: runs that may be under way at once.
    pub fn workers(&self) -> usize {
        self.layout.concurrent_runs()
    }

    /// Jobs submitted and not yet taken by a worker.
    pub fn waiting(&self) -> usize {
        self.queue.lock().jobs.len()
    }

    /// Queues `inputs` as one job, to be answered within `timeout`. Refuses at once when
    /// the queue is full. `preparation_time` (what making `inputs` took) comes back in
    /// the answer, beside the queue and inference times.
    pub fn submit(
        &self,
        inputs: Rows,
        preparation_time: Duration,
        timeout: Duration,
    ) -> std::result::Result<Pending, Refused> {
        let name = self.model.info().name;
        let (reply, answer) = oneshot::channel();
        let submitted = Instant::now();
        let job = Job {
            inputs,
            preparation_time,
            submitted,
            deadline: submitted + timeout,
            reply,
        };
        let mut waiting = self.queue.lock();
        if waiting.closed {
            return Err(Refused::Stopped(name));
        }
        if waiting.jobs.len() >= self.options.queue_capacity {
            return Err(Refused::Busy {
                model: name,
                capacity: self.options.queue_capacity,
            });
        }
        waiting.jobs.push_back(job);
        drop(waiting);
        self.queue.arrived.notify_one();
        Ok(Pending { answer, model: name })
    }

    /// [`Engine::submit`], then blocks the calling thread for the answer (warm-up, checks;
    /// never on an async runtime's thread).
    pub fn infer(
        &self,
        inputs: Rows,
        preparation_time: Duration,
        timeout: Duration,
    ) -> std::result::Result<Answered, Refused> {
        self.submit(inputs, preparation_time, timeout)?.wait()
    }
}

impl Drop for Engine {
    /// Closes the queue: each worker answers what is queued, then returns on its own, and
    /// the model is freed with the last worker. Never blocks: the last holder of a swapped
    /// out engine may be a request on the async runtime.
    fn drop(&mut self) {
        self.queue.lock().closed = true;
        self.queue.arrived.notify_all();
    }
}

struct Worker {
    model: Arc<dyn TaskModel>,
    options: BatchingOptions,
    /// The layout has a wide session for a run alone on the machine.
    adaptive: bool,
    queue: Arc<Queue>,
    /// Batches being run by this engine's workers.
    running: Arc<AtomicUsize>,
}

impl Worker {
    fn run(self) {
        while let Some((jobs, lane)) = self.gather() {
            self.answer(jobs, lane);
        }
    }

    /// The next batch's jobs and the lane it runs on; `None` once the queue is closed
    /// and empty. The oldest job opens the batch; the next ones join while they fit, the
    /// first that does not stays first in line.
    fn gather(&self) -> Option<(Vec<Job>, Lane)> {
        let mut waiting = self.queue.lock();
        let first = loop {
            if let Some(job) = waiting.jobs.pop_front() {
                break job;
            }
            if waiting.closed {
                return None;
            }
            waiting = self
                .queue
                .arrived
                .wait(waiting)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        };
        let mut rows = first.rows();
        let mut longest = first.longest();
        let is_images = first.inputs.is_images();
        let mut jobs = vec![first];
        let until = Instant::now() + self.options.max_queue_delay;
        while rows < self.options.max_batch_size && rows < self.options.merge.max_rows(longest) {
            let Some(next) = waiting.jobs.front() else {
                // Wait for more only while the delay lasts.
                let Some(left) = until
                    .checked_duration_since(Instant::now())
                    .filter(|left| !left.is_zero())
                else {
                    break;
                };
                waiting = self
                    .queue
                    .arrived
                    .wait_timeout(waiting, left)
                    .map_or_else(|poisoned| poisoned.into_inner().0, |(guard, _)| guard);
                continue;
            };
            let (more_rows, more_longest) = (rows + next.rows(), longest.max(next.longest()));
            // A model that takes both (an image–text model) runs texts and images apart.
            if next.inputs.is_images() != is_images || !self.options.fits(more_rows, more_longest) {
                break;
            }
            (rows, longest) = (more_rows, more_longest);
            jobs.extend(waiting.jobs.pop_front());
        }
        // Decided while the queue is still held: whether anything else waits.
        let others_running = self.running.fetch_add(1, Ordering::AcqRel);
        let alone = others_running == 0 && waiting.jobs.is_empty();
        let lane = match (self.adaptive, alone) {
            (true, true) => Lane::Wide,
            (true, false) => Lane::Narrow,
            (false, _) => Lane::Any,
        };
        if !waiting.jobs.is_empty() {
            // Another worker may start on what is left while this one runs.
            self.queue.arrived.notify_one();
        }
        Some((jobs, lane))
    }

    /// Runs the live jobs as one batch on `lane` and replies to each; counts the batch
    /// out of the running ones (`gather` counted it in).
    fn answer(&self, jobs: Vec<Job>, lane: Lane) {
        let started = Instant::now();
        let (live, expired): (Vec<Job>, Vec<Job>) = jobs.into_iter().partition(|job| job.is_wanted(started));
        for job in expired {
            let waited = started - job.submitted;
            let _ = job.reply.send(Err(Refused::TimedOut(waited)));
        }
        if live.is_empty() {
            self.running.fetch_sub(1, Ordering::AcqRel);
            return;
        }
        let batch_rows: usize = live.iter().map(Job::rows).sum();
        let result = self.run_batch(&live, lane);
        self.running.fetch_sub(1, Ordering::AcqRel);
        let inference_time = started.elapsed();
        match result {
            Ok((mut outputs, mut mixed)) => {
                for job in live.into_iter().rev() {
                    let rows = outputs.split_off(outputs.len() - job.rows());
                    let mixed_length_rows = mixed
                        .split_off(mixed.len() - job.rows())
                        .into_iter()
                        .filter(|&m| m)
                        .count();
                    let _ = job.reply.send(Ok(Answered {
                        inputs: job.inputs,
                        rows,
                        queue_time: started - job.submitted,
                        inference_time,
                        preparation_time: job.preparation_time,
                        batch_rows,
                        mixed_length_rows,
                    }));
                }
            }
            Err(error) => {
                let message = error.to_string();
                for job in live {
                    let _ = job.reply.send(Err(Refused::Failed(message.clone())));
                }
            }
        }
    }

    /// Every row of `jobs`, in job order, and whether it ran in a run of texts of
    /// different lengths: texts in length-sorted runs that respect the batch limits,
    /// images (all of one size) in runs of `max_batch_size` (and the merge limit of
    /// length 1).
    fn run_batch(&self, jobs: &[Job], lane: Lane) -> Result<(Vec<RowOutput>, Vec<bool>)> {
        let rows: usize = jobs.iter().map(Job::rows).sum();
        let (outputs, mixed) = if jobs.iter().all(|job| matches!(job.inputs, Rows::Images(_))) {
            (self.run_images(jobs, lane)?, vec![false; rows])
        } else {
            self.run_texts(jobs, lane)?
        };
        if outputs.len() != rows {
            return Err(Error::OutputShape(format!(
                "{} outputs for a batch of {rows} rows",
                outputs.len()
            )));
        }
        Ok((outputs, mixed))
    }

    fn run_texts(&self, jobs: &[Job], lane: Lane) -> Result<(Vec<RowOutput>, Vec<bool>)> {
        let encoder = self.model.text_encoder()?;
        let rows: Vec<&Encoding> = jobs.iter().flat_map(|job| job.inputs.encodings()).collect();
        let mut order: Vec<usize> = (0..rows.len()).collect();
        order.sort_by_key(|&row| rows[row].len());
        let mut outputs: Vec<Option<RowOutput>> = (0..rows.len()).map(|_| None).collect();
        let mut mixed = vec![false; rows.len()];
        for run in runs(&order, |row| rows[row].len(), &self.options) {
            let encodings: Vec<&Encoding> = run.iter().map(|&row| rows[row]).collect();
            let batch = encoder.pad(&encodings);
            // Sorted by length: the run's first row is its shortest, its last its longest.
            let lengths_differ = encodings.first().map(|e| e.len()) != encodings.last().map(|e| e.len());
            for (&row, output) in run.iter().zip(self.model.run_texts(&batch, lane)?) {
                outputs[row] = Some(output);
                mixed[row] = lengths_differ;
            }
        }
        let outputs = outputs
            .into_iter()
            .map(|output| output.ok_or_else(|| Error::OutputShape("a row of the batch was not run".into())))
            .collect::<Result<_>>()?;
        Ok((outputs, mixed))
    }

    fn run_images(&self, jobs: &[Job], lane: Lane) -> Result<Vec<RowOutput>> {
        let images: Vec<&Array3<f32>> = jobs.iter().flat_map(|job| job.inputs.images()).collect();
        let per_run = self.options.max_batch_size.min(self.options.merge.max_rows(1)).max(1);
        let mut outputs = Vec::with_capacity(images.len());
        for run in images.chunks(per_run) {
            outputs.extend(self.model.run_images(&image::stack(run), lane)?);
        }
        Ok(outputs)
    }
}

/// Cuts rows, sorted by length, into consecutive runs within the batch options: rows,
/// padded tokens and the merge limit at the run's length (a row longer than the token
/// limit runs alone).
fn runs<'r>(sorted: &'r [usize], length: impl Fn(usize) -> usize, options: &BatchingOptions) -> Vec<&'r [usize]> {
    let mut runs = Vec::new();
    let mut start = 0;
    for end in 1..=sorted.len() {
        // Sorted ascending, so the next row is the run's longest if added.
        let next_fits = end < sorted.len() && options.fits(end + 1 - start, length(sorted[end]));
        if !next_fits {
            runs.push(&sorted[start..end]);
            start = end;
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;
    use modelcrate_runtime::policy::MergeStep;

    fn options(max_batch_size: usize, max_batch_tokens: usize) -> BatchingOptions {
        BatchingOptions {
            max_batch_size,
            max_batch_tokens,
            ..BatchingOptions::default()
        }
    }

    #[test]
    fn runs_respect_rows_and_padded_tokens() {
        let lengths = [3, 5, 5, 8, 20, 40];
        let sorted: Vec<usize> = (0..lengths.len()).collect();
        let cut = runs(&sorted, |row| lengths[row], &options(3, 40));
        assert_eq!(cut, vec![&[0, 1, 2][..], &[3, 4][..], &[5][..]]);
        // Each run: rows ≤ 3 and rows × longest ≤ 40, except a row too long to share.
        let cut = runs(&sorted, |row| lengths[row], &options(32, 30));
        assert_eq!(cut, vec![&[0, 1, 2][..], &[3][..], &[4][..], &[5][..]]);
    }

    #[test]
    fn runs_respect_the_merge_limit_at_their_length() {
        let lengths = [3, 4, 5, 6, 10, 12, 30, 40];
        let sorted: Vec<usize> = (0..lengths.len()).collect();
        let merge = MergeLimits {
            steps: vec![
                MergeStep {
                    up_to_tokens: 8,
                    max_rows: 3,
                },
                MergeStep {
                    up_to_tokens: 16,
                    max_rows: 2,
                },
                MergeStep {
                    up_to_tokens: 32,
                    max_rows: 1,
                },
            ],
        };
        let options = BatchingOptions {
            merge,
            ..options(32, 1000)
        };
        let cut = runs(&sorted, |row| lengths[row], &options);
        // Up to 8 tokens three rows, up to 16 two, beyond one: lengths past the last step
        // take its limit.
        assert_eq!(cut, vec![&[0, 1, 2][..], &[3, 4][..], &[5][..], &[6][..], &[7][..]]);
    }

    #[test]
    fn no_rows_make_no_runs() {
        assert!(runs(&[], |_| 1, &options(4, 100)).is_empty());
    }
}
