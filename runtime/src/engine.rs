//! The inference engine: a bounded queue per model feeding worker threads that merge
//! concurrent requests into dynamic batches.
//!
//! Callers tokenize texts or decode images (in parallel, on their own threads) and submit
//! the rows of a request as one job. A worker takes the first waiting job, then keeps taking jobs
//! for at most `max_queue_delay` while they fit under `max_batch_size` rows and
//! `max_batch_tokens` (rows × longest row, the padded size a batch costs); a job that
//! does not fit waits for the worker's next batch. The rows of a batch are sorted by
//! length and cut into runs so that short texts are not padded to long ones; each run is
//! one `session.run` on one of the model's pooled sessions. Images all have the model's
//! input size: they count as one token each and run in runs of `max_batch_size`. Every job gets back exactly
//! its own rows, in its own order, with the time it waited and the time it ran.
//!
//! A full queue refuses a job at once ([`Refused::Busy`]): the caller answers 429
//! rather than letting latency grow without bound. A job whose caller gave up
//! (its deadline passed) is dropped unrun.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ndarray::{Array2, Array3};
use tokenizers::Encoding;

use crate::error::{Error, Result};
use crate::image;
use crate::registry::LoadedModel;

/// How requests are merged and how much may wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchingOptions {
    /// Most rows (texts) in one `session.run`.
    pub max_batch_size: usize,
    /// Most padded tokens (rows × longest row) in one `session.run`.
    pub max_batch_tokens: usize,
    /// How long a worker waits for more jobs to fill a batch; zero takes only what
    /// is already queued.
    pub max_queue_delay: Duration,
    /// Jobs that may wait; beyond it `submit` refuses.
    pub queue_capacity: usize,
    /// Worker threads, each running one batch at a time on its own session.
    pub workers: usize,
}

impl Default for BatchingOptions {
    fn default() -> Self {
        Self {
            max_batch_size: 32,
            max_batch_tokens: 32 * 128,
            max_queue_delay: Duration::from_millis(2),
            queue_capacity: 256,
            workers: 2,
        }
    }
}

/// What one row of a batch yields, by task; post-processing turns it into an answer.
#[derive(Debug, Clone)]
pub enum RowOutput {
    /// A sequence classifier's logits, by label id.
    Logits(Vec<f32>),
    /// An embedding model's pooled vector, not yet normalised.
    Pooled(Vec<f32>),
    /// A token classifier's logits `[tokens, labels]` for the row's real tokens.
    TokenLogits(Array2<f32>),
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
    reply: SyncSender<std::result::Result<Answered, Refused>>,
}

impl Job {
    fn rows(&self) -> usize {
        self.inputs.len()
    }

    fn longest(&self) -> usize {
        self.inputs.longest()
    }
}

/// One model's queue and workers. Dropping it stops the workers once the queue drains.
pub struct Engine {
    model: Arc<LoadedModel>,
    options: BatchingOptions,
    sender: Option<SyncSender<Job>>,
    waiting: Arc<AtomicUsize>,
}

impl Engine {
    pub fn start(model: Arc<LoadedModel>, options: BatchingOptions) -> Self {
        let options = BatchingOptions {
            max_batch_size: options.max_batch_size.max(1),
            max_batch_tokens: options.max_batch_tokens.max(1),
            queue_capacity: options.queue_capacity.max(1),
            workers: options.workers.max(1),
            ..options
        };
        let (sender, receiver) = mpsc::sync_channel::<Job>(options.queue_capacity);
        let receiver = Arc::new(Mutex::new(receiver));
        let waiting = Arc::new(AtomicUsize::new(0));
        // Detached: each worker returns once the queue is closed and empty.
        for index in 0..options.workers {
            let worker = Worker {
                model: Arc::clone(&model),
                options,
                receiver: Arc::clone(&receiver),
                waiting: Arc::clone(&waiting),
                carried: None,
            };
            std::thread::Builder::new()
                .name(format!("{}-{index}", model.info().name))
                .spawn(move || worker.run())
                .unwrap_or_else(|error| panic!("cannot start an inference thread: {error}"));
        }
        Self {
            model,
            options,
            sender: Some(sender),
            waiting,
        }
    }

