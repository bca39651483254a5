//! The server's lifecycle: warming up, ready, draining.
//!
//! Models are loaded before the server listens. Once it listens, each model runs a
//! warm-up (one input alone and a full batch, through its engine, so that ONNX Runtime
//! allocates its arenas and picks its kernels before a user pays for it); only then does
//! `GET /health/ready` answer 200. On SIGTERM or SIGINT the server first leaves, for
//! `--shutdown-delay-ms` (0 by default): readiness turns 503 so that a load balancer
//! stops sending, while every request that still arrives is answered — the time a load
//! balancer's health check or a Kubernetes endpoint update takes to notice. Then it
//! drains: new predictions get 503 with `Retry-After`, the requests in flight finish, and
//! once none is left (or `--drain-timeout-ms` passed) the listener closes and the process
//! exits.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use modelcrate_core::{Engine, Rows};
use ndarray::Array3;

use crate::served::Served;

/// Where the server is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    WarmingUp,
    Ready,
    /// Unready, still answering: the load balancers are being told.
    Leaving,
    Draining,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::WarmingUp => "warming_up",
            Self::Ready => "ready",
            Self::Leaving => "leaving",
            Self::Draining => "draining",
        }
    }
}

/// The phase and the predictions in flight, shared by the routes and the shutdown.
#[derive(Debug)]
pub struct Lifecycle {
    phase: AtomicU8,
    in_flight: AtomicUsize,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Self {
            phase: AtomicU8::new(Phase::WarmingUp as u8),
            in_flight: AtomicUsize::new(0),
        }
    }
}

impl Lifecycle {
    pub fn phase(&self) -> Phase {
        match self.phase.load(Ordering::SeqCst) {
            0 => Phase::WarmingUp,
            1 => Phase::Ready,
            2 => Phase::Leaving,
            _ => Phase::Draining,
        }
    }

    /// Ready, unless draining already began (a signal during warm-up wins).
    pub fn set_ready(&self) {
        let _ = self.phase.compare_exchange(
            Phase::WarmingUp as u8,
            Phase::Ready as u8,
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
    }

    /// Readiness turns 503; requests are still admitted until [`Lifecycle::begin_draining`].
    pub fn begin_leaving(&self) {
        self.phase.store(Phase::Leaving as u8, Ordering::SeqCst);
    }

    pub fn begin_draining(&self) {
        self.phase.store(Phase::Draining as u8, Ordering::SeqCst);
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Counts a prediction in flight until the returned guard drops.
    pub fn enter(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(Arc::clone(self))
    }

    /// Waits until no prediction is in flight or `timeout` passes; returns how many were
    /// still in flight.
    pub async fn drained(&self, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        while self.in_flight() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.in_flight()
    }
}

/// A prediction in flight; dropping it (answer sent or client gone) counts it out.
pub struct InFlight(Arc<Lifecycle>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Runs one input alone and one full batch through every model's engine. Blocking: run
/// it off the async runtime.
pub fn warm_up(served: &Served, timeout: Duration) -> anyhow::Result<()> {
    for name in served.names() {
        if let Some(engine) = served.engine(name) {
            warm_up_engine(name, &engine, timeout)?;
        }
    }
    Ok(())
}

/// Runs one input alone (on the layout's wide session, if it has one), then a full
/// batch from every worker at once (on each session under load), through `engine`
/// (model `name`). Blocking.
pub fn warm_up_engine(name: &str, engine: &Engine, timeout: Duration) -> anyhow::Result<()> {
    let started = Instant::now();
    let inputs = |rows: usize| -> anyhow::Result<Rows> {
        let model = engine.model();
        Ok(match model.info().image_side() {
            Some(side) => {
                let side = side as usize;
                Rows::Images(vec![Array3::zeros((3, side, side)); rows])
            }
            None => {
                // A text as long as the model takes, so the arenas fit the longest batch.
                let text = "warm up ".repeat(model.info().max_length);
                Rows::Texts(model.encode(&vec![text.as_str(); rows])?)
            }
        })
    };
    let failed = |refused| anyhow::anyhow!("warm-up of model `{name}` failed: {refused}");
    engine.infer(inputs(1)?, Duration::ZERO, timeout).map_err(failed)?;
    let batch = engine.options().max_batch_size;
    let pending = (0..engine.workers())
        .map(|_| engine.submit(inputs(batch)?, Duration::ZERO, timeout).map_err(failed))
        .collect::<anyhow::Result<Vec<_>>>()?;
    for answer in pending {
        answer.wait().map_err(failed)?;
    }
    tracing::info!(model = %name, seconds = started.elapsed().as_secs_f64(), "warmed up");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaving_is_unready_and_a_late_ready_does_not_undo_it() {
        let lifecycle = Lifecycle::default();
        lifecycle.set_ready();
        lifecycle.begin_leaving();
        lifecycle.set_ready();
        assert_eq!(lifecycle.phase(), Phase::Leaving);
        lifecycle.begin_draining();
        assert_eq!(lifecycle.phase(), Phase::Draining);
    }

    #[test]
    fn phases_go_forward_and_draining_wins_over_a_late_ready() {
        let lifecycle = Arc::new(Lifecycle::default());
        assert_eq!(lifecycle.phase(), Phase::WarmingUp);
        lifecycle.begin_draining();
        lifecycle.set_ready();
        assert_eq!(lifecycle.phase(), Phase::Draining);
        let guard = lifecycle.enter();
        assert_eq!(lifecycle.in_flight(), 1);
        drop(guard);
        assert_eq!(lifecycle.in_flight(), 0);
    }
}
