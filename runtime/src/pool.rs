//! A fixed pool of ONNX Runtime sessions over one model file.
//!
//! `Session::run` takes `&mut self`, so concurrent callers each need a session of
//! their own; a caller blocks until one is free. Measured here without batching, two
//! sessions of one intra-op thread beat one mutexed session of two threads (ASSETS.md);
//! behind the server's batching engine one session of two threads answers single
//! requests faster at the same throughput (README, "Benchmark against the peers").

use std::path::Path;
use std::sync::{Condvar, Mutex};

use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;

use crate::error::{Error, Result};
use crate::registry::LoadOptions;

pub struct SessionPool {
    idle: Mutex<Vec<Session>>,
    returned: Condvar,
    size: usize,
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
        let size = options.sessions.max(1);
        let mut sessions = Vec::with_capacity(size);
        for _ in 0..size {
            let session = Session::builder(environment)?
                .with_optimization_level(GraphOptimizationLevel::All)?
                .with_intra_threads(options.intra_threads.max(1))?
                .with_inter_threads(1)?
                .commit_from_file(model)
                .map_err(|error| Error::Artifact {
                    path: model.to_path_buf(),
                    message: error.to_string(),
                })?;
            sessions.push(session);
        }
        Ok(Self {
            idle: Mutex::new(sessions),
            returned: Condvar::new(),
            size,
        })
    }

    pub fn size(&self) -> usize {
        self.size
    }

    /// Runs `work` on a free session, waiting for one if all are busy.
    pub fn with_session<T>(&self, work: impl FnOnce(&mut Session) -> T) -> T {
        let session = {
            let mut idle = self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            loop {
                if let Some(session) = idle.pop() {
                    break session;
                }
                idle = self
                    .returned
                    .wait(idle)
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
            }
        };
        // The guard gives the session back even if `work` panics, so the pool never shrinks.
        let mut checkout = Checkout {
            pool: self,
            session: Some(session),
        };
        let session = checkout
            .session
            .as_mut()
            .expect("the checkout holds a session until dropped");
        work(session)
    }

    /// Looks at a free session (all hold the same model), e.g. to read its signature.
    pub fn inspect<T>(&self, look: impl FnOnce(&Session) -> T) -> T {
        self.with_session(|session| look(session))
    }
}

struct Checkout<'p> {
    pool: &'p SessionPool,
    session: Option<Session>,
}

impl Drop for Checkout<'_> {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            let mut idle = self.pool.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            idle.push(session);
            self.pool.returned.notify_one();
        }
    }
}