    pub fn model(&self) -> &Arc<LoadedModel> {
        &self.model
    }

    pub fn options(&self) -> BatchingOptions {
        self.options
    }

    /// Jobs submitted and not yet taken by a worker.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Queues `inputs` as one job and blocks until it is answered or `timeout` passes.
    /// Refuses at once when the queue is full. `preparation_time` (what making `inputs`
    /// took) comes back in the answer, beside the queue and inference times.
    pub fn infer(
        &self,
        inputs: Rows,
        preparation_time: Duration,
        timeout: Duration,
    ) -> std::result::Result<Answered, Refused> {
        let name = self.model.info().name;
        let sender = self.sender.as_ref().ok_or(Refused::Stopped(name))?;
        let (reply, answer) = mpsc::sync_channel(1);
        let submitted = Instant::now();
        let job = Job {
            inputs,
            preparation_time,
            submitted,
            deadline: submitted + timeout,
            reply,
        };
        self.waiting.fetch_add(1, Ordering::Relaxed);
        match sender.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.waiting.fetch_sub(1, Ordering::Relaxed);
                return Err(Refused::Busy {
                    model: name,
                    capacity: self.options.queue_capacity,
                });
            }
            Err(TrySendError::Disconnected(_)) => {
                self.waiting.fetch_sub(1, Ordering::Relaxed);
                return Err(Refused::Stopped(name));
            }
        }
        match answer.recv_timeout(timeout) {
            Ok(answered) => answered,
            Err(RecvTimeoutError::Timeout) => Err(Refused::TimedOut(timeout)),
            Err(RecvTimeoutError::Disconnected) => Err(Refused::Stopped(name)),
        }
    }
}

impl Drop for Engine {
    /// Closes the queue: each worker answers what is queued, then returns on its own, and
    /// the model is freed with the last worker. Never blocks: the last holder of a swapped
    /// out engine may be a request on the async runtime.
    fn drop(&mut self) {
        self.sender.take();
    }
}

struct Worker {
    model: Arc<LoadedModel>,
    options: BatchingOptions,
    receiver: Arc<Mutex<Receiver<Job>>>,
    waiting: Arc<AtomicUsize>,
    /// A job taken that did not fit the last batch: it opens the next.
    carried: Option<Job>,
}

impl Worker {
    fn run(mut self) {
        while let Some(jobs) = self.gather() {
            self.answer(jobs);
        }
    }

    fn took(&self, job: Job) -> Job {
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        job
    }

