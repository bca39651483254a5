//! The ONNX Runtime sessions of one model file, laid out over the machine's cores.
//!
//! `Session::run` takes `&mut self`, so runs at the same time each need a session of
//! their own. Which layout is fastest depends on the load: a lone request is answered
//! soonest by one session whose intra-op threads use every core, while under load one
//! single-thread session per core serves the most (no thread hand-offs inside a run, and
//! no core idle at a run's serial parts). [`Layout::Adaptive`] holds both: a *wide*
//! session of every core and one *narrow* session per core. The pool keeps the cores'
//! budget: a wide run starts only when no narrow one runs and the reverse, so threads
//! never outnumber cores. Which lane a run asks for is the caller's choice ([`Lane`]):
//! the engine asks for the wide one only when a run has the machine to itself.

use std::path::Path;
use std::sync::{Condvar, Mutex, MutexGuard};

use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;

use crate::error::{Error, Result};
use crate::registry::LoadOptions;

/// The sessions a model holds and their intra-op threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `sessions` sessions of `intra_threads` threads each; a run takes any free one.
    Fixed { sessions: usize, intra_threads: usize },
    /// One session of `cores` threads for a run alone on the machine, and `cores`
    /// single-thread sessions for runs that share it.
    Adaptive { cores: usize },
}

impl Layout {
    /// Runs that may be under way at once.
    pub fn concurrent_runs(self) -> usize {
        match self {
            Self::Fixed { sessions, .. } => sessions.max(1),
            Self::Adaptive { cores } => cores.max(1),
        }
    }

    /// What `/models` and the reports call it.
    pub fn describe(self) -> String {
        match self {
            Self::Fixed {
                sessions,
                intra_threads,
            } => {
                format!("{sessions} session(s) × {intra_threads} thread(s)")
            }
            Self::Adaptive { cores } => {
                format!("adaptive: 1 session × {cores} threads alone, {cores} sessions × 1 thread under load")
            }
        }
    }
}

/// Which session a run asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// The session of every core: for a run alone on the machine.
    Wide,
    /// A single-thread session: for a run beside others.
    Narrow,
    /// Whatever is free (a narrow session first).
    Any,
}

struct Sessions {
    wide: Option<Session>,
    narrow: Vec<Session>,
    /// A wide session is out: nothing else may start.
    wide_running: bool,
    /// Narrow (or fixed) sessions out.
    narrow_running: usize,
}

pub struct SessionPool {
    sessions: Mutex<Sessions>,
    returned: Condvar,
    layout: Layout,
    size: usize,
    /// Whether the layout has a wide session at all.
    has_wide: bool,
}

impl SessionPool {
    pub fn open(model: &Path, options: &LoadOptions) -> Result<Self> {
        let environment = crate::environment::environment(options.ort_dylib.as_deref())?;
        if !model.is_file() {
            return Err(Error::Artifact {
                path: model.to_path_buf(),
                message: "no such file".into(),
            });
        }
        let open = |threads: usize, shares_cores: bool| -> Result<Session> {
            let builder = Session::builder(environment)?
                .with_optimization_level(GraphOptimizationLevel::All)?
                .with_intra_threads(threads.max(1))?
                .with_inter_threads(1)?;
            // A wide session shares its cores with the narrow ones. Its threads spin while
            // a run is under way (without spinning, each of the graph's parallel sections
            // waits for a sleeping thread to wake: on a 2-core Xeon a 16-token text took
            // 1.18 ms on two sleeping threads against 0.52 ms on one core) and stop as soon
            // as the run returns, so they take no core the next narrow runs need.
            let mut builder = if shares_cores {
                builder.with_config_entry("session.force_spinning_stop", "1")?
            } else {
                builder
            };
            builder.commit_from_file(model).map_err(|error| Error::Artifact {
                path: model.to_path_buf(),
                message: error.to_string(),
            })
        };
        let (wide, narrow) = match options.layout {
            Layout::Fixed {
                sessions,
                intra_threads,
            } => {
                let narrow = (0..sessions.max(1))
                    .map(|_| open(intra_threads, false))
                    .collect::<Result<Vec<_>>>()?;
                (None, narrow)
            }
            Layout::Adaptive { cores } => {
                let wide = open(cores, true)?;
                let narrow = (0..cores.max(1)).map(|_| open(1, false)).collect::<Result<Vec<_>>>()?;
                (Some(wide), narrow)
            }
        };
        let has_wide = wide.is_some();
        let size = narrow.len() + usize::from(has_wide);
        Ok(Self {
            sessions: Mutex::new(Sessions {
                wide,
                narrow,
                wide_running: false,
                narrow_running: 0,
            }),
            returned: Condvar::new(),
            layout: options.layout,
            size,
            has_wide,
        })
    }

    /// Sessions held (each holds the model's weights once).
    pub fn size(&self) -> usize {
        self.size
    }

    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// Whether no run is under way: a run asked for now would have the cores to itself.
    pub fn is_idle(&self) -> bool {
        let sessions = self.lock();
        !sessions.wide_running && sessions.narrow_running == 0
    }

    fn lock(&self) -> MutexGuard<'_, Sessions> {
        self.sessions.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `work` on a session of `lane`, waiting until one is free and the cores allow
    /// it. A layout without a wide session serves every lane from its sessions. A run
    /// that asks for the wide session while other runs are under way is no longer alone:
    /// it takes a narrow session instead of waiting for the machine to empty, which under
    /// load it might never do.
    pub fn with_session<T>(&self, lane: Lane, work: impl FnOnce(&mut Session) -> T) -> T {
        let (session, wide) = {
            let mut sessions = self.lock();
            let wide = lane == Lane::Wide && self.has_wide && !sessions.wide_running && sessions.narrow_running == 0;
            loop {
                if wide {
                    if let Some(session) = sessions.wide.take() {
                        sessions.wide_running = true;
                        break (session, true);
                    }
                } else if !sessions.wide_running
                    && let Some(session) = sessions.narrow.pop()
                {
                    sessions.narrow_running += 1;
                    break (session, false);
                }
                sessions = self
                    .returned
                    .wait(sessions)
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
            }
        };
        // The guard gives the session back even if `work` panics, so the pool never shrinks.
        let mut checkout = Checkout {
            pool: self,
            session: Some(session),
            wide,
        };
        let session = checkout
            .session
            .as_mut()
            .expect("the checkout holds a session until dropped");
        work(session)
    }

    /// Looks at a free session (all hold the same model), e.g. to read its signature.
    pub fn inspect<T>(&self, look: impl FnOnce(&Session) -> T) -> T {
        self.with_session(Lane::Any, |session| look(session))
    }
}

struct Checkout<'p> {
    pool: &'p SessionPool,
    session: Option<Session>,
    wide: bool,
}

impl Drop for Checkout<'_> {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            let mut sessions = self.pool.lock();
            if self.wide {
                sessions.wide = Some(session);
                sessions.wide_running = false;
            } else {
                sessions.narrow.push(session);
                sessions.narrow_running -= 1;
            }
            // Every waiter: a wide run may wait for all narrow ones, and the reverse.
            self.pool.returned.notify_all();
        }
    }
}