    /// The next batch's jobs; `None` once the queue is closed and empty.
    fn gather(&mut self) -> Option<Vec<Job>> {
        let receiver = self.receiver.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let first = match self.carried.take() {
            Some(job) => job,
            None => self.took(receiver.recv().ok()?),
        };
        let mut rows = first.rows();
        let mut longest = first.longest();
        let mut jobs = vec![first];
        let until = Instant::now() + self.options.max_queue_delay;
        while rows < self.options.max_batch_size {
            let next = match until.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => receiver.recv_timeout(left).ok(),
                _ => receiver.try_recv().ok(),
            };
            let Some(job) = next else { break };
            let job = self.took(job);
            let (more_rows, more_longest) = (rows + job.rows(), longest.max(job.longest()));
            if more_rows > self.options.max_batch_size || more_rows * more_longest > self.options.max_batch_tokens {
                self.carried = Some(job);
                break;
            }
            (rows, longest) = (more_rows, more_longest);
            jobs.push(job);
        }
        Some(jobs)
    }

    /// Runs the live jobs as one batch and replies to each.
    fn answer(&self, jobs: Vec<Job>) {
        let started = Instant::now();
        let (live, expired): (Vec<Job>, Vec<Job>) = jobs.into_iter().partition(|job| job.deadline > started);
        for job in expired {
            let waited = started - job.submitted;
            let _ = job.reply.send(Err(Refused::TimedOut(waited)));
        }
        if live.is_empty() {
            return;
        }
        let batch_rows: usize = live.iter().map(Job::rows).sum();
        let result = self.run_batch(&live);
        let inference_time = started.elapsed();
        match result {
            Ok(mut outputs) => {
                for job in live.into_iter().rev() {
                    let rows = outputs.split_off(outputs.len() - job.rows());
                    let _ = job.reply.send(Ok(Answered {
                        inputs: job.inputs,
                        rows,
                        queue_time: started - job.submitted,
                        inference_time,
                        preparation_time: job.preparation_time,
                        batch_rows,
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

    /// Every row of `jobs`, in job order: texts in length-sorted runs that respect the
    /// batch limits, images in runs of `max_batch_size`.
    fn run_batch(&self, jobs: &[Job]) -> Result<Vec<RowOutput>> {
        let rows: usize = jobs.iter().map(Job::rows).sum();
        let outputs = if jobs.iter().all(|job| matches!(job.inputs, Rows::Images(_))) {
            self.run_images(jobs)?
        } else {
            self.run_texts(jobs)?
        };
        if outputs.len() != rows {
            return Err(Error::OutputShape(format!(
                "{} outputs for a batch of {rows} rows",
                outputs.len()
            )));
        }
        Ok(outputs)
    }

    fn run_texts(&self, jobs: &[Job]) -> Result<Vec<RowOutput>> {
        let encoder = self.model.text_encoder()?;
        let rows: Vec<&Encoding> = jobs.iter().flat_map(|job| job.inputs.encodings()).collect();
        let mut order: Vec<usize> = (0..rows.len()).collect();
        order.sort_by_key(|&row| rows[row].len());
        let mut outputs: Vec<Option<RowOutput>> = (0..rows.len()).map(|_| None).collect();
        for run in runs(&order, |row| rows[row].len(), self.options) {
            let encodings: Vec<&Encoding> = run.iter().map(|&row| rows[row]).collect();
            let batch = encoder.pad(&encodings);
            for (&row, output) in run.iter().zip(self.model.run_rows(&batch)?) {
                outputs[row] = Some(output);
            }
        }
        outputs
            .into_iter()
            .map(|output| output.ok_or_else(|| Error::OutputShape("a row of the batch was not run".into())))
            .collect()
    }

    fn run_images(&self, jobs: &[Job]) -> Result<Vec<RowOutput>> {
        let images: Vec<&Array3<f32>> = jobs.iter().flat_map(|job| job.inputs.images()).collect();
        let mut outputs = Vec::with_capacity(images.len());
        for run in images.chunks(self.options.max_batch_size) {
            outputs.extend(self.model.run_images(&image::stack(run))?);
        }
        Ok(outputs)
    }
}

/// Cuts rows, sorted by length, into consecutive runs of at most `max_batch_size` rows
/// and `max_batch_tokens` padded tokens (a row longer than that runs alone).
fn runs(sorted: &[usize], length: impl Fn(usize) -> usize, options: BatchingOptions) -> Vec<&[usize]> {
    let mut runs = Vec::new();
    let mut start = 0;
    for end in 1..=sorted.len() {
        let next_fits = end < sorted.len() && {
            // Sorted ascending, so the next row is the run's longest if added.
            let rows = end + 1 - start;
            rows <= options.max_batch_size && rows * length(sorted[end]) <= options.max_batch_tokens
        };
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
        let cut = runs(&sorted, |row| lengths[row], options(3, 40));
        assert_eq!(cut, vec![&[0, 1, 2][..], &[3, 4][..], &[5][..]]);
        // Each run: rows ≤ 3 and rows × longest ≤ 40, except a row too long to share.
        let cut = runs(&sorted, |row| lengths[row], options(32, 30));
        assert_eq!(cut, vec![&[0, 1, 2][..], &[3][..], &[4][..], &[5][..]]);
    }

    #[test]
    fn no_rows_make_no_runs() {
        assert!(runs(&[], |_| 1, options(4, 100)).is_empty());
    }
}
